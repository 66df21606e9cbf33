"""``monitor export``: posts or cases as JSON lines or CSV, for notebooks and spreadsheets."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

import orjson

from monitor import csvsafe
from monitor.model import is_praise
from monitor.store import Store
from monitor.store.rows import SCORE_COLUMNS

SCORE_FIELDS = tuple(column.name for column in SCORE_COLUMNS)
POST_FIELDS = ("source", "external_id", "url", "author", "title", "text", "published_at",
               "first_seen_at", "thread_id", "parent_id", "reach", "version")


def post_records(store: Store, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Each post with its scores and flag; ``praise``: a flag that is thanks to pass on, not
    a person's problem (the digest's "Flagged" and ``monitor score``'s ``flagged`` leave it
    out), so that a count of ``flagged`` without ``praise`` matches them."""
    for row in store.export_posts(since):
        record = {k: row[k] for k in POST_FIELDS}
        record.update({k: row[k] for k in SCORE_FIELDS})
        record["evidence"] = [": ".join(pair) for pair in row["evidence"] or []]
        tags = row["tags"] or []
        flagged = row["severity"] is not None
        record.update(flagged=flagged, praise=flagged and is_praise(row["severity"],
                                                                     row["category"], tags),
                      severity=row["severity"], category=row["category"], tags=tags,
                      rules=row["rules"] or [], reasons=row["reasons"] or [])
        yield record


def case_records(store: Store, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    for row in store.export_cases(since):
        yield {"id": row["id"], "state": row["state"], "severity": row["severity"],
               "category": row["category"], "priority": row["priority"],
               "assignee": row["assignee"], "opened_at": row["opened_at"],
               "due_at": row["due_at"], "first_response_at": row["first_response_at"],
               "resolved_at": row["resolved_at"], "group": row["group_key"],
               "rules": row["rules"] or [], "reasons": row["reasons"] or [],
               "posts": [{k: member[k] for k in POST_FIELDS} for member in row["members"]]}


def write(records: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Write ``records`` as ``jsonl`` or ``csv`` to ``out``; returns how many."""
    if fmt == "jsonl":
        slow = json.JSONEncoder(default=_iso, ensure_ascii=False).encode
        count = 0
        for record in records:
            try:  # orjson: several times faster; json for what it refuses (a lone surrogate)
                line = orjson.dumps(record, option=_ORJSON).decode()
            except TypeError:
                line = slow(record) + "\n"
            out.write(line)
            count += 1
        return count
    return _write_csv(records, out)


def _write_csv(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Row by row, as read (a million posts never sit in memory at once): the header from
    the first record (every record of a kind has the same keys), nothing for no records;
    quoting and line ends as pandas' ``to_csv`` wrote them before (the stdlib writer, LF).
    A whole number is written as one (``12``; pandas made ``12.0`` of a column with gaps)."""
    writer = csv.writer(out, lineterminator="\n")
    count = 0
    columns: list[str] = []
    for record in records:
        flat = _flat(record)
        if not columns:
            columns = list(flat)
            writer.writerow(columns)
        writer.writerow(["" if (v := flat.get(k)) is None else v for k in columns])
        count += 1
    return count


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: lists become ``; ``-joined text; a case's first post its ``post_*``
    columns, and ``post_count`` how many it has. Every text cell is guarded as the digest's
    CSV is (``monitor.csvsafe``): anyone can write a post that starts with ``=``. Dispatched
    on the value's exact type: this runs once per cell of a million-row export."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        kind = type(value)
        if kind in _AS_IS:
            flat[key] = value
        elif kind is str:
            flat[key] = csvsafe.cell(value)
        elif kind is datetime:
            flat[key] = _iso(value)
        elif key == "posts":
            flat["post_count"] = len(value)
            first = value[0] if value else {}
            for pkey in POST_FIELDS:  # every case has the columns, with posts or not
                flat[f"post_{pkey}"] = _cell(first.get(pkey))
        elif kind is list:
            flat[key] = csvsafe.cell("; ".join(map(str, value)))
        else:
            flat[key] = _cell(value)
    return flat


_ORJSON = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
"""Times as ``_iso`` writes them (UTC as Z), one record a line."""

_AS_IS = frozenset({float, int, bool, type(None)})


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return csvsafe.cell(value)
    return _iso(value) if isinstance(value, datetime) else value


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot export {type(value).__name__}")
