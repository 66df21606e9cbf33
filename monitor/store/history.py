"""History brought in by ``monitor import``: posts written before the monitor was installed,
stored with their own dates in one batched INSERT per batch.

An imported post is first seen when it was written (the launch tracker's "before" needs it),
marked ``imported_at`` (a rescore never files it as a case), and stored only if its source
does not already hold it: importing a file twice adds nothing, and a post the collectors
stored live stays as they stored it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.model import Post
from monitor.store.leases import lock_source
from monitor.store.rows import StoredPost, post_row
from monitor.store.schema import posts


def insert_history(db: Connection, batch: Sequence[Post], now: datetime) -> list[StoredPost]:
    """Store the posts of ``batch`` their source does not hold yet, in the caller's
    transaction; returns them as stored, source by source."""
    from monitor.store import content_hash  # the store's own notion of "the text changed"

    stored: list[StoredPost] = []
    ordered = sorted(batch, key=lambda p: p.source)
    for source, group in groupby(ordered, key=lambda p: p.source):
        lock_source(db, source)  # a live pass saving the same source waits, then finds these
        mine = {p.external_id: p for p in group}  # a file may repeat a post
        known = known_posts(db, source, list(mine), ids_only=True)
        fresh = [p for external_id, p in mine.items() if external_id not in known]
        if not fresh:
            continue
        rows = [{**post_row(p), "first_seen_at": min(p.published_at, now), "changed_at": now,
                 "content_hash": content_hash(p.title, p.text), "version": 1,
                 "imported_at": now} for p in fresh]
        stored.extend(StoredPost(i, p, str(row["content_hash"]), imported=True)
                      for i, p, row in zip(insert_posts(db, source, rows), fresh, rows,
                                           strict=True))
    return stored


def insert_posts(db: Connection, source: str, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``source``'s new post rows; returns their ids in order. One executemany, then
    the ids looked up: INSERT ... RETURNING in parameter order goes a row at a time on
    SQLite (20 times slower)."""
    db.execute(posts.insert(), rows)
    ids = known_posts(db, source, [row["external_id"] for row in rows], ids_only=True)
    return [ids[row["external_id"]].id for row in rows]


def known_posts(db: Connection, source: str, external_ids: Sequence[str],
                ids_only: bool = False) -> dict[str, Any]:
    """``source``'s stored posts of ``external_ids`` by external id (``ids_only``: their ids
    alone, not their text): what a fetch or an import already holds, and the ids of the
    posts it has just inserted."""
    found: dict[str, Any] = {}
    columns = [posts.c.id, posts.c.external_id] if ids_only else [
        posts.c.id, posts.c.external_id, posts.c.content_hash, posts.c.version, posts.c.title,
        posts.c.text]
    for start in range(0, len(external_ids), 500):  # bound the IN list
        query = select(*columns).where(posts.c.source == source,
                                       posts.c.external_id.in_(external_ids[start:start + 500]))
        found.update({r.external_id: r for r in db.execute(query)})
    return found
