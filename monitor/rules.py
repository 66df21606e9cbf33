"""Rule packs (``rules/*.yaml``) compiled once into checks: (post, score, context) -> Flag.

A rule file::

    rules:
      - id: backlash-redesign
        severity: high            # low | medium | high | critical
        category: backlash
        tags: [change]
        when:                     # all / any / not and the conditions in conditions.py
          all:
            - any: [{change: {min: 0.5}}, {words: [redesign, "bring back the old*"]}]
            - any: [{angry: true}, {compound: {max: -0.3}}]
            - not: {source: [status-page]}

``words`` match whole words or phrases, case-insensitive; ``*`` stands for any letters.
A post matched by several rules gets the highest severity (on a tie, the category of the rule
loaded first: files in name order, rules in file order), every rule id and every reason.
Every match says why, in a sentence a person can check, so they can trust (or fix) the flag.
Conditions on where a post came from (kind, source tags, VIP author) read a ``Subject`` built
from plain arguments to ``RuleSet.evaluate``, so this module needs nothing but the post and
score; they are matchers (``monitor.matchers``), written as a route's ``match:`` is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.conditions import Clauses, compile_condition, gates, texts
from monitor.errors import ConfigError
from monitor.model import SEVERITIES, Flag, Post, Score
from monitor.textmatch import PIECES
from monitor.yamlfile import read_yaml, shown_path

Reasons = list[str] | None
"""A condition's verdict: None when it does not match, else the sentences saying why."""


MAX_READ_CHARS = 20_000
"""Rules read at most this much of a post (and of its thread title): a regex over a 1 MB post
takes most of a second, and what matters is said long before."""


@dataclass(slots=True)
class Subject:
    """What rules read: the author's own words, the thread title a reply sits under, and
    the labels of where the post came from (its source, the source's kind and tags, its
    author and whether a VIP, its language): the labels object of ``monitor.matchers``.

    Not frozen, though nothing changes one: a frozen dataclass sets each field through
    ``object.__setattr__``, which costs about a microsecond per post (of some 13 for all
    the shipped rules)."""

    own: str
    thread: str = ""
    post: Post | None = None
    kind: str | None = None
    source_tags: tuple[str, ...] = ()
    vip: bool = False
    cut: bool = False                                     # own words beyond MAX_READ_CHARS
    language: str = "unknown"                             # as the scorer said
    own_lower: str = field(init=False, compare=False)     # for ``words``: lowered once
    thread_lower: str = field(init=False, compare=False)
    source: str | None = field(init=False, compare=False)     # the post's, for matchers
    author: str | None = field(init=False, compare=False)
    own_pieces: frozenset[int] | None | bool = field(init=False, compare=False)
    thread_pieces: frozenset[int] | None | bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        self.own_lower = self.own.lower()
        self.thread_lower = self.thread.lower()
        self.source = self.post.source if self.post else None
        self.author = self.post.author if self.post else None
        self.own_pieces = self.thread_pieces = False   # not looked for yet

    def pieces(self, thread: bool = False) -> frozenset[int] | None:
        """Which pieces of the text conditions (``textmatch.PIECES``) the own words (or the
        thread title) hold: looked for once per post, for every condition. None: RE2 could
        not tell."""
        found = self.thread_pieces if thread else self.own_pieces
        if found is False:
            found = PIECES.found(self.thread, self.thread_lower) if thread else \
                PIECES.found(self.own, self.own_lower)
            if thread:
                self.thread_pieces = found
            else:
                self.own_pieces = found
        return found  # type: ignore[return-value]

    @classmethod
    def of(cls, post: Post, kind: str | None = None, tags: Sequence[str] = (),
           vip: bool = False, language: str | None = None) -> Subject:
        """``tags`` are the source's; ``language`` the scorer's (None: unknown)."""
        own, thread = (post.text, post.title or "") if post.is_reply else (
            f"{post.title}\n{post.text}" if post.title else post.text, "")
        return cls(own[:MAX_READ_CHARS], thread[:MAX_READ_CHARS], post, kind, tuple(tags), vip,
                   len(own) > MAX_READ_CHARS, language or "unknown")


Check = Callable[[Subject, Score], Reasons]


RULE_ID = r"^[A-Za-z0-9_.-]+$"
"""What a rule id may hold: it is shown in keys, reasons and routes."""
_RULE_ID = re.compile(RULE_ID.strip("^$"))


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, pattern=RULE_ID)
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
    notices: tuple[str, ...] = ()   # what ``monitor check`` says of how it is written

    @property
    def labels(self) -> frozenset[str]:
        """What a match says about a post: its category and tags (used by ``rules test``)."""
        return frozenset(self.tags) | ({self.category} if self.category else set())


@dataclass(frozen=True)
class VipList:
    """The authors who matter most (config ``vip_authors``): ``author in vips``, case ignored."""

    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Iterable[str]) -> VipList:
        return cls(frozenset(n.strip().casefold() for n in names if n.strip()))

    def __contains__(self, author: object) -> bool:
        return isinstance(author, str) and author.strip().casefold() in self.names


