"""Files to Posts for ``monitor import``: our own exports, Reddit archive dumps, WordPress
exports. One call, ``read``, whatever the file; each format has its own module.

Reading streams: a file of a million lines is never held whole, only the line (or XML item)
at hand. A bad line or record is a ``Skipped`` naming its place, and the file goes on; a file
that is none of these formats, cannot be opened, or whose compression is broken is a
ConfigError naming the file (the user named it), so the command exits 2 and says what to pass.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from json.scanner import make_scanner
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import zstandard

from monitor.errors import ConfigError
from monitor.model import Post

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_WINDOW = 2**31
"""Pushshift and Arctic Shift compress with --long=31: the decoder must allow 2 GiB windows."""

MAX_LINE = 8 * 1024 * 1024
"""Bytes of one line read at most: a record is kilobytes; a file with no newlines is not
read whole into memory to find that out."""

_HEAD = 256 * 1024  # bytes read (decompressed) to tell the format
_SNIFF_LINES = 20   # lines tried for a JSON record, so a broken first line is not fatal

EXPECTED = ("expected `monitor export` posts (JSON lines or CSV), a Reddit dump (Pushshift or "
            "Arctic Shift NDJSON of submissions or comments, plain or .zst) or a WordPress "
            "export (WXR, Tools > Export)")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that was not imported: where (``file:line``) and why. ``why`` is a fixed
    reason, then any details in parentheses, so a tally can count by the part before " (".
    """

    where: str
    why: str


Opener = Callable[[], BinaryIO]
"""Opens the file again from its start, decompressed: each format reader streams from it."""


class Position:
    """How far the readers have got through the file on disk, in bytes (of a .zst file, its
    compressed bytes): what a progress bar shows. ``read`` hands it each file it opens."""

    def __init__(self) -> None:
        self._file: BinaryIO | None = None

    def watch(self, file: BinaryIO) -> None:
        self._file = file

    def __call__(self) -> int:
        """The offset in the file last opened; 0 before one is opened or once it is closed."""
        try:
            return self._file.tell() if self._file is not None else 0
        except (OSError, ValueError):  # ValueError: closed
            return 0


def read(path: Path, source: str | None, *,
         thread_titles: MutableMapping[str, str] | None = None,
         position: Position | None = None) -> Iterator[Post | Skipped]:
    """The posts in ``path``, in file order, with a ``Skipped`` for each record left out.

    ``source`` is the configured source the posts belong to (``--source``): required for a
    Reddit dump or a WordPress export, which do not say; for our own export it replaces each
    record's ``source`` when given. ``thread_titles`` (Reddit only): submission titles by
    fullname, shared across calls so comments read after their submissions' dump get their
    thread's title as the live collector gives them (its /comments listing carries
    ``link_title``; dumps do not). The format is told, and a wrong file or a missing source
    refused (ConfigError), at this call, before the first post is asked for. ``position``, when
    given, follows the reading (for progress).
    """
    name = path.name
    opener = _opener(path, position)
    kind = sniff(_head(opener, path), path)
    if kind in ("reddit", "wordpress") and not (source and source.strip()):
        what = "a Reddit dump" if kind == "reddit" else "a WordPress export"
        raise ConfigError(f"{what} does not say which source its posts belong to: pass "
                          "--source NAME (a source in sources/)", file=str(path))
    # Imported here: each format's module imports Skipped from this one.
    if kind == "reddit":
        from monitor.imports import reddit_dump
        return reddit_dump.read(lines(opener, path), name, str(source),
                                {} if thread_titles is None else thread_titles)
    if kind == "wordpress":
        from monitor.imports import wordpress
        return wordpress.read(opener, path, str(source))
    from monitor.imports import export_files
    if kind == "export-jsonl":
        return export_files.read_jsonl(lines(opener, path), name, source)
    return export_files.read_csv(opener, path, source)


SOURCE_KINDS = {"reddit": ("reddit", "a Reddit dump"), "wordpress": ("rss", "a WordPress export")}
"""The source kind a dump's posts must go to, so their ids and links are the ones that kind's
collector gives live (a Reddit dump under an rss source would never meet its live posts)."""

CASES_EXPORT = "a `monitor export cases` file, but import takes posts, not cases; " + EXPECTED


def file_kind(path: Path) -> str:
    """The format of ``path`` as ``sniff`` tells it (ConfigError for none): checked for every
    file before any is imported, so a wrong one stops the command with nothing stored."""
    return sniff(_head(_opener(path), path), path)


def check_source_kind(kind: str, path: Path, source: str, source_kind: str) -> None:
    """A Reddit dump only into a reddit source, a WordPress export only into an rss one."""
    wanted, what = SOURCE_KINDS.get(kind, (source_kind, ""))
    if source_kind != wanted:
        raise ConfigError(f"{what} goes to a source of kind {wanted}, and --source {source!r} "
                          f"is of kind {source_kind}", file=str(path))


