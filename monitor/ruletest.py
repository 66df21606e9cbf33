"""What the rules make of sample texts: ``monitor score`` (one text, or JSON lines) and
``monitor rules test`` (precision, recall and F1 per label on a labelled JSON lines file).

A sample is one JSON object: ``text`` (required), ``title``, and, to try the conditions on where
a post came from, ``author``, ``source``, ``kind``, ``tags``, ``reach`` and ``vip`` (true/false;
otherwise the author is looked up in the VIP list). A labelled sample adds ``label``: a string
or a list of them.

How ``rules test`` matches labels: a post is *predicted* L when a rule that matched it has L as
its category or among its tags. The labels ``none`` and ``neutral`` mean "should not be
flagged": a post is predicted ``none`` when no rule matched it. For every label in the file,
gold L vs predicted L gives precision, recall and F1; a label no rule can say is reported as
such. Rules' labels that the file never uses are counted, not scored.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError, MonitorError
from monitor.model import SEVERITIES, Flag, Post, Score
from monitor.rules import RuleSet, VipList, shorten


class PostScorer(Protocol):
    """What is needed of ``monitor.scoring.Scorer``."""

    def score_post(self, post: Post) -> Score: ...

    def score_posts(self, posts: Iterable[Post]) -> list[Score]: ...


log = logging.getLogger(__name__)

NO_FLAG = frozenset({"none", "neutral"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_VIPS = VipList()


class Sample(BaseModel):
    """One input line; unknown keys (an id, a rating) are ignored so labelled data can keep
    its own columns."""

    model_config = ConfigDict(extra="ignore")
    text: str
    title: str | None = None
    author: str | None = None
    source: str = Field("sample", min_length=1)
    kind: str | None = None
    tags: list[str] = Field(default_factory=list)  # not = []: pydantic deep-copies that
    reach: int | None = Field(None, ge=0)
    vip: bool | None = None
    label: str | list[str] | None = None

    def post(self, number: int) -> Post:
        return Post(source=self.source, external_id=str(number), url="", author=self.author,
                    title=self.title, text=self.text, published_at=_EPOCH, reach=self.reach)

    @property
    def labels(self) -> frozenset[str]:
        found = [self.label] if isinstance(self.label, str) else self.label or []
        return frozenset(label.strip().lower() for label in found if label.strip())


def parse_sample(line: str) -> Sample:
    """One JSON line as a Sample; ValueError says what is wrong with it."""
    try:
        data = json.loads(line.strip())
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object such as {"text": "..."}')
    try:
        return Sample.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ValueError(f"{where}: {'required' if first['type'] == 'missing' else first['msg']}"
                         ) from None


def numbered_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) for every non-blank line, counting from 1."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line


@dataclass(frozen=True)
class Judged:
    """One sample with its score and flag."""

    number: int
    sample: Sample
    score: Score
    flag: Flag | None
    said: frozenset[str]  # categories and tags of every rule that matched


def judge(sample: Sample, number: int, score: Score, rules: RuleSet,
          vips: VipList = NO_VIPS) -> Judged:
    """Run the rules over one scored sample, as the pipeline would."""
    post = sample.post(number)
    vip = sample.vip if sample.vip is not None else post.author in vips
    flag = rules.evaluate(post, score, kind=sample.kind, tags=sample.tags, vip=vip)
    said = frozenset(label for rule in rules.rules if flag and rule.id in flag.rules
                     for label in rule.labels)
    return Judged(number, sample, score, flag, said)


def as_json(judged: Judged) -> dict[str, Any]:
    """The ``monitor score`` output for one sample."""
    score, flag = judged.score, judged.flag
    return {
        "compound": score.compound, "pos": score.pos, "neu": score.neu, "neg": score.neg,
        "angry": score.angry,
        "signals": {"anger": score.anger, "change": score.change, "churn": score.churn,
                    "complaint": score.complaint},
        "language": score.language, "sentiment_known": score.sentiment_known,
        "truncated": score.truncated, "worst_sentence": score.worst_sentence,
        "evidence": [list(pair) for pair in score.evidence],
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
    scores = scorer.score_posts([sample.post(number) for _, number, sample in good])
    for (at, number, sample), score in zip(good, scores, strict=True):
        out[at] = as_json(judge(sample, number, score, rules, vips))
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
                _write_pooled(itertools.chain([batches], chunks), out, (rules, scorer, vips),
                              jobs)
                return
            for batch in batches:
                out.write(_as_text(score_batch(batch, rules, scorer, vips)))
                out.flush()
    finally:
        gc.unfreeze()


def _as_text(objects: Iterable[dict[str, Any]]) -> str:
    return "".join(_JSON.encode(obj) + "\n" for obj in objects)


def _can_fork() -> bool:
    """Workers are forked (no second start-up); not on macOS, where forking is unsafe."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


# Set in each worker process by _start_worker: (rules, scorer, vips).
_WORKER_TOOLS: tuple[RuleSet, PostScorer, VipList] | None = None


