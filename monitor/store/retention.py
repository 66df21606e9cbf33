"""Retention (``store.retention``, ``monitor prune``): old posts lose what their authors wrote,
and keep what the figures are made of.

A pruned post keeps its row (source, URL, dates, thread, reach, content hash), its scores'
numbers and its flag (severity, rules, category, tags), so the digest's and the launch report's
counts and shares of past days do not change; its text becomes '', its title and author NULL,
``pruned_at`` is set, and the text-bearing columns go too: the score's worst sentence and
evidence, the flag's reasons (they quote both), its earlier versions (``post_edits``). The
content hash stays, so a feed that still serves the same text is not taken for an edit.

Never pruned: posts of a case that is not closed, or whose follow-up still runs (its window
reads the author's name), storms and the monitor's alerts (not posts anyone wrote). The
search index follows by itself (SQLite triggers on the text, a PostgreSQL expression index).

Work goes in batches, each its own short transaction that picks and prunes at once: a big
prune never holds the write lock for long, and a kill loses at most the batch under way,
which the next run (the same condition) picks up again.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import FromClause

from monitor.model import STORM_SOURCE, SYSTEM_SOURCE
from monitor.queue import CLOSED_STATES
from monitor.store.rows import insert_ignoring
from monitor.store.schema import (
    case_posts,
    cases,
    flags,
    meta,
    outcomes,
    post_edits,
    posts,
    scores,
)

BATCH = 5000
"""Posts pruned per transaction: SQLite's one writer waits at most one batch for it."""

PRUNED_KEY = "retention_pruned_at"
"""The ``meta`` row that says when the last prune ended (the daemon prunes once a day)."""


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune did (or, with ``dry_run``, would do)."""

    cutoff: datetime
    posts: int
    edits: int       # earlier versions deleted
    batches: int     # transactions that pruned posts (0 on a dry run)
    dry_run: bool = False


def _kept_by_case(post_id: ColumnElement[Any], now: datetime) -> ColumnElement[bool]:
    """``post_id`` opened or is in a case that is open, or whose follow-up window runs."""
    keeps = or_(cases.c.state.not_in(CLOSED_STATES), outcomes.c.window_ends_at > now)
    member = (select(case_posts.c.post_id)
              .join(cases, cases.c.id == case_posts.c.case_id)
              .outerjoin(outcomes, outcomes.c.case_id == cases.c.id)
              .where(case_posts.c.post_id == post_id, keeps))
    opener = (select(cases.c.id).outerjoin(outcomes, outcomes.c.case_id == cases.c.id)
              .where(cases.c.post_id == post_id, keeps))
    return or_(exists(member), exists(opener))


def prunable(table: FromClause, cutoff: datetime, now: datetime) -> ColumnElement[bool]:
    """The posts of ``table`` (``posts`` or an alias of it) a prune at ``now`` takes."""
    c = table.c
    return and_(c.first_seen_at < cutoff, c.pruned_at.is_(None),
                ~c.source.startswith(STORM_SOURCE, autoescape=True),
                ~c.source.startswith(SYSTEM_SOURCE, autoescape=True),
                ~_kept_by_case(c.id, now))


class RetentionQueries:
    """Pruning old posts, mixed into Store (uses ``self.engine``)."""

    engine: Engine

    def prune_posts(self, cutoff: datetime, now: datetime, *, batch: int = BATCH,
                    dry_run: bool = False,
                    writing: AbstractContextManager[object] | None = None) -> Pruned:
        """Prune the posts first seen before ``cutoff`` (see the module docstring), ``batch``
        per transaction, each under ``writing`` if given (the daemon's lock that keeps its
        jobs' writes apart); ``dry_run`` counts them and writes nothing."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if dry_run:
            return self._count(cutoff, now)
        total = edits = batches = after = 0
        while True:
            with writing or nullcontext(), self.engine.begin() as db:
                ids, removed = _prune_batch(db, cutoff, now, batch, after)
                done = len(ids) < batch
                if done:  # the last transaction notes the prune as done
                    _note_pruned(db, now)
            total, edits, batches = total + len(ids), edits + removed, batches + bool(ids)
            after = max(ids, default=after)  # every post before is pruned now, or kept
            if done:
                return Pruned(cutoff, total, edits, batches)

    def last_pruned_at(self) -> datetime | None:
        """When the last prune (not a dry run) ended; None before the first."""
        with self.engine.connect() as db:
            found = db.execute(select(meta.c.value).where(meta.c.key == PRUNED_KEY)).scalar()
        return datetime.fromisoformat(found) if found else None

    def _count(self, cutoff: datetime, now: datetime) -> Pruned:
        which = select(posts.c.id).where(prunable(posts, cutoff, now))
        with self.engine.connect() as db:
            found = db.execute(select(func.count()).select_from(which.subquery())).scalar_one()
            edits = db.execute(select(func.count()).select_from(post_edits).where(
                post_edits.c.post_id.in_(which))).scalar_one()
        return Pruned(cutoff, int(found), int(edits), 0, dry_run=True)


def _prune_batch(db: Connection, cutoff: datetime, now: datetime, batch: int,
                 after: int = 0) -> tuple[list[int], int]:
    """One batch of the posts after id ``after``, picked and pruned in one statement (so a
    case filed on a post meanwhile keeps it): (the ids pruned, the earlier versions deleted).
    Going on from the last batch's ids, a prune reads each old post once, not once a batch."""
    old = posts.alias("old")
    chosen = (select(old.c.id).where(old.c.id > after, prunable(old, cutoff, now))
              .order_by(old.c.id).limit(batch))
    ids = sorted(db.execute(
        posts.update().where(posts.c.id.in_(chosen), posts.c.pruned_at.is_(None))
        .values(text="", title=None, author=None, pruned_at=now)
        .returning(posts.c.id)).scalars())
    if not ids:
        return [], 0
    db.execute(scores.update().where(scores.c.post_id.in_(ids))
               .values(worst_sentence=None, evidence=None))
    db.execute(flags.update().where(flags.c.post_id.in_(ids)).values(reasons=[]))
    removed = db.execute(post_edits.delete().where(post_edits.c.post_id.in_(ids))).rowcount
    return ids, int(removed or 0)


def _note_pruned(db: Connection, now: datetime) -> None:
    """``meta``'s note of the last prune, written in that prune's last transaction."""
    stamp = now.isoformat()
    if not db.execute(meta.update().where(meta.c.key == PRUNED_KEY)
                      .values(value=stamp)).rowcount:
        db.execute(insert_ignoring(db, meta, ["key"]).values(key=PRUNED_KEY, value=stamp))