def sniff(head: bytes, path: Path) -> str:
    """``reddit``, ``wordpress``, ``export-jsonl`` or ``export-csv`` from the file's first
    bytes (decompressed); ConfigError for anything else."""
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if not text:
        raise ConfigError(f"the file is empty; {EXPECTED}", file=str(path))
    if text.startswith(b"<"):
        if b"wordpress.org/export/" in text:
            return "wordpress"
        raise ConfigError(f"XML, but not a WordPress export (no wp: export namespace); "
                          f"{EXPECTED}", file=str(path))
    whole = text.split(b"\n")
    if len(head) >= _HEAD:
        whole = whole[:-1]  # the last piece may be cut mid-line
    if text.startswith(b"{"):
        for line in [line for line in whole if line.strip()][:_SNIFF_LINES]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and {"state", "group", "posts"} <= record.keys():
                raise ConfigError(CASES_EXPORT, file=str(path))
            if isinstance(record, dict) and (kind := _json_kind(record)):
                return kind
        # No whole line parsed (one huge record, or broken ones): the key names still tell.
        if b'"posts"' in text and b'"state"' in text and b'"group"' in text:
            raise ConfigError(CASES_EXPORT, file=str(path))
        if b'"external_id"' in text and b'"published_at"' in text:
            return "export-jsonl"
        if b'"created_utc"' in text:
            return "reddit"
    elif whole:
        header = next(csv.reader([whole[0].decode("utf-8", "replace")]), [])
        if set(header) >= _CSV_REQUIRED:
            return "export-csv"
        if {"state", "group", "post_external_id"} <= set(header):
            raise ConfigError(CASES_EXPORT, file=str(path))
    raise ConfigError(f"not a format monitor import reads; {EXPECTED}", file=str(path))


_CSV_REQUIRED = {"source", "external_id", "url", "text", "published_at"}


def _json_kind(record: dict[str, object]) -> str | None:
    if {"external_id", "published_at", "source"} <= record.keys():
        return "export-jsonl"
    if "created_utc" in record and ("body" in record or "title" in record
                                    or "selftext" in record):
        return "reddit"
    return None


def _opener(path: Path, position: Position | None = None) -> Opener:
    """How to open ``path`` from its start, decompressing zstd (by magic bytes, or refused
    when it is called .zst but is not); ``position`` watches the file on disk."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(4)
    except OSError as error:
        raise ConfigError(f"cannot read it ({error.strerror or error})", file=str(path)) \
            from None
    compressed = magic == ZSTD_MAGIC
    if path.suffix.lower() == ".zst" and not compressed:
        raise ConfigError("named .zst but not zstd-compressed (no zstd frame at its start); "
                          f"{EXPECTED}", file=str(path))

    def open_() -> BinaryIO:
        raw = path.open("rb", buffering=1 << 20)
        if position is not None:
            position.watch(raw)
        if not compressed:
            return raw
        return io.BufferedReader(_Zstd(raw), buffer_size=1 << 20)

    return open_


class _Zstd(io.RawIOBase):
    """The frames of a zstd file, decompressed as read. Not zstandard's ``stream_reader``:
    it ends quietly where a download was cut short, and a cut dump must say so."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.context = zstandard.ZstdDecompressor(max_window_size=ZSTD_WINDOW)
        self.frame = self.context.decompressobj()
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            chunk = self.raw.read(1 << 20)
            if not chunk:
                if not self.frame.eof:
                    raise zstandard.ZstdError("the file ends inside a zstd frame (cut short?)")
                return 0
            data = self.frame.decompress(chunk)
            while self.frame.eof and self.frame.unused_data:  # another frame follows
                rest = self.frame.unused_data
                self.frame = self.context.decompressobj()
                data += self.frame.decompress(rest)
            self.pending = memoryview(data)
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size

    def close(self) -> None:
        self.raw.close()
        super().close()


def _head(opener: Opener, path: Path) -> bytes:
    try:
        with opener() as stream:
            head = b""
            while len(head) < _HEAD and (chunk := stream.read(_HEAD - len(head))):
                head += chunk
            return head
    except zstandard.ZstdError as error:
        raise ConfigError(f"broken .zst ({error}); {EXPECTED}", file=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read it ({error.strerror or error})", file=str(path)) \
            from None


def lines(opener: Opener, path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; ``None`` for a line over ``MAX_LINE`` (skipped,
    never held whole). Broken compression or a read error part-way raises ConfigError."""
    number = 0
    try:
        with opener() as stream:
            readline = stream.readline
            while line := readline(MAX_LINE + 1):
                number += 1
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    while (rest := readline(MAX_LINE)) and not rest.endswith(b"\n"):
                        pass
                    yield number, None
                    continue
                yield number, line
    except zstandard.ZstdError as error:
        raise ConfigError(f"broken .zst after line {number} ({error}); the lines before it "
                          "were read", file=str(path)) from None
    except OSError as error:
        raise ConfigError(f"read failed after line {number} ({error.strerror or error})",
                          file=str(path)) from None


def json_records(lines: Iterator[tuple[int, bytes | None]],
                 name: str) -> Iterator[tuple[str, Any]]:
    """(place, the line's JSON value or a Skipped saying why there is none) for each line
    that is not blank. orjson reads it (twice as fast); what orjson refuses, json may still
    read (a lone surrogate written as an escape)."""
    scan = make_scanner(json.JSONDecoder())  # json.loads without its per-call Python layers
    for number, line in lines:
        where = f"{name}:{number}"
        if line is None:
            yield where, Skipped(where, "line longer than the 8 MiB a record may have")
        elif not line.isspace():
            try:
                yield where, orjson.loads(line.removeprefix(codecs.BOM_UTF8) if number == 1
                                          else line)
            except orjson.JSONDecodeError:
                yield where, _slowly(scan, line, where)


def _slowly(scan: Any, line: bytes, where: str) -> Any:
    try:
        text = line.decode("utf-8").strip().removeprefix("\ufeff")
        record, end = scan(text, 0)
    except StopIteration:  # no JSON value starts the line
        return Skipped(where, "not JSON")
    except (ValueError, RecursionError) as error:  # bad JSON, bytes that are not UTF-8
        return Skipped(where, f"not JSON ({str(error)[:100]})")
    return record if end == len(text) else Skipped(where, "not one JSON object")
