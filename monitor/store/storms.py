"""Queries for launches: the posts that may talk about one, and the storms still open; and
``WRITTEN``, the one SQL condition that leaves storm and alert pseudo-posts out of what people
wrote."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, true
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


NEGATIVE, COMPLAINT, ANGRY, CHURN, FLAGGED, TALK, NAMED, UNHAPPY = (1 << i for i in range(8))
"""The bits of ``LaunchRows.bits``: what a post of a launch's window is (``launch_rows``)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where a score becomes a share of the launch report (its constants, passed in)."""

    negative: float  # compound at or below, in English (or unknown language)
    complaint: float
    churn: float
    change: float


@dataclass(frozen=True, slots=True)
class LaunchRows:
    """Posts of a launch's window, column by column (``launch_rows``), as narrow as can be:
    the report reads the details of the few it needs by id (``post_details``)."""

    source: tuple[str, ...]
    compound: tuple[float | None, ...]  # None: unscored, or not English (VADER reads English)
    bits: tuple[int, ...]  # NEGATIVE | COMPLAINT | ...
    id: tuple[int, ...]


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
        and flags: a launch's baseline is all of its sources' posts, not only those naming it.
        Every text in memory: the report reads ``launch_rows`` instead (issue 19), and the
        tests check that both give the same figures."""
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

    def launch_rows(self, edges: Sequence[datetime], sources: Collection[str] | None,
                    keywords: Sequence[str], limits: Thresholds,
                    ) -> Iterator[tuple[int, LaunchRows]]:
        """Every post someone wrote in [``edges[0]``, ``edges[-1]``) on ``sources`` (None: all),
        as ``(i, rows)`` for period i, [``edges[i]``, ``edges[i + 1]``), in parts.

        Why: the launch report's figures at a million posts (issue 19). Each period is one
        index range scan returning four narrow columns; the shares are bits worked out by the
        database, once per post (``NAMED``: every word of a keyword is in the title, or in the
        text, case-insensitive for ASCII letters, ``_mentions``: a superset of whole-word
        matches that the caller checks on the text). Period edges are the caller's (local
        midnights in its zone, the launch), so both databases count alike, with no time zone
        in SQL.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        known = or_(scores.c.language.is_(None), scores.c.language == "en")
        flagged = flags.c.post_id.is_not(None)
        named = or_(*(_mentions(keyword, sqlite) for keyword in keywords)) if keywords else \
            literal(False)
        checks = [(and_(scores.c.compound <= limits.negative, known), NEGATIVE),
                  (scores.c.complaint >= limits.complaint, COMPLAINT), (scores.c.angry, ANGRY),
                  (scores.c.churn >= limits.churn, CHURN), (flagged, FLAGGED),
                  (scores.c.change >= limits.change, TALK), (named, NAMED),
                  (or_(scores.c.complaint >= limits.complaint, scores.c.angry,
                       scores.c.churn >= limits.churn,
                       and_(flagged, func.coalesce(flags.c.category, "") != "praise")), UNHAPPY)]
        bits = sum((case((check, bit), else_=0) for check, bit in checks), literal(0))
        query = (select(posts.c.source, case((known, scores.c.compound)), bits, posts.c.id)
                 .outerjoin(scores, scores.c.post_id == posts.c.id)
                 .outerjoin(flags, flags.c.post_id == posts.c.id))
        if sources is not None:
            query = query.where(posts.c.source.in_(sorted(sources)))
        with self.engine.connect() as db:
            for i, (low, high) in enumerate(zip(edges, edges[1:], strict=False)):
                period = query.where(posts.c.published_at >= low, posts.c.published_at < high,
                                     WRITTEN)
                result = db.execution_options(yield_per=10_000).execute(period)
                for part in result.partitions():
                    yield i, LaunchRows(*zip(*part, strict=True))

    def post_details(self, ids: Sequence[int], text: bool = False,
                     ) -> dict[int, tuple[datetime, str, str | None, str | None]]:
        """``{id: (published_at, author or else URL, title, text)}`` of these posts, the title
        and text only with ``text``: what the launch report needs of its few posts that may
        name the launch, are negative about it, or complain."""
        columns = [posts.c.id, posts.c.published_at, func.coalesce(posts.c.author, posts.c.url)]
        columns += [posts.c.title, posts.c.text] if text else [literal(None), literal(None)]
        found: dict[int, Any] = {}
        with self.engine.connect() as db:
            for start in range(0, len(ids), 500):  # bound the IN list
                chunk = list(ids[start:start + 500])
                found.update((row[0], tuple(row[1:]))
                             for row in db.execute(select(*columns)
                                                   .where(posts.c.id.in_(chunk))))
        return found

    def post_texts(self, ids: Sequence[int]) -> dict[int, str]:
        """``{id: text}`` of these posts: the launch report reads text only for the complaints
        it groups."""
        found: dict[int, str] = {}
        with self.engine.connect() as db:
            for start in range(0, len(ids), 500):  # bound the IN list
                chunk = list(ids[start:start + 500])
                found.update((post, text) for post, text in db.execute(
                    select(posts.c.id, posts.c.text).where(posts.c.id.in_(chunk))))
        return found

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


def _mentions(keyword: str, sqlite: bool) -> Any:
    """Whether a post may name ``keyword``: each of its words in the title, or each in the
    text (a whole-word match implies it: a cheap superset). SQLite's LIKE ignores the case of
    ASCII letters, PostgreSQL's ILIKE too; a word with no ASCII letters to look for filters
    nothing (every post is checked by the caller)."""
    def has(column: Any, fragment: str) -> Any:
        return column.contains(fragment, autoescape=True) if sqlite else \
            column.icontains(fragment, autoescape=True)

    fragments = [f for f in map(_fragment, keyword.split()) if f]
    if not fragments:
        return true()
    return or_(and_(*(has(posts.c.title, f) for f in fragments)),
               and_(*(has(posts.c.text, f) for f in fragments)))


def _fragment(word: str) -> str:
    """The longest run of ASCII characters of ``word`` ("ber" of "über"): what LIKE can look
    for whatever the case of the other letters, on SQLite and PostgreSQL alike."""
    return max(re.findall(r"[\x00-\x7f]+", word), key=len, default="")
