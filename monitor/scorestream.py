"""``monitor score``: one text, or a stream of JSON lines (samples, see ``monitor.ruletest``),
scored and judged by the rules, one JSON line out per line in, in input order.

Lines are scored in batches of what has arrived (the scorer's models run once per batch), so a
line typed alone is answered at once; a large input is scored by forked worker processes.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import orjson

from monitor.model import Flag, Score
from monitor.rules import RuleSet, VipList
from monitor.ruletest import NO_VIPS, PostScorer, Sample, flag_of, parse_sample

log = logging.getLogger(__name__)


def as_json(score: Score, flag: Flag | None) -> dict[str, Any]:
    """The ``monitor score`` output for one sample: its score and the rules' flag."""
    return {
        "compound": score.compound, "pos": score.pos, "neu": score.neu, "neg": score.neg,
        "angry": score.angry,
        "signals": score.signals(),
        "language": score.language, "sentiment_known": score.sentiment_known,
        "truncated": score.truncated, "worst_sentence": score.worst_sentence,
        "evidence": list(map(list, score.evidence)),
        "flagged": flag is not None and flag.needs_person,
        "praise": flag is not None and flag.praise,
        "severity": flag.severity if flag else None,
        "category": flag.category if flag else None,
        "tags": list(flag.tags) if flag else [],
        "rules": list(flag.rules) if flag else [],
        "reasons": list(flag.reasons) if flag else [],
    }


BATCH_LINES = 500
"""Lines scored together at most (the scorer's models run once per batch, not per line)..."""
BATCH_CHARS = 50_000
"""... or about this many characters: long posts come in smaller batches, which keeps workers
evenly busy."""
POOL_LINES = 2_000
"""An input this long (lines read so far) is scored by worker processes, when there are CPUs..."""
POOL_CHARS = 200_000
"""... or this long in characters: a hundred long posts are worth the pool as well."""
READ_BYTES = 1 << 20
"""Read at most this much of a stream at once: a file's first read tells whether it is large."""

_JSON = json.JSONEncoder(ensure_ascii=False)


def score_lines(lines: Iterable[str], rules: RuleSet, scorer: PostScorer,
                vips: VipList = NO_VIPS) -> Iterator[dict[str, Any]]:
    """One output object per non-blank input line, in order; a bad line gives an object with
    the line number and an ``error``. Lines are scored a batch at a time (see ``line_chunks``):
    what was ready to read, so a line typed alone is answered before the next one is read."""
    for batches in _numbered_batches(line_chunks(lines)):
        for batch in batches:
            yield from score_batch(batch, rules, scorer, vips)


def score_batch(batch: Sequence[tuple[int, str]], rules: RuleSet, scorer: PostScorer,
                vips: VipList = NO_VIPS) -> list[dict[str, Any]]:
    """``score_lines`` for (line number, line) pairs: one ``score_posts`` call for them all."""
    out: list[dict[str, Any]] = []
    good: list[tuple[int, int, Sample]] = []  # (place in out, line number, sample)
    for number, line in batch:
        try:
            sample = parse_sample(line)
        except ValueError as error:
            out.append({"line": number, "error": f"line {number}: {error}"})
            continue
        good.append((len(out), number, sample))
        out.append({})
    posts = [sample.post(number) for _, number, sample in good]
    scores = scorer.score_posts(posts)
    for (at, _, sample), post, score in zip(good, posts, scores, strict=True):
        out[at] = as_json(score, flag_of(sample, post, score, rules, vips))
    return out


def line_chunks(lines: Iterable[str], size: int = BATCH_LINES) -> Iterator[list[str]]:
    """The lines of ``lines``, a chunk at a time.

    From a stream with a file descriptor (stdin; nothing may have been read from it before),
    a chunk is what one read returned: a read returns what is there without waiting for
    more, so a chunk ends where the input paused. Bytes that are not UTF-8 read as U+FFFD.
    From anything else (a list, a test runner's stdin), chunks of ``size`` lines.
    """
    try:
        fd = lines.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: no descriptor
        it = iter(lines)
        while chunk := list(itertools.islice(it, size)):
            yield chunk
        return
    partial: list[bytes] = []  # the start of a line whose end is not read yet
    while data := os.read(fd, READ_BYTES):
        if b"\n" not in data:
            partial.append(data)
            continue
        parts = data.split(b"\n")
        parts[0] = b"".join((*partial, parts[0]))
        rest = parts.pop()  # after the last newline: the start of the next line, or nothing
        partial = [rest] if rest else []
        yield [part.decode("utf-8", "replace") for part in parts]
    if partial:
        yield [b"".join(partial).decode("utf-8", "replace")]


