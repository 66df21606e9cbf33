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

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.model import Post
from monitor.store.leases import lock_source
from monitor.store.rows import StoredPost, post_row
from monitor.store.schema import posts


def insert_history(db: Connection, batch: Sequence[Post], now: datetime) -> list[StoredPost]:
    """Store the posts of ``batch`` their source does not hold yet, in the caller's
    transaction; returns them as stored (ids in ``batch``'s order)."""
    from monitor.store import content_hash  # the store's own notion of "the text changed"

    fresh: list[Post] = []
    ordered = sorted(batch, key=lambda p: p.source)
    for source, group in groupby(ordered, key=lambda p: p.source):
        lock_source(db, source)  # a live pass saving the same source waits, then finds these
        mine = {p.external_id: p for p in group}  # a file may repeat a post
        known = {e for e, _ in _known(db, source, list(mine))}
        fresh.extend(p for external_id, p in mine.items() if external_id not in known)
    if not fresh:
        return []
    rows = [{**post_row(p), "first_seen_at": min(p.published_at, now), "changed_at": now,
             "content_hash": content_hash(p.title, p.text), "version": 1, "imported_at": now}
            for p in fresh]
    # a plain executemany, then the ids looked up: INSERT ... RETURNING in parameter order
    # goes a row at a time on SQLite (20 times slower)
    db.execute(posts.insert(), rows)
    ids: dict[tuple[str, str], int] = {}
    for source, group in groupby(fresh, key=lambda p: p.source):
        ids.update({(source, e): i for e, i in _known(db, source, [p.external_id
                                                                    for p in group])})
    return [StoredPost(ids[(p.source, p.external_id)], p, str(values["content_hash"]),
                       imported=True) for p, values in zip(fresh, rows, strict=True)]


def _known(db: Connection, source: str, external_ids: list[str]) -> list[tuple[str, int]]:
    """(external id, post id) of those of ``external_ids`` the source holds."""
    found: list[tuple[str, int]] = []
    for start in range(0, len(external_ids), 500):  # bound the IN list
        found.extend(db.execute(select(posts.c.external_id, posts.c.id).where(
            posts.c.source == source,
            posts.c.external_id.in_(external_ids[start:start + 500]))).tuples())
    return found
