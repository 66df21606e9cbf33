"""Rule packs (``rules/*.yaml``) compiled once into matchers: (post, score) -> Flag | None.

A rule file::

    rules:
      - id: backlash-redesign
        severity: high            # low | medium | high | critical
        category: backlash
        tags: [change]
        when:                     # all / any / not, words, regex, compound/pos/neu/neg
          all:
            - compound: {max: -0.3}
            - words: [redesign, "new layout", "bring back the old*"]

``words`` match whole words or phrases, case-insensitive; ``*`` stands for any letters.
Every match says why, so a person can trust (or fix) the flag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError
from monitor.model import SEVERITIES, Flag, Post, Score
from monitor.yamlfile import read_yaml, shown_path

Reasons = list[str] | None
"""A condition's verdict: None when it does not match, else the sentences saying why."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What rules read: the author's own words, and the thread title a reply sits under."""

    own: str
    thread: str = ""

    @classmethod
    def of(cls, post: Post) -> Subject:
        if post.is_reply:
            return cls(post.text, post.title or "")
        return cls(f"{post.title}\n{post.text}" if post.title else post.text)


Check = Callable[[Subject, Score], Reasons]


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    category: str | None = None
    tags: list[str] = []
    when: Any


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    category: str | None
    tags: tuple[str, ...]
    check: Check
    file: str


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def evaluate(self, post: Post, score: Score) -> Flag | None:
        """The flag for ``post``: the highest severity and every matching rule's reasons."""
        subject = Subject.of(post)
        matched = [(rule, why) for rule in self.rules if (why := rule.check(subject, score))
                   is not None]
        if not matched:
            return None
        top = max(matched, key=lambda m: SEVERITIES.index(m[0].severity))[0]
        reasons = tuple(f"{rule.id}: {'; '.join(why) or 'matched'}" for rule, why in matched)
        if score.truncated:
            reasons += ("only the first part of this long post was scored",)
        tags = tuple(dict.fromkeys(t for rule, _ in matched for t in rule.tags))
        return Flag(severity=top.severity, rules=tuple(r.id for r, _ in matched),
                    reasons=reasons, category=top.category, tags=tags)


def load_rules(folder: Path, base: Path) -> RuleSet:
    """Compile every ``*.yaml`` in ``folder``; one ConfigError lists all mistakes."""
    if not folder.is_dir():
        raise ConfigError("rules folder not found", shown_path(folder, base))
    rules: list[Rule] = []
    problems: list[ConfigError] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.y*ml")):
        shown = shown_path(path, base)
        try:
            compiled = compile_rules(read_yaml(path, shown).get("rules"), shown)
        except ConfigError as error:
            problems.append(error)
            continue
        for rule in compiled:
            if rule.id in seen:
                problems.append(ConfigError(f"duplicate rule id (also in {seen[rule.id]})",
                                            shown, rule.id))
            seen[rule.id] = shown
            rules.append(rule)
    if problems:
        raise ConfigError.combine(problems)
    return RuleSet(tuple(rules))


