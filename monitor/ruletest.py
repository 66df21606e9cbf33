"""What the rules make of sample texts: the sample format, shared with ``monitor score``
(``monitor.scorestream``), and ``monitor rules test`` (precision, recall and F1 per label on a
labelled JSON lines file).

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

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.conditions import shorten
from monitor.errors import ConfigError
from monitor.model import SEVERITIES, Flag, Post, Score
from monitor.rules import RuleSet, VipList


class PostScorer(Protocol):
    """What is needed of ``monitor.scoring.Scorer``."""

    def score_posts(self, posts: Iterable[Post]) -> list[Score]: ...

    def preload(self) -> None: ...


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
    data = _loads(line.strip())
    if not isinstance(data, dict):
        raise ValueError('must be a JSON object such as {"text": "..."}')
    try:
        return Sample.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0])  # not pydantic's ``label.str``: the key the user wrote
        said = "required" if first["type"] == "missing" else _MUST.get(field, "must be a string")
        raise ValueError(f"{field}: {said}") from None


_MUST = {"source": "must be a non-empty string", "tags": "must be a list of strings",
         "reach": "must be a whole number, 0 or more", "vip": "must be true or false",
         "label": "must be a string (or a list of strings)"}
"""What a wrong value of each key must be, in the user's words (the others take a string)."""


def _loads(text: str) -> object:
    """``json.loads``, by orjson (a third of the time) where that gives the same value.

    orjson refuses some of what the json module reads (NaN, 1e400, a lone surrogate's
    escape, very deep nesting) and reads an integer beyond 64 bits as a float: such a line is
    read by the json module, which also words the error for a line that is not JSON."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _json_loads(text)
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _FIELDS and (type(value) is float or type(value) is list and any(
                    type(item) is float for item in value)):
                return _json_loads(text)  # maybe a huge integer, which json keeps exact
    return data


_FIELDS = frozenset(Sample.model_fields)
"""The keys a Sample reads (the others are ignored, whatever orjson made of them)."""


def _json_loads(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno})") from None


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
          vips: VipList = NO_VIPS, post: Post | None = None) -> Judged:
    """Run the rules over one scored sample, as the pipeline would (``post``: the sample's
    ``post(number)``, when the caller has made it already)."""
    flag = flag_of(sample, sample.post(number) if post is None else post, score, rules, vips)
    return Judged(number, sample, score, flag, rules.labels_of(flag) if flag else _NOTHING)


def flag_of(sample: Sample, post: Post, score: Score, rules: RuleSet,
            vips: VipList = NO_VIPS) -> Flag | None:
    """The flag the rules give the sample's post: all ``monitor score`` needs of ``judge``."""
    vip = sample.vip if sample.vip is not None else post.author in vips
    return rules.evaluate(post, score, kind=sample.kind, tags=sample.tags, vip=vip)


_NOTHING: frozenset[str] = frozenset()


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
    posts = [sample.post(number) for number, sample in samples]
    scores = scorer.score_posts(posts)
    judged = [judge(sample, number, score, rules, vips, post)
              for (number, sample), post, score in zip(samples, posts, scores, strict=True)]
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


