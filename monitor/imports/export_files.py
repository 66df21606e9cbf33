"""Our own ``monitor export`` posts, JSON lines or CSV, back into Posts: export then import
gives the same Post fields. Score and flag columns are left: an import is scored afresh.

CSV cells were guarded by ``csvsafe.cell`` (a ``'`` before a cell a spreadsheet would run);
that quote is taken off again. The guard cannot be undone exactly for a value that itself
began with ``'`` and then ``=``/``+``/``-``/``@``/tab/CR: it was written unchanged, and reads
back without its ``'``. An empty CSV cell is None (author, title, thread, parent, reach) or ""
(text): CSV has no other way to write None.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import zstandard

from monitor.collectors.text import utc_from_iso
from monitor.csvsafe import FORMULA_STARTS
from monitor.errors import ConfigError
from monitor.imports import Opener, Skipped, json_records
from monitor.model import Post

_OPTIONAL = ("author", "title", "thread_id", "parent_id")


def read_jsonl(lines: Iterator[tuple[int, bytes | None]], name: str,
               source: str | None) -> Iterator[Post | Skipped]:
    """Each line of a ``monitor export --format jsonl`` of posts as a Post."""
    for where, record in json_records(lines, name):
        yield record if isinstance(record, Skipped) else _post(record, source, where)


def read_csv(opener: Opener, path: Path, source: str | None) -> Iterator[Post | Skipped]:
    """Each row of a ``monitor export --format csv`` of posts as a Post; a row's place is
    the line it ends on (a cell may hold newlines)."""
    name = path.name
    stream = io.TextIOWrapper(opener(), encoding="utf-8-sig", errors="replace", newline="")
    with stream:
        rows = csv.reader(stream)
        header: list[str] | None = None
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:
                yield Skipped(f"{name}:{rows.line_num}", f"not a CSV row ({error})")
                continue
            except (OSError, zstandard.ZstdError) as error:
                raise ConfigError(f"read failed after line {rows.line_num} ({error})",
                                  file=str(path)) from None
            if header is None:
                header = row
                continue
            if not any(row):
                continue
            where = f"{name}:{rows.line_num}"
            if len(row) != len(header):
                yield Skipped(where, f"wrong number of cells ({len(row)}, the header has "
                                     f"{len(header)})")
                continue
            record = {key: _unguard(value) for key, value in zip(header, row, strict=True)}
            for key in _OPTIONAL:
                record[key] = record.get(key) or None
            record["reach"] = _number(record.get("reach"))
            yield _post(record, source, where)


def _post(record: Any, source: str | None, where: str) -> Post | Skipped:
    """One exported record as a Post, or a Skipped naming what is missing or wrong."""
    if not isinstance(record, Mapping):
        return Skipped(where, "not a JSON object")
    for key in ("external_id", "url", "text"):
        if not isinstance(record.get(key), str) or (key != "text" and not record[key]):
            return Skipped(where, f"no {key}")
    chosen = source or record.get("source")
    if not isinstance(chosen, str) or not chosen:
        return Skipped(where, "no source (pass --source NAME)")
    published = utc_from_iso(record.get("published_at"))
    if published is None:
        return Skipped(where, f"bad published_at ({str(record.get('published_at'))[:40]!r})")
    optional = {key: record.get(key) for key in _OPTIONAL}
    for key, value in optional.items():
        if value is not None and not isinstance(value, str):
            return Skipped(where, f"{key} is not text")
    reach = record.get("reach")
    if reach is not None and (isinstance(reach, bool) or not isinstance(reach, int)):
        return Skipped(where, f"reach is not a whole number ({str(reach)[:20]!r})")
    return Post(source=chosen, external_id=record["external_id"], url=record["url"],
                text=record["text"], published_at=published, reach=reach, **optional)


def _unguard(cell: str) -> str:
    """What ``csvsafe.cell`` was given: its leading ``'`` off a cell it guarded."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def _number(cell: str | None) -> int | str | None:
    """A reach cell: pandas writes a column with gaps as floats ("12.0"). Anything else is
    returned as it is, for ``_post`` to refuse."""
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        return cell
    return int(value) if value.is_integer() else cell
