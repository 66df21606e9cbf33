"""Source leases' SQL (what they are for: ``monitor.leases``): a claim locks the source's row
with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two daemons claiming at once never wait on each
other. SQLite has one daemon per database file, so there every claim is granted and nothing is
written.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from monitor.store.rows import insert_ignoring
from monitor.store.schema import sources

log = logging.getLogger(__name__)

SAVE_LOCKS = 4242004
"""The advisory lock space (first key) of ``lock_source``; the second is the source's hash."""

SCHEMA_KEY = "hashtext(current_schema())"
"""The second key of the store's other advisory locks (a PostgreSQL lock is the database's):
stores in separate schemas of one database never wait for one another."""


class LeaseQueries:
    """Claiming, renewing and releasing a source's lease, mixed into Store."""

    engine: Engine

    @property
    def leases_shared(self) -> bool:
        """Whether several daemons may share this store (PostgreSQL), so leases matter."""
        return self.engine.dialect.name == "postgresql"

    def claim_lease(self, source: str, holder: str, now: datetime, ttl: float,
                    kind: str = "") -> bool:
        """Take (or keep) ``source``'s lease for ``ttl`` seconds from ``now``; False when another
        holder's lease is still running, another daemon is claiming it at this moment, or it was
        released with a time not yet come (polled just now).

        A source never polled has no row yet: one is made (``kind`` filled in, health untouched),
        so the first claim locks a row like every later one.
        """
        if not self.leases_shared:
            return True
        with self.engine.begin() as db:
            row = _locked(db, source)
            if row is None and not _exists(db, source):
                db.execute(insert_ignoring(db, sources, ["name"]).values(
                    name=source, kind=kind, failures=0))
                row = _locked(db, source)
            if row is None:  # another daemon's transaction has the row right now
                return False
            if row.leased_by != holder and row.leased_until is not None \
                    and row.leased_until > now:
                return False
            db.execute(sources.update().where(sources.c.name == source).values(
                leased_by=holder, leased_until=now + timedelta(seconds=ttl)))
            if row.leased_by not in (None, holder):
                log.info("%s: took over the lapsed lease of %s", source, row.leased_by)
            return True

    def renew_lease(self, source: str, holder: str, now: datetime, ttl: float) -> bool:
        """Extend ``holder``'s lease to ``now + ttl``; False when it is no longer theirs."""
        if not self.leases_shared:
            return True
        with self.engine.begin() as db:
            return bool(db.execute(sources.update().where(
                sources.c.name == source, sources.c.leased_by == holder).values(
                leased_until=now + timedelta(seconds=ttl))).rowcount)

    def release_lease(self, source: str, holder: str, until: datetime | None = None) -> None:
        """Give the lease back (if still ``holder``'s): any daemon may poll the source next, from
        ``until`` on if given."""
        if not self.leases_shared:
            return
        with self.engine.begin() as db:
            db.execute(sources.update().where(
                sources.c.name == source, sources.c.leased_by == holder).values(
                leased_by=None, leased_until=until))


def lock_source(db: Connection, source: str) -> None:
    """Until the transaction ends, nobody else saves ``source``'s posts (PostgreSQL): a poll
    that did not hold the lease (``monitor run`` beside daemons, a storm two daemons saw, a
    lease lost mid-fetch) then finds the posts the other stored, instead of failing on them."""
    if db.dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:space, "
                        "hashtext(current_schema() || '/' || :source))"),
                   {"space": SAVE_LOCKS, "source": source})


def _locked(db: Connection, source: str) -> Any:
    return db.execute(select(sources.c.leased_by, sources.c.leased_until)
                      .where(sources.c.name == source)
                      .with_for_update(skip_locked=True)).first()


def _exists(db: Connection, source: str) -> bool:
    return db.execute(select(sources.c.name).where(sources.c.name == source)).first() \
        is not None
