"""One pass at a time per store: two overlapping cron runs must not work at once.

SQLite: an exclusive ``flock`` on ``<database>.lock`` beside the database file (released by the
kernel when the process dies, so a ``kill -9`` never leaves it stuck). A daemon on SQLite holds
that same lock for its whole life (``daemon_lock``), so ``monitor run`` and ``monitor daemon``
never write one file at once: a run beside a daemon is refused at once, saying so (the daemon
already polls, scores and sends; a run would poll every source a second time), and a daemon
started during a run waits for the run to end. ``<database>.daemon``, held by the daemon alone,
tells the two apart. PostgreSQL: a session-level advisory lock on a connection held for the
pass (released when that connection closes, however the process ends); daemons there share the
work through leases, and a run beside them only takes the pass lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from monitor.errors import StoreError
from monitor.store.leases import SCHEMA_KEY

PASS_LOCK = 4242003  # the advisory lock id (4242001 is the schema migration's)
PASS_SUFFIX, DAEMON_SUFFIX = ".lock", ".daemon"  # the SQLite lock files beside the database

log = logging.getLogger(__name__)


@contextmanager
def pass_lock(engine: Engine, wait: float) -> Iterator[None]:
    """Hold the store's pass lock, waiting at most ``wait`` seconds for it; StoreError when
    another pass still holds it then."""
    deadline = time.monotonic() + wait
    if engine.dialect.name == "postgresql":
        with engine.connect() as db:
            take = text(f"SELECT pg_try_advisory_lock({PASS_LOCK}, {SCHEMA_KEY})")
            while not db.execute(take).scalar():
                _pause(deadline, wait)
            try:
                yield
            finally:
                db.execute(text(f"SELECT pg_advisory_unlock({PASS_LOCK}, {SCHEMA_KEY})"))
                db.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    while (handle := lock_beside(database, PASS_SUFFIX)) is None:
        if daemon_running(database):
            raise StoreError(f"a monitor daemon is running on {database}: it polls, scores "
                             "and sends already; stop it before `monitor run`")
        _pause(deadline, wait)
    with handle:  # closing the file releases the lock
        yield


def pass_held(engine: Engine) -> bool | None:
    """Whether a process (a run, or a daemon) holds the pass lock of an SQLite store now;
    None where that cannot be told without taking it (PostgreSQL, an in-memory store)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    probe = lock_beside(database, PASS_SUFFIX)
    if probe is None:
        return True
    probe.close()
    return False


def pass_owner() -> dict[str, Any]:
    """Who makes a pass (kept in its ``runs`` row): a status on the same machine can tell
    that its process is gone."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def may_be_running(engine: Engine, started: datetime, owner: dict[str, Any], now: datetime,
                   deadline: float) -> bool:
    """Whether a pass that has not ended (started at ``started`` by ``owner``) may still be
    going. Not once past its ``deadline`` (the pass deadline and a minute); on SQLite, only
    while some process holds the pass lock (a killed run's lock is gone); elsewhere, on the
    machine that made it, only while its process lives (PostgreSQL cannot tell a lock a
    killed run held: a daemon's polls take none); from another machine, until the deadline."""
    if (now - started).total_seconds() > deadline:
        return False
    held = pass_held(engine)
    if held is not None:
        return held
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return True
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def daemon_running(database: str) -> bool:
    """Whether a daemon holds ``<database>.daemon`` (the probe holds it for an instant, which
    ``daemon_lock`` allows for)."""
    probe = lock_beside(database, DAEMON_SUFFIX)
    if probe is None:
        return True
    probe.close()
    return False


def daemon_lock(database: str) -> tuple[IO[str], IO[str]] | None:
    """A daemon's locks on an SQLite file, to keep open for its life: ``.daemon`` (None when
    another daemon holds it), then the pass lock, waiting for a ``monitor run`` to end."""
    deadline = time.monotonic() + 1.0  # a run's daemon_running probe holds it an instant
    while (own := lock_beside(database, DAEMON_SUFFIX)) is None:
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
    if (passing := lock_beside(database, PASS_SUFFIX)) is None:
        log.info("waiting for the `monitor run` working on %s to end", database)
        while (passing := lock_beside(database, PASS_SUFFIX)) is None:
            time.sleep(0.2)
    return own, passing


def lock_beside(database: str, suffix: str) -> IO[str] | None:
    """An exclusive ``flock`` on ``<database><suffix>``: the open file holding it (the lock
    lasts until it is closed or the process ends), or None when another process holds it."""
    handle = open(Path(database).with_name(Path(database).name + suffix), "a")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _pause(deadline: float, wait: float) -> None:
    if time.monotonic() >= deadline:
        raise StoreError(f"another pass is still working on this store (waited {wait:g}s); "
                         "it will be picked up by the next run")
    time.sleep(0.2)
