"""The scores and flags SQL: what the scorer and the rules said of each stored post."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, bindparam, select
from sqlalchemy.engine import Connection

from monitor.model import Flag, Score
from monitor.store.casework import lock_queue
from monitor.store.rows import StoredPost, flag_row, insert_ignoring, score_row
from monitor.store.schema import flags, scores


def save_judged(db: Connection, judged: Iterable[tuple[StoredPost, Score, Flag | None]],
                now: datetime, drop_unmatched: bool = False) -> list[tuple[StoredPost, Flag]]:
    """Write scores and flags in the caller's transaction; returns the posts that got a flag
    they did not have before (the caller files them, in the same transaction).

    ``drop_unmatched``: a rescore after a rule fix, where a flag no rule raises any more goes
    (its case stays). Otherwise an edit that calms a post down keeps the flag it earned. An
    imported post's flag is dated when the post was written: last year's anger is not
    today's, in the digest or anywhere else."""
    judged = list(judged)
    ids = [stored.id for stored, _, _ in judged]
    lock_queue(db)  # two monitors scoring one post: the second sees the first's flag
    had_score = _existing(db, scores.c.post_id, ids)
    had_flag = _existing(db, flags.c.post_id, ids)
    score_rows = [{**score_row(score), "post_id": stored.id,
                   "content_hash": stored.content_hash, "scored_at": now}
                  for stored, score, _ in judged]
    flag_rows = [{**flag_row(flag), "post_id": stored.id, "updated_at": now,
                  "flagged_at": min(stored.post.published_at, now) if stored.imported else now}
                 for stored, _, flag in judged if flag is not None]
    _write_rows(db, scores, score_rows, had_score, "post_id")
    _write_rows(db, flags, flag_rows, had_flag, "post_id", keep=("flagged_at",))
    if drop_unmatched:
        gone = [stored.id for stored, _, flag in judged if flag is None and stored.id in had_flag]
        if gone:
            db.execute(flags.delete().where(flags.c.post_id.in_(gone)))
    return [(stored, flag) for stored, _, flag in judged
            if flag is not None and stored.id not in had_flag]


def _existing(db: Connection, column: Column[Any], ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(db.execute(select(column).where(column.in_(ids[start:start + 500])))
                     .scalars())
    return found


def _write_rows(db: Connection, table: Table, rows: list[dict[str, Any]], existing: set[int],
                key: str, keep: tuple[str, ...] = ()) -> None:
    """Insert the rows whose ``key`` is new, update the others (keeping ``keep``): one
    statement each, executed for the whole batch (a rescore of 100,000 posts compiles two
    statements, not 100,000)."""
    inserts = [r for r in rows if r[key] not in existing]
    if inserts:
        db.execute(insert_ignoring(db, table, [key]), inserts)
    updates = [{f"new_{k}": v for k, v in row.items() if k not in keep}
               for row in rows if row[key] in existing]
    if updates:
        changed = [k[len("new_"):] for k in updates[0] if k != f"new_{key}"]
        db.execute(table.update().where(table.c[key] == bindparam(f"new_{key}"))
                   .values({c: bindparam(f"new_{c}") for c in changed}), updates)
