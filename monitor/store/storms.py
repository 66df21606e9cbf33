"""Queries for launches: the posts that may talk about one, and the storms still open; and
``WRITTEN``, the one SQL condition that leaves storm and alert pseudo-posts out of what people
wrote."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from monitor.model import STORM_SOURCE, SYSTEM_SOURCE
from monitor.queue import OPEN_STATES
from monitor.store.rows import SCORE_COLUMNS
from monitor.store.schema import case_posts, cases, flags, posts, scores

STORMS = posts.c.source.startswith(STORM_SOURCE, autoescape=True)
"""The storm pseudo-posts: ``monitor.model.is_storm_source`` in SQL."""

SYSTEM = posts.c.source.startswith(SYSTEM_SOURCE, autoescape=True)
"""The monitor's alerts about itself: ``monitor.model.is_system_source`` in SQL."""

WRITTEN = ~STORMS & ~SYSTEM
"""Posts someone wrote: what is scored, counted and exported (a storm or an alert is none of
these)."""


class StormQueries:
    """Mixed into Store."""

    engine: Engine

    def event_candidates(self, start: datetime, end: datetime,
                         keywords: Sequence[str]) -> list[dict[str, Any]]:
        """Posts published in [start, end) whose title or text contains a keyword anywhere
        (a cheap SQL filter; the caller checks whole words), with scores and flags."""
        def contains(column: Any) -> list[Any]:
            return [func.lower(column).contains(k.lower(), autoescape=True) for k in keywords]

        query = (select(posts.c.id, posts.c.source, posts.c.external_id, posts.c.url,
                        posts.c.author, posts.c.title, posts.c.text, posts.c.published_at,
                        posts.c.thread_id, posts.c.reach, *SCORE_COLUMNS, flags.c.severity,
                        flags.c.category, flags.c.tags)
                 .outerjoin(scores, scores.c.post_id == posts.c.id)
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .where(posts.c.published_at >= start, posts.c.published_at < end, WRITTEN,
                        or_(*contains(posts.c.text), *contains(posts.c.title)))
                 .order_by(posts.c.published_at, posts.c.id))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def launch_posts(self, start: datetime, end: datetime,
                     sources: Collection[str] | None) -> list[dict[str, Any]]:
        """Every post someone wrote in [start, end) on ``sources`` (None: all), with scores
        and flags: a launch's baseline is all of its sources' posts, not only those naming it."""
        query = (select(posts.c.id, posts.c.source, posts.c.external_id, posts.c.url,
                        posts.c.author, posts.c.title, posts.c.text, posts.c.published_at,
                        *SCORE_COLUMNS, flags.c.severity, flags.c.category)
                 .outerjoin(scores, scores.c.post_id == posts.c.id)
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .where(posts.c.published_at >= start, posts.c.published_at < end, WRITTEN)
                 .order_by(posts.c.published_at, posts.c.id))
        if sources is not None:
            query = query.where(posts.c.source.in_(sorted(sources)))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def open_storms(self, now: datetime, hold: float) -> dict[str, int]:
        """``{storm source: case id}`` for each event whose storm case is open and whose storm
        was still growing within ``hold`` seconds: a storm nobody closes stops holding back
        notices by itself."""
        query = (select(posts.c.source, func.max(cases.c.id))
                 .join(case_posts, case_posts.c.post_id == posts.c.id)
                 .join(cases, cases.c.id == case_posts.c.case_id)
                 .where(STORMS, posts.c.changed_at >= now - timedelta(seconds=hold),
                        cases.c.state.in_(OPEN_STATES))
                 .group_by(posts.c.source))
        with self.engine.connect() as db:
            return {source: case_id for source, case_id in db.execute(query)}
