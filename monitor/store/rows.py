"""Row helpers shared by the store's query modules (posts, the queue, the outbox)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from monitor.model import Post, Score
from monitor.store.schema import scores

SCORE_COLUMNS = (scores.c.compound, scores.c.pos, scores.c.neu, scores.c.neg, scores.c.anger,
                 scores.c.change, scores.c.churn, scores.c.angry, scores.c.complaint,
                 scores.c.language, scores.c.worst_sentence, scores.c.truncated)


def post_from(row: Any) -> Post:
    return Post(source=row.source, external_id=row.external_id, url=row.url, author=row.author,
                title=row.title, text=row.text, published_at=row.published_at,
                thread_id=row.thread_id, parent_id=row.parent_id, reach=row.reach)


def score_from(row: Any) -> Score:
    """A Score from a row holding ``SCORE_COLUMNS`` and ``evidence`` (zeros if never scored)."""
    return Score(row.compound or 0.0, row.pos or 0.0, row.neu or 0.0, row.neg or 0.0,
                 truncated=bool(row.truncated), anger=row.anger or 0.0,
                 change=row.change or 0.0, churn=row.churn or 0.0, angry=bool(row.angry),
                 complaint=row.complaint or 0.0, language=row.language,
                 worst_sentence=row.worst_sentence,
                 evidence=tuple(tuple(pair) for pair in row.evidence or ()))


def insert_ignoring(db: Connection, table: Table, keys: list[str]) -> Any:
    """An INSERT that skips rows clashing on ``keys`` (SQLite and PostgreSQL agree here)."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=keys)