def _start_worker(rules: RuleSet, scorer: PostScorer, vips: VipList) -> None:
    """Worker set-up, once per process. Forked, it has the parent's objects already; Ctrl-C
    is left to the parent, which stops the pool."""
    global _WORKER_TOOLS
    _WORKER_TOOLS = (rules, scorer, vips)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed (no pool shutdown) would wait for work forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _score_in_worker(batch: list[tuple[int, str]]) -> str:
    assert _WORKER_TOOLS is not None, "_start_worker did not run"
    return _as_text(score_batch(batch, *_WORKER_TOOLS))


def _write_pooled(chunks: Iterable[list[list[tuple[int, str]]]], out: TextIO,
                  tools: tuple[RuleSet, PostScorer, VipList], jobs: int) -> None:
    """Score batches in ``jobs`` forked processes; write the answers in input order.

    A thread reads and hands out batches (a few per worker ahead); this one writes each
    answer once it and all before it are done, so a pause in the input does not hold back
    answers already made. A failed batch stops everything with a MonitorError.
    """
    batches = (batch for chunk in chunks for batch in chunk)
    first = next(batches, None)
    if first is None:
        return
    pending: queue.Queue[Future[str] | BaseException | None] = queue.Queue(4 * jobs)
    stop = threading.Event()
    pool = ProcessPoolExecutor(jobs, multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=tools)
    try:
        # the first submit forks every worker: before our thread starts, as fork wants
        pending.put(pool.submit(_score_in_worker, first))
        threading.Thread(target=_submit_all, args=(batches, pool, pending, stop),
                         name="score-reader", daemon=True).start()
        while (item := pending.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            try:
                text = item.result()
            except BrokenProcessPool:
                raise MonitorError("a scoring worker process died (out of memory? killed?); "
                                   "try --jobs 1") from None
            except Exception as error:
                raise MonitorError(f"scoring failed in a worker process: {error!r}"
                                   ) from error
            out.write(text)
            out.flush()
    finally:
        stop.set()
        _drain(pending)  # a reader blocked on a full queue sees ``stop`` and ends
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(pending)


def _submit_all(batches: Iterator[list[tuple[int, str]]], pool: ProcessPoolExecutor,
                pending: queue.Queue[Future[str] | BaseException | None],
                stop: threading.Event) -> None:
    """The reader thread: submit every batch in order, then None; or the error that ended it.
    Ends early once the writing thread sets ``stop`` (after a failure)."""
    try:
        for batch in batches:
            if stop.is_set():
                return
            pending.put(pool.submit(_score_in_worker, batch))
    except BaseException as error:  # handed to the writing thread, to raise
        pending.put(error)
        return
    pending.put(None)


def _drain(pending: queue.Queue[Any]) -> None:
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return


# ---------------------------------------------------------------------------- rules test


@dataclass(frozen=True)
class LabelResult:
    label: str
    gold: int
    predicted: int
    right: int
    sayable: bool  # some rule can predict it (or it is a "should not be flagged" label)

    @property
    def precision(self) -> float | None:
        return self.right / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.right / self.gold if self.gold else None

    @property
    def f1(self) -> float | None:
        both = self.gold + self.predicted  # 2PR/(P+R), written so that P = 0/0 is no problem
        return 2 * self.right / both if both else None


@dataclass(frozen=True)
class Misses:
    label: str
    missed: tuple[Judged, ...]          # labelled L, not predicted L (worst first)
    wrong: tuple[Judged, ...]           # predicted L, labelled otherwise (worst first)


@dataclass(frozen=True)
class Evaluation:
    file: str
    total: int
    flagged: int
    labels: tuple[LabelResult, ...]
    rules: tuple[tuple[str, int, int | None], ...]   # rule id, matched, right (None: unscored)
    unscored: tuple[tuple[str, int], ...]            # predicted labels the file never uses
    misses: tuple[Misses, ...]


def read_labelled(path: Path) -> list[tuple[int, Sample]]:
    """The labelled samples of ``path``; every bad line is named in one ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read ({error})", str(path)) from None
    samples, problems = [], []
    for number, line in numbered_lines(text.splitlines()):
        try:
            sample = parse_sample(line)
        except ValueError as error:
            problems.append(ConfigError(str(error), str(path), f"line {number}"))
            continue
        if not sample.labels:
            problems.append(ConfigError("label: required", str(path), f"line {number}"))
            continue
        samples.append((number, sample))
    if problems:
        raise ConfigError.combine(problems)
    if not samples:
        raise ConfigError("no labelled samples (one JSON object per line)", str(path))
    return samples


def run_test(samples: Sequence[tuple[int, Sample]], rules: RuleSet, scorer: PostScorer,
             vips: VipList = NO_VIPS, file: str = "", worst: int = 5) -> Evaluation:
    """Judge every sample and compare what the rules said with the gold labels."""
    scores = scorer.score_posts(sample.post(number) for number, sample in samples)
    judged = [judge(sample, number, score, rules, vips)
              for (number, sample), score in zip(samples, scores, strict=True)]
    gold_counts = Counter(label for j in judged for label in j.sample.labels)
    sayable = {label for rule in rules.rules for label in rule.labels}
    results, misses = [], []
    for label, gold in sorted(gold_counts.items(), key=lambda item: (-item[1], item[0])):
        says = _predicts(label)
        predicted = [j for j in judged if says(j)]
        right = sum(label in j.sample.labels for j in predicted)
        can = label in NO_FLAG or label in sayable
        results.append(LabelResult(label, gold, len(predicted), right, can))
        if can:
            misses.append(_misses(label, judged, says, worst))
    rule_rows = []
    for rule in rules.rules:
        hits = [j for j in judged if j.flag and rule.id in j.flag.rules]
        scored = rule.labels & gold_counts.keys()
        right = sum(bool(j.sample.labels & rule.labels) for j in hits) if scored else None
        rule_rows.append((rule.id, len(hits), right))
    unscored = Counter(label for j in judged for label in j.said - gold_counts.keys())
    return Evaluation(file, len(judged), sum(j.flag is not None for j in judged),
                      tuple(results), tuple(rule_rows), tuple(sorted(unscored.items())),
                      tuple(misses))


def _predicts(label: str) -> Callable[[Judged], bool]:
    if label in NO_FLAG:
        return lambda j: j.flag is None
    return lambda j: label in j.said


def _misses(label: str, judged: Sequence[Judged], says: Callable[[Judged], bool],
            worst: int) -> Misses:
    """The most telling mistakes: missed posts whose compound is most typical of the label
    (lowest for labels whose posts run negative, such as anger; highest for praise), and
    wrongly flagged posts with the highest severity first."""
    gold = [j for j in judged if label in j.sample.labels]
    mean = sum(j.score.compound for j in judged) / len(judged)
    sign = 1.0 if sum(j.score.compound for j in gold) / len(gold) <= mean else -1.0

    def typical(j: Judged) -> float:
        return sign * j.score.compound

    def severity(j: Judged) -> int:
        return -SEVERITIES.index(j.flag.severity) if j.flag else 0

    if label in NO_FLAG:  # "missed" = flagged although it should not be
        missed = sorted((j for j in gold if not says(j)), key=lambda j: (severity(j), -typical(j)))
        return Misses(label, tuple(missed[:worst]), ())
    missed = sorted((j for j in gold if not says(j)), key=typical)
    wrong = sorted((j for j in judged if says(j) and label not in j.sample.labels),
                   key=lambda j: (severity(j), typical(j)))
    return Misses(label, tuple(missed[:worst]), tuple(wrong[:worst]))


def render(report: Evaluation) -> str:
    """The table, the rules' hits and the worst misses, as ``monitor rules test`` prints them."""
    lines = [f"{report.file}: {report.total} posts, {report.flagged} flagged", ""]
    width = max([len(r.label) for r in report.labels] + [5])
    lines.append(f"{'label':<{width}}  {'posts':>5}  {'predicted':>9}  {'right':>5}  "
                 f"{'precision':>9}  {'recall':>6}  {'F1':>5}")
    for r in report.labels:
        if not r.sayable:
            lines.append(f"{r.label:<{width}}  {r.gold:>5}  no rule has category or tag "
                         f"'{r.label}'")
            continue
        note = "  (predicted = not flagged)" if r.label in NO_FLAG else ""
        lines.append(f"{r.label:<{width}}  {r.gold:>5}  {r.predicted:>9}  {r.right:>5}  "
                     f"{_ratio(r.precision):>9}  {_ratio(r.recall):>6}  {_ratio(r.f1):>5}{note}")
    if report.unscored:
        lines.append("not in this file's labels, so not scored: " + ", ".join(
            f"{label} ({count} posts)" for label, count in report.unscored))
    lines += ["", f"{'rule':<24}  matched  right  precision"]
    for rule_id, matched, right in report.rules:
        shown = "-" if right is None else str(right)
        precision = _ratio(right / matched) if right is not None and matched else "-"
        lines.append(f"{rule_id:<24}  {matched:>7}  {shown:>5}  {precision:>9}")
    for found in report.misses:
        if found.missed:
            what = ("flagged although labelled" if found.label in NO_FLAG
                    else "missed, labelled")
            lines += ["", f"worst misses: {what} '{found.label}'"]
            lines += [_example(j) for j in found.missed]
        if found.wrong:
            lines += ["", f"worst misses: predicted '{found.label}', labelled otherwise"]
            lines += [_example(j) for j in found.wrong]
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _example(j: Judged) -> str:
    labels = ",".join(sorted(j.sample.labels))
    head = f"  line {j.number} [{labels}] compound {j.score.compound:+.2f}"
    if j.flag:
        head += f", {j.flag.severity} by {', '.join(j.flag.rules)}"
    text = shorten(f"{j.sample.title}: {j.sample.text}" if j.sample.title else j.sample.text, 160)
    out = f"{head}\n    \"{text}\""
    if j.flag:
        out += "\n    " + "\n    ".join(shorten(r, 160) for r in j.flag.reasons)
    return out