def compile_rules(entries: Any, shown: str) -> list[Rule]:
    """Rules from the parsed ``rules:`` list of one file."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError("must be a list of rules", shown, "rules")
    rules, problems = [], []
    ids: dict[str, str] = {}
    for i, entry in enumerate(entries):
        key = f"rules[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            key += f" ({entry['id']})"
        try:
            spec = RuleSpec.model_validate(entry)
        except ValidationError as error:
            problems += [ConfigError(e["msg"] if e["type"] != "missing" else "required", shown,
                                     ".".join([key, *map(str, e["loc"])]))
                         for e in error.errors()]
            continue
        try:
            check = _compile(spec.when, shown, f"{key}.when")
        except ConfigError as error:
            problems.append(error)
            continue
        if spec.id in ids:
            problems.append(ConfigError(f"duplicate rule id (also {ids[spec.id]})", shown,
                                        f"{key}.id"))
        ids[spec.id] = key.split(" ")[0]
        rules.append(Rule(spec.id, spec.severity, spec.category, tuple(spec.tags), check, shown))
    if problems:
        raise ConfigError.combine(problems)
    return rules


_SCORES = ("compound", "pos", "neu", "neg")
_KNOWN = ("all", "any", "not", "words", "regex", *_SCORES)


def _compile(node: Any, file: str, key: str) -> Check:
    if not isinstance(node, dict) or len(node) != 1:
        raise ConfigError(f"a condition is a mapping with one key, one of: {', '.join(_KNOWN)}",
                          file, key)
    (name, value), = node.items()
    key = f"{key}.{name}"
    if name in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise ConfigError("must be a non-empty list of conditions", file, key)
        parts = [_compile(v, file, f"{key}[{i}]") for i, v in enumerate(value)]
        return _all(parts) if name == "all" else _any(parts)
    if name == "not":
        return _not(_compile(value, file, key))
    if name == "words":
        return _words(value, file, key)
    if name == "regex":
        return _regex(value, file, key)
    if name in _SCORES:
        return _threshold(name, value, file, key)
    raise ConfigError(f"unknown condition {name!r} (known: {', '.join(_KNOWN)})", file, key)


def _all(parts: Sequence[Check]) -> Check:
    def check(subject: Subject, score: Score) -> Reasons:
        reasons: list[str] = []
        for part in parts:
            why = part(subject, score)
            if why is None:
                return None
            reasons += why
        return reasons
    return check


def _any(parts: Sequence[Check]) -> Check:
    def check(subject: Subject, score: Score) -> Reasons:
        found = [why for part in parts if (why := part(subject, score)) is not None]
        return [r for why in found for r in why] if found else None
    return check


def _not(part: Check) -> Check:
    return lambda subject, score: [] if part(subject, score) is None else None


def word_pattern(term: str) -> str:
    """A whole-word, case-insensitive pattern for a word or phrase; ``*`` is any letters."""
    pieces = [re.escape(p).replace(r"\*", r"\w*") for p in term.split()]
    return r"(?<!\w)" + r"\s+".join(pieces) + r"(?!\w)"


def _words(value: Any, file: str, key: str) -> Check:
    terms = [value] if isinstance(value, str) else value
    if not isinstance(terms, list) or not terms or not all(
            isinstance(t, str) and t.strip() for t in terms):
        raise ConfigError("must be a word or a list of words and phrases", file, key)
    pattern = re.compile("|".join(f"({word_pattern(t)})" for t in terms), re.IGNORECASE)

    def check(subject: Subject, score: Score) -> Reasons:
        own = _hits(pattern, subject.own)
        thread = [h for h in _hits(pattern, subject.thread) if h not in own]
        reasons = [f"mentions {_listed(own)}"] * bool(own)
        reasons += [f"thread title mentions {_listed(thread)}"] * bool(thread)
        return reasons or None
    return check


def _hits(pattern: re.Pattern[str], text: str) -> list[str]:
    return list(dict.fromkeys(" ".join(m.group(0).lower().split())
                              for m in pattern.finditer(text)))


def _listed(hits: list[str]) -> str:
    return ", ".join(f"'{h}'" for h in hits)


def _regex(value: Any, file: str, key: str) -> Check:
    if not isinstance(value, str):
        raise ConfigError("must be a regular expression", file, key)
    try:
        pattern = re.compile(value, re.IGNORECASE)
    except re.error as error:
        raise ConfigError(f"not a valid regular expression ({error})", file, key) from None

    def check(subject: Subject, score: Score) -> Reasons:
        if match := pattern.search(subject.own):
            return [f"says '{match.group(0)[:80]}'"]
        if match := pattern.search(subject.thread):
            return [f"thread title says '{match.group(0)[:80]}'"]
        return None
    return check


def _threshold(name: str, value: Any, file: str, key: str) -> Check:
    if not isinstance(value, dict) or not value or set(value) - {"min", "max"} or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        raise ConfigError("must be {min: NUMBER} and/or {max: NUMBER}", file, key)
    low, high = value.get("min", float("-inf")), value.get("max", float("inf"))
    bound = " and ".join([f"at least {low:+.2f}"] * ("min" in value)
                         + [f"at most {high:+.2f}"] * ("max" in value))

    def check(subject: Subject, score: Score) -> Reasons:
        number = getattr(score, name)
        return [f"{name} {number:+.2f} ({bound})"] if low <= number <= high else None
    return check
