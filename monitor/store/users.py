"""The accounts' SQL (what they are for: ``monitor.accounts``). Rows are never deleted: a
case's history names its actors, so an account that leaves is disabled and its name stays
taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from monitor.store.rows import insert_ignoring
from monitor.store.schema import users


class UserQueries:
    """Adding, reading, disabling accounts and noting logins, mixed into Store. Rows come back
    as dicts with every column (the hash too: only ``monitor.accounts`` should read them)."""

    engine: Engine

    def add_user(self, name: str, role: str, password_hash: str, now: datetime) -> bool:
        """A new account; False (and nothing changed) when ``name`` is taken, disabled or not."""
        with self.engine.begin() as db:
            return db.execute(insert_ignoring(db, users, ["name"]).values(
                name=name, role=role, password_hash=password_hash, created_at=now,
                password_changed_at=now, failed_logins=0)
                .returning(users.c.id)).first() is not None  # rowcount: -1 on PostgreSQL

    def get_user(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else dict(row._mapping)

    def user_named_like(self, name: str) -> str | None:
        """The name of an account that is ``name`` in another case ("Ana" for "ana"), or
        None: names are unique whatever their case."""
        with self.engine.connect() as db:
            return db.execute(select(users.c.name)
                              .where(func.lower(users.c.name) == name.lower())
                              .limit(1)).scalar()

    def list_users(self) -> list[dict[str, Any]]:
        """Every account, disabled ones too, by name."""
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(select(users).order_by(users.c.name))]

    def set_password(self, name: str, password_hash: str, now: datetime,
                     rehash: bool = False) -> bool:
        """Store a new hash; False for an unknown name. A new password also clears the failed
        logins (whoever set it knows it); a ``rehash`` (same password, new argon2 parameters)
        changes the hash alone."""
        values: dict[str, Any] = {"password_hash": password_hash}
        if not rehash:
            values |= {"password_changed_at": now, "failed_logins": 0, "last_failed_at": None}
        with self.engine.begin() as db:
            return bool(db.execute(users.update().where(users.c.name == name)
                                   .values(**values)).rowcount)

    def disable_user(self, name: str, now: datetime) -> datetime | None:
        """Refuse the account's logins from ``now`` on; when it was disabled (earlier, if it
        already was), None for an unknown name. The row stays."""
        with self.engine.begin() as db:
            db.execute(users.update().where(users.c.name == name, users.c.disabled_at.is_(None))
                       .values(disabled_at=now))
            return db.execute(select(users.c.disabled_at).where(users.c.name == name)).scalar()

    def record_login(self, name: str, ok: bool, now: datetime) -> None:
        """A login that succeeded (the failures in a row start again from 0) or failed (one
        more, counted in SQL so two at once both count)."""
        if ok:
            values: dict[str, Any] = {"failed_logins": 0, "last_login_at": now}
        else:
            values = {"failed_logins": users.c.failed_logins + 1, "last_failed_at": now}
        with self.engine.begin() as db:
            db.execute(users.update().where(users.c.name == name).values(**values))
