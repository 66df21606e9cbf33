"""``monitor export``: posts or cases as JSON lines or CSV, for notebooks and spreadsheets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

import pandas as pd

from monitor import csvsafe
from monitor.store import Store
from monitor.store.rows import SCORE_COLUMNS

SCORE_FIELDS = tuple(column.name for column in SCORE_COLUMNS)
POST_FIELDS = ("source", "external_id", "url", "author", "title", "text", "published_at",
               "first_seen_at", "thread_id", "parent_id", "reach", "version")


def post_records(store: Store, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    for row in store.export_posts(since):
        record = {k: row[k] for k in POST_FIELDS}
        record.update({k: row[k] for k in SCORE_FIELDS})
        record["evidence"] = [": ".join(pair) for pair in row["evidence"] or []]
        record.update(flagged=row["severity"] is not None, severity=row["severity"],
                      category=row["category"], tags=row["tags"] or [],
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
        count = 0
        for record in records:
            out.write(json.dumps(record, default=_iso, ensure_ascii=False) + "\n")
            count += 1
        return count
    frame = pd.json_normalize([_flat(r) for r in records])
    if len(frame):
        frame.to_csv(out, index=False)
    return len(frame)


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: lists become ``; ``-joined text; a case's first post its ``post_*``
    columns, and ``post_count`` how many it has. Every text cell is guarded as the digest's
    CSV is (``monitor.csvsafe``): anyone can write a post that starts with ``=``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "posts":
            flat["post_count"] = len(value)
            for pkey, pvalue in (value[0] if value else {}).items():
                flat[f"post_{pkey}"] = _iso(pvalue) if isinstance(pvalue, datetime) else pvalue
        elif isinstance(value, list):
            flat[key] = "; ".join(map(str, value))
        else:
            flat[key] = _iso(value) if isinstance(value, datetime) else value
    return {k: csvsafe.cell(v) if isinstance(v, str) else v for k, v in flat.items()}


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot export {type(value).__name__}")
