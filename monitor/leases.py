"""Source leases: several daemons on one PostgreSQL poll each source one at a time.

(The SQL is ``monitor.store.leases``.)

A daemon polls a source only while it holds the source's lease: ``sources.leased_by`` names the
holder (``host:pid:random``), ``sources.leased_until`` says when the lease lapses if the holder
stops renewing it (it died, or lost the database). A claim locks the row with
``SELECT ... FOR UPDATE SKIP LOCKED``, so two daemons claiming at once never wait on each other:
one gets the row, the other is told no. The holder renews its leases from a heartbeat thread
every ``HEARTBEAT`` seconds while it works (the thread beats while a fetch waits, so a slow
fetch keeps its lease), and releases each one when its job ends. A lease lasts ``LEASE``: one
beat plus a margin for a late one, so a dead daemon's sources are free about ten seconds after
its last beat, not after the slowest request it might have been making.

Every daemon runs every source's job on the source's interval, so a released lease keeps
``leased_until`` (with no holder) at half an interval after the poll began: a daemon whose
job comes round sooner skips it, and between them the daemons poll each source about once per
interval, not once each.

Times are the daemons' own clocks (keep them in step with NTP): a skew between machines
shortens or lengthens a lease by that much, which is harmless while it stays well under a
lease's length (``LEASE``, 10 s). A lease lost by a live daemon (its beats late by more than
``MARGIN``, the database away) costs at most one extra poll: saving is serialised per source.

SQLite has one daemon per database file (it refuses a second), so there every claim is granted
and nothing is written.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.store import Store

log = logging.getLogger(__name__)

HEARTBEAT = 5.0
"""Seconds between two renewals of the leases a daemon holds."""

MARGIN = 5.0
"""Seconds a lease outlasts the next beat: how late a renewal may be before the lease lapses."""

LEASE = HEARTBEAT + MARGIN
"""A lease's length: another daemon takes a dead one's sources this long after its last beat."""


def holder_id() -> str:
    """Who holds a lease: ``host:pid:random`` (the random part tells a restarted daemon that
    got the same pid from its dead predecessor)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def holders(rows: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, str]:
    """``{source: holder}`` for the leases still running in ``sources`` rows (for status)."""
    return {r["name"]: r["leased_by"] for r in rows
            if r.get("leased_by") and r.get("leased_until") and r["leased_until"] > now}


class Leases:
    """One daemon's leases: claimed per job, renewed by a heartbeat while held, released when
    the job ends."""

    def __init__(self, store: Store, ttl: float = LEASE, holder: str | None = None) -> None:
        self.store, self.ttl = store, ttl
        self.holder = holder or holder_id()
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @contextmanager
    def held(self, source: str, kind: str = "", spacing: float = 0.0) -> Iterator[bool]:
        """True inside when this daemon holds ``source``'s lease (until the block ends); once
        released, nobody claims it again until ``spacing`` seconds after it was taken."""
        taken = datetime.now(UTC)
        if not self.store.claim_lease(source, self.holder, taken, self.ttl, kind):
            yield False
            return
        with self._lock:
            self._held.add(source)
            self._start()
        try:
            yield True
        finally:
            with self._lock:
                self._held.discard(source)
            self.store.release_lease(source, self.holder,
                                     taken + timedelta(seconds=spacing) if spacing else None)

    def close(self) -> None:
        """Stop the heartbeat (held leases lapse by themselves if not released)."""
        self._stop.set()

    def _start(self) -> None:
        if self._beat is None and self.store.leases_shared:
            self._beat = threading.Thread(target=self._renew_held, name="lease-heartbeat",
                                          daemon=True)
            self._beat.start()

    def _renew_held(self) -> None:
        while not self._stop.wait(min(HEARTBEAT, self.ttl / 2)):
            with self._lock:
                held = sorted(self._held)
            for source in held:
                try:
                    if not self.store.renew_lease(source, self.holder, datetime.now(UTC),
                                                  self.ttl) and source in self._held:
                        log.warning("%s: lease lost to another daemon while polling", source)
                except Exception as error:  # the database is away: retry at the next beat
                    log.warning("%s: could not renew the lease: %s", source, error)
