"""One pass at a time per store: two overlapping cron runs must not work at once.

SQLite: an exclusive ``flock`` on ``<database>.lock`` beside the database file (released by the
kernel when the process dies, so a ``kill -9`` never leaves it stuck). PostgreSQL: a
session-level advisory lock on a connection held for the pass (released when that connection
closes, however the process ends).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Engine

from monitor.errors import StoreError

PASS_LOCK = 4242003  # the advisory lock id (4242001 is the schema migration's)


@contextmanager
def pass_lock(engine: Engine, wait: float) -> Iterator[None]:
    """Hold the store's pass lock, waiting at most ``wait`` seconds for it; StoreError when
    another pass still holds it then."""
    deadline = time.monotonic() + wait
    if engine.dialect.name == "postgresql":
        with engine.connect() as db:
            while not db.execute(text(f"SELECT pg_try_advisory_lock({PASS_LOCK})")).scalar():
                _pause(deadline, wait)
            try:
                yield
            finally:
                db.execute(text(f"SELECT pg_advisory_unlock({PASS_LOCK})"))
                db.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    while (handle := lock_beside(database, ".lock")) is None:
        _pause(deadline, wait)
    with handle:  # closing the file releases the lock
        yield


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