_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    # what ``evaluate`` and ``labels_of`` look up for each post, worked out once
    _checks: tuple[tuple[Clauses, tuple[frozenset[int], ...], Check, Rule], ...] = field(
        init=False, repr=False, compare=False)
    _labels: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels: dict[str, frozenset[str]] = {}
        for rule in self.rules:
            labels[rule.id] = labels.get(rule.id, frozenset()) | rule.labels
        object.__setattr__(self, "_checks", tuple(
            (gates(rule.check), texts(rule.check), rule.check, rule) for rule in self.rules))
        object.__setattr__(self, "_labels", labels)

    @property
    def notices(self) -> tuple[str, ...]:
        """Every rule's notices (old spellings, still read), for ``monitor check``."""
        return tuple(notice for rule in self.rules for notice in rule.notices)

    def labels_of(self, flag: Flag) -> frozenset[str]:
        """The categories and tags of every rule that gave ``flag`` (for ``rules test``)."""
        labels = self._labels
        return frozenset().union(*(labels.get(rule_id, ()) for rule_id in flag.rules))

    def evaluate(self, post: Post, score: Score, *, kind: str | None = None,
                 tags: Sequence[str] = (), vip: bool = False) -> Flag | None:
        """The flag for ``post``: the highest severity and every matching rule's reasons.

        ``kind`` and ``tags`` are the post's source's; ``vip`` says its author is on the VIP
        list (``post.author in VipList.of(config.main.vip_authors)``). Conditions on what is
        not given do not match (``kind: [rss]`` without ``kind``, ``vip: true`` by default).
        """
        subject = Subject.of(post, kind, tags, vip, score.language)
        matched = []
        # a rule is called only if what it needs of the score (conditions.gates) and of the
        # words (conditions.texts) is there: tested here, in a loop, for a fraction of what
        # calling its conditions would cost only to say no (most rules, for most posts)
        for clauses, needs, check, rule in self._checks:
            may = True
            for clause in clauses:
                for read, low, high, known, negate in clause:
                    if (low <= read(score) <= high and (not known or score.sentiment_known)) \
                            != negate:
                        break   # this gate is open
                else:
                    may = False   # no gate of this clause is
                    break
            if may and needs and not subject.thread:
                found = subject.pieces()
                if found is not None:
                    for pieces in needs:
                        if found.isdisjoint(pieces):
                            may = False
                            break
            if may and (why := check(subject, score)) is not None:
                matched.append((rule, why))
        if not matched:
            return None
        top = matched[0][0] if len(matched) == 1 else max(
            matched, key=lambda m: _RANK[m[0].severity])[0]   # a tie: the first loaded
        ids, reasons, tags_ = [], [], {}   # one loop: a generator costs a function and a frame
        for rule, why in matched:
            ids.append(rule.id)
            reasons.append(f"{rule.id}: {'; '.join(dict.fromkeys(why)) or 'matched'}")
            tags_.update(dict.fromkeys(rule.tags))
        if score.truncated or subject.cut:
            reasons.append("only the first part of this long post was scored")
        return Flag(severity=top.severity, rules=tuple(ids), reasons=tuple(reasons),
                    category=top.category, tags=tuple(tags_))


REPLIES = "replies"
"""``rules/replies.yaml`` holds reply templates for the outreach queue, not rules."""


def load_rules(folder: Path, base: Path) -> RuleSet:
    """Compile every ``*.yaml`` in ``folder`` but ``replies.yaml`` (the queue's reply
    templates); one ConfigError lists all mistakes."""
    if not folder.is_dir():
        raise ConfigError("rules folder not found", shown_path(folder, base))
    rules: list[Rule] = []
    problems: list[ConfigError] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.y*ml")):
        if path.stem == REPLIES:
            continue
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
    rules: list[Rule] = []
    problems: list[ConfigError] = []
    ids: dict[str, str] = {}
    for i, entry in enumerate(entries):
        key = f"rules[{i}]"
        found: list[ConfigError] = []
        rule_id = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(rule_id, str):
            if _RULE_ID.fullmatch(rule_id):  # a wrong id (a newline) is not put in the key
                key += f" ({rule_id})"
            if rule_id in ids:
                found.append(ConfigError(f"duplicate rule id (also {ids[rule_id]})", shown,
                                         f"{key}.id"))
            ids.setdefault(rule_id, key.split(" ")[0])
        spec = None
        try:
            spec = RuleSpec.model_validate(entry)
        except ValidationError as error:
            found += [ConfigError(e["msg"] if e["type"] != "missing" else "required", shown,
                                  ".".join([key, *map(str, e["loc"])]))
                      for e in error.errors()]
        compiled = None
        if isinstance(entry, dict) and "when" in entry:  # a wrong severity hides no condition
            try:
                compiled = compile_condition(entry["when"], shown, f"{key}.when")
            except ConfigError as error:
                found.append(error)
        if found or spec is None or compiled is None:
            problems += found
            continue
        check, notices = compiled
        rules.append(Rule(spec.id, spec.severity, spec.category, tuple(spec.tags), check, shown,
                          tuple(notices)))
    if problems:
        raise ConfigError.combine(problems)
    return rules