def _numbered_batches(chunks: Iterable[Sequence[str]], size: int = BATCH_LINES,
                      chars: int = BATCH_CHARS) -> Iterator[list[list[tuple[int, str]]]]:
    """Per chunk, its non-blank lines with their numbers (from 1), in batches of ``size``
    lines or about ``chars`` characters, whichever comes first."""
    start = 1
    for chunk in chunks:
        batches: list[list[tuple[int, str]]] = [[]]
        taken = 0
        for number, line in enumerate(chunk, start):
            if not line.strip():
                continue
            if len(batches[-1]) == size or taken >= chars:
                batches.append([])
                taken = 0
            batches[-1].append((number, line))
            taken += len(line)
        start += len(chunk)
        yield batches if batches[0] else []


def write_scores(lines: Iterable[str], out: TextIO, rules: RuleSet, scorer: PostScorer,
                 vips: VipList = NO_VIPS, jobs: int = 1, pool_lines: int = POOL_LINES,
                 pool_chars: int = POOL_CHARS) -> None:
    """``score_lines`` as JSON lines on ``out``, flushed a batch at a time.

    With ``jobs`` > 1, once ``pool_lines`` lines or ``pool_chars`` characters have been read,
    the rest is scored by that many worker processes (forked, so each starts with this
    process's rules and scorer), the answers still written in input order. Small inputs never
    pay for the pool.
    """
    chunks = _numbered_batches(line_chunks(lines))
    read = chars = 0
    # The rules, the scorer and their imports live as long as we do: kept out of the cyclic
    # collector's way they are not scanned over and over (some 8 % faster), and forked workers
    # share their memory pages instead of copying them.
    gc.freeze()
    try:
        for batches in chunks:
            read += sum(map(len, batches))
            chars += sum(len(line) for batch in batches for _, line in batch)
            if jobs > 1 and (read >= pool_lines or chars >= pool_chars) and _can_fork():
                log.info("%d lines read so far: scoring in %d worker processes", read, jobs)
                scorer.preload()
                gc.freeze()  # what preload loaded, too
                _write_pooled(itertools.chain([batches], chunks), out, (rules, scorer, vips),
                              jobs)
                return
            for batch in batches:
                out.write(_as_text(score_batch(batch, rules, scorer, vips)))
                out.flush()
    finally:
        gc.unfreeze()


def _as_text(objects: Iterable[dict[str, Any]]) -> str:
    """JSON lines, by orjson (five times faster than the json module), but for what orjson
    refuses (a lone surrogate, an integer beyond 64 bits) or writes otherwise (NaN and
    infinity, which it makes null): the json module writes those as it always did."""
    lines = []
    for obj in objects:
        try:
            line = orjson.dumps(obj).decode() if "error" in obj or _finite(obj) else None
        except TypeError:  # orjson.JSONEncodeError is one
            line = None
        lines.append(_JSON.encode(obj) if line is None else line)
    lines.append("")
    return "\n".join(lines)


def _finite(obj: dict[str, Any]) -> bool:
    """Whether every number of a score's output object is finite (a sum of them is then)."""
    return math.isfinite(obj["compound"] + obj["pos"] + obj["neu"] + obj["neg"]
                         + sum(obj["signals"].values()))


def _can_fork() -> bool:
    from monitor.parallel import can_fork  # the pool's imports: only for a large input

    return can_fork()


def _write_pooled(chunks: Iterable[list[list[tuple[int, str]]]], out: TextIO,
                  tools: tuple[RuleSet, PostScorer, VipList], jobs: int) -> None:
    """Score batches in ``jobs`` forked processes (``monitor.parallel``), writing each answer
    once it and all before it are done; a failed batch stops everything with a MonitorError."""
    from monitor.parallel import forked_map

    def score(batch: list[tuple[int, str]]) -> str:
        return _as_text(score_batch(batch, *tools))

    for text in forked_map(score, (batch for chunk in chunks for batch in chunk), jobs):
        out.write(text)
        out.flush()

