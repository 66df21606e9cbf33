"""Values to rows and back, through ``dataclasses.fields``: a field added to Post, Score or
Flag (and its column in ``schema.py``) is read and written everywhere without another edit."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from monitor.model import Flag, Post, Score
from monitor.store.schema import scores

SCORE_COLUMNS = tuple(scores.c[f.name] for f in fields(Score) if f.name != "evidence")
"""Every score column but ``evidence`` (long JSON: a query that needs it names it)."""


@dataclass(frozen=True, slots=True)
class StoredPost:
    """A post as stored: its id, the hash of the text its score was made from, and whether
    it came in by ``monitor import`` (history: flagged, but never filed as a case by a pass
    or a rescore)."""

    id: int
    post: Post
    content_hash: str
    imported: bool = False


def post_row(post: Post) -> dict[str, Any]:
    return {f.name: getattr(post, f.name) for f in fields(Post)}


def post_from(row: Any) -> Post:
    return Post(**{f.name: getattr(row, f.name) for f in fields(Post)})


def score_row(score: Score) -> dict[str, Any]:
    row = {f.name: getattr(score, f.name) for f in fields(Score)}
    row["evidence"] = [list(pair) for pair in score.evidence]
    return row


def score_from(row: Any) -> Score:
    """A Score from a row holding ``SCORE_COLUMNS`` (and ``evidence``, if it was selected);
    a post never scored reads as zeros."""
    values: dict[str, Any] = {}
    for f in fields(Score):
        value = getattr(row, f.name, None)
        if f.name == "evidence":
            value = tuple(tuple(pair) for pair in value or ())
        elif value is None:
            value = 0.0 if f.default is MISSING else f.default
        elif f.type == "bool":
            value = bool(value)
        values[f.name] = value
    return Score(**values)


def flag_row(flag: Flag) -> dict[str, Any]:
    return {f.name: list(value) if isinstance(value := getattr(flag, f.name), tuple) else value
            for f in fields(Flag)}


def flag_from(row: Any) -> Flag:
    values = {f.name: getattr(row, f.name) for f in fields(Flag)}
    for f in fields(Flag):
        if f.type.startswith("tuple"):  # stored as JSON lists
            values[f.name] = tuple(values[f.name] or ())
    return Flag(**values)


def insert_ignoring(db: Connection, table: Table, keys: list[str]) -> Any:
    """An INSERT that skips rows clashing on ``keys`` (SQLite and PostgreSQL agree here)."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=keys)
