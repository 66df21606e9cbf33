"""Rule packs (``rules/*.yaml``) compiled once into matchers: (post, score, context) -> Flag.

A rule file::

    rules:
      - id: backlash-redesign
        severity: high            # low | medium | high | critical
        category: backlash
        tags: [change]
        when:                     # all / any / not and the conditions in CONDITIONS
          all:
            - any: [{change: {min: 0.5}}, {words: [redesign, "bring back the old*"]}]
            - any: [{angry: true}, {compound: {max: -0.3}}]
            - not: {source: [status-page]}

``words`` match whole words or phrases, case-insensitive; ``*`` stands for any letters.
A post matched by several rules gets the highest severity (on a tie, the category of the rule
loaded first: files in name order, rules in file order), every rule id and every reason.
Every match says why, in a sentence a person can check, so they can trust (or fix) the flag.
Conditions on where a post came from (kind, tags, VIP author) read a ``Subject`` built from
plain arguments to ``RuleSet.evaluate``, so this module needs nothing but the post and score.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError
from monitor.model import SEVERITIES, Flag, Post, Score
from monitor.yamlfile import read_yaml, shown_path

Reasons = list[str] | None
"""A condition's verdict: None when it does not match, else the sentences saying why."""


MAX_READ_CHARS = 20_000
"""Rules read at most this much of a post (and of its thread title): a regex over a 1 MB post
takes most of a second, and what matters is said long before."""


@dataclass(slots=True)
class Subject:
    """What rules read: the author's own words, the thread title a reply sits under, and
    where the post came from (its source's kind and tags, whether its author is a VIP).

    Not frozen, though nothing changes one: a frozen dataclass sets each field through
    ``object.__setattr__``, which costs about a microsecond per post (of some 13 for all
    the shipped rules)."""

    own: str
    thread: str = ""
    post: Post | None = None
    kind: str | None = None
    tags: tuple[str, ...] = ()
    vip: bool = False
    cut: bool = False                                     # own words beyond MAX_READ_CHARS
    own_lower: str = field(init=False, compare=False)     # for ``words``: lowered once
    thread_lower: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        self.own_lower = self.own.lower()
        self.thread_lower = self.thread.lower()

    @classmethod
    def of(cls, post: Post, kind: str | None = None, tags: Sequence[str] = (),
           vip: bool = False) -> Subject:
        own, thread = (post.text, post.title or "") if post.is_reply else (
            f"{post.title}\n{post.text}" if post.title else post.text, "")
        return cls(own[:MAX_READ_CHARS], thread[:MAX_READ_CHARS], post, kind, tuple(tags), vip,
                   len(own) > MAX_READ_CHARS)


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


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def evaluate(self, post: Post, score: Score, *, kind: str | None = None,
                 tags: Sequence[str] = (), vip: bool = False) -> Flag | None:
        """The flag for ``post``: the highest severity and every matching rule's reasons.

        ``kind`` and ``tags`` are the post's source's; ``vip`` says its author is on the VIP
        list (``post.author in VipList.of(config.main.vip_authors)``). Conditions on what is
        not given do not match (``kind: [rss]`` without ``kind``, ``vip: true`` by default).
        """
        subject = Subject.of(post, kind, tags, vip)
        matched = [(rule, why) for rule in self.rules
                   if (why := rule.check(subject, score)) is not None]
        if not matched:
            return None
        top = max(matched, key=lambda m: SEVERITIES.index(m[0].severity))[0]
        reasons = tuple(f"{rule.id}: {'; '.join(dict.fromkeys(why)) or 'matched'}"
                        for rule, why in matched)
        if score.truncated or subject.cut:
            reasons += ("only the first part of this long post was scored",)
        tags_ = tuple(dict.fromkeys(t for rule, _ in matched for t in rule.tags))
        return Flag(severity=top.severity, rules=tuple(r.id for r, _ in matched),
                    reasons=reasons, category=top.category, tags=tags_)


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


@dataclass(frozen=True, slots=True)
class Condition:
    """A key that a rule's ``when:`` accepts: how its value becomes a check (``build(name,
    value, file, key)``, raising ConfigError), an example, and what it means (for ``monitor
    kinds``). The table of them is ``CONDITIONS``, at the end of this module."""

    build: Callable[[str, Any, str, str], Check]
    example: str
    help: str


_TEXT_COST = 1  # reading the text (words, regex) costs far more than comparing a number


def _cost(check: Check) -> int:
    return getattr(check, "cost", 0)


def _costs(check: Check, cost: int) -> Check:
    check.cost = cost  # type: ignore[attr-defined]
    return check


def _compile(node: Any, file: str, key: str) -> Check:
    if not isinstance(node, dict) or len(node) != 1:
        raise ConfigError(
            f"a condition is a mapping with one key, one of: {', '.join(CONDITIONS)}", file, key)
    (name, value), = node.items()
    key = f"{key}.{name}"
    condition = CONDITIONS.get(name)
    if condition is None:
        raise ConfigError(f"unknown condition {name!r} (known: {', '.join(CONDITIONS)})", file,
                          key)
    return condition.build(name, value, file, key)


def _group(name: str, value: Any, file: str, key: str) -> Check:
    """``all`` or ``any``: a list of conditions; costs what its dearest part costs."""
    if not isinstance(value, list) or not value:
        raise ConfigError("must be a non-empty list of conditions", file, key)
    parts = [_compile(v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    return _costs(_all(parts) if name == "all" else _any(parts), max(map(_cost, parts)))


def _negated(name: str, value: Any, file: str, key: str) -> Check:
    part = _compile(value, file, key)
    return _costs(_not(part), _cost(part))


def _unnamed(build: Callable[[Any, str, str], Check],
             cost: int = 0) -> Callable[[str, Any, str, str], Check]:
    """A builder that needs no name, as the table calls it (``cost``: see ``_all``)."""
    return lambda _name, value, file, key: _costs(build(value, file, key), cost)


def _all(parts: Sequence[Check]) -> Check:
    """Every part must match. Cheap parts (numbers, names) are tried before the ones that read
    the text, so most posts are turned away early; the reasons keep the written order."""
    order = sorted(range(len(parts)), key=lambda i: _cost(parts[i]))
    first, rest = parts[order[0]], order[1:]

    def check(subject: Subject, score: Score) -> Reasons:
        if (why := first(subject, score)) is None:   # most posts: no list built
            return None
        found: list[Reasons] = [None] * len(parts)
        found[order[0]] = why
        for i in rest:
            why = parts[i](subject, score)
            if why is None:
                return None
            found[i] = why
        return [reason for why in found for reason in why or ()]
    return check


def _any(parts: Sequence[Check]) -> Check:
    """The first alternative that matches says why; the rest are not even tried."""
    def check(subject: Subject, score: Score) -> Reasons:
        for part in parts:
            if (why := part(subject, score)) is not None:
                return why
        return None
    return check


def _not(part: Check) -> Check:
    return lambda subject, score: [] if part(subject, score) is None else None


def _term(term: str) -> str:
    pieces = [re.escape(p).replace(r"\*", r"\w*") for p in term.lower().split()]
    return r"\s+".join(pieces)


def _words(value: Any, file: str, key: str) -> Check:
    terms = [value] if isinstance(value, str) else value
    if not isinstance(terms, list) or not terms or not all(
            isinstance(t, str) and t.strip() for t in terms):
        raise ConfigError("must be a word or a list of words and phrases", file, key)
    # one pattern, with the word boundaries outside the alternatives (checked once per
    # position, not once per term), over the lowercased text (no IGNORECASE needed)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(_term(t) for t in terms) + r")(?!\w)")
    needs = word_needs(terms)

    def hits(text: str) -> list[str]:
        # the pattern's leading lookbehind makes the engine try every position, slowly;
        # most posts lack every needed piece, which plain substring tests see far sooner
        if needs is not None and not _has_any(text, needs):
            return []
        return _hits(pattern, text)
    on_empty = hits("")                # what an empty thread title (most posts) gives

    def check(subject: Subject, score: Score) -> Reasons:
        own = hits(subject.own_lower)
        thread = hits(subject.thread_lower) if subject.thread_lower else on_empty
        if not own and not thread:
            return None
        thread = [h for h in thread if h not in own]
        reasons = [f"mentions {_listed(own)}"] if own else []
        if thread:
            reasons.append(f"thread title mentions {_listed(thread)}")
        return reasons
    return check


def word_needs(terms: Iterable[str]) -> tuple[str, ...] | None:
    """Substrings of which a lowercased text must contain one for ``terms`` to match it.

    A match of a term contains each of its letters between spaces and ``*`` verbatim, so
    checking one piece per term (its longest) can only turn away texts that cannot match.
    None when some term is all wildcards (nothing is sure to be in its match)."""
    chosen = []
    for term in terms:
        pieces = [f for part in term.lower().split() for f in part.split("*") if f]
        if not pieces:
            return None
        chosen.append(max(pieces, key=len))
    unique = sorted(set(chosen), key=lambda f: (len(f), f))
    # a text holding "thanks" also holds "thank": the shorter one alone decides
    return tuple(f for i, f in enumerate(unique) if not any(g in f for g in unique[:i]))


def _has_any(text: str, needles: tuple[str, ...]) -> bool:
    for needle in needles:  # noqa: SIM110 (a plain loop: twice as fast as any() here)
        if needle in text:
            return True
    return False


def _hits(pattern: re.Pattern[str], text: str) -> list[str]:
    return list(dict.fromkeys(" ".join(m.group(0).split()) for m in pattern.finditer(text)))


def _listed(hits: list[str]) -> str:
    return ", ".join(f"'{h}'" for h in hits)


def _regex(value: Any, file: str, key: str) -> Check:
    if not isinstance(value, str):
        raise ConfigError("must be a regular expression", file, key)
    try:
        pattern = re.compile(value, re.IGNORECASE)
    except re.error as error:
        raise ConfigError(f"not a valid regular expression ({error})", file, key) from None
    needs = regex_needs(pattern)
    on_empty = pattern.search("")      # what an empty thread title (most posts) gives

    def search(text: str, lower: str) -> re.Match[str] | None:
        # with IGNORECASE the engine tries the pattern at every position; a missing needed
        # piece says "no" sooner. Only for ASCII text, where lower() is what IGNORECASE does
        if needs is not None and text.isascii() and not _has_any(lower, needs):
            return None
        return pattern.search(text)

    def check(subject: Subject, score: Score) -> Reasons:
        if match := search(subject.own, subject.own_lower):
            return [f"says '{match.group(0)[:80]}'"]
        if match := (search(subject.thread, subject.thread_lower) if subject.thread
                     else on_empty):
            return [f"thread title says '{match.group(0)[:80]}'"]
        return None
    return check


def regex_needs(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lowercase ASCII substrings of which an ASCII text, lowercased, must contain one for
    ``pattern`` to match it (``you (idiot|moron)`` needs "idiot" or "moron"); None if unsure.

    Read from the parse tree of ``re`` itself; anything this does not follow (a set, a
    lookaround, an optional part) adds nothing, so the answer errs towards None."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        found = _needs(list(_parser.parse(pattern.pattern, pattern.flags)))
    except Exception:   # a private module: if it ever changes, search without the shortcut
        return None
    if found is None:
        return None
    unique = sorted(found, key=lambda f: (len(f), f))
    return tuple(f for i, f in enumerate(unique) if not any(g in f for g in unique[:i]))


def _needs(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """For a sequence of parsed items: strings one of which every match contains."""
    options: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in [*items, (None, None)]:
        name = getattr(op, "name", None)
        if name == "LITERAL":
            run.append(chr(arg))
            continue
        if run:
            options.append(frozenset(["".join(run)]))
            run = []
        part: frozenset[str] | None = None
        if name == "SUBPATTERN":
            part = _needs(list(arg[-1]))
        elif name == "ATOMIC_GROUP":
            part = _needs(list(arg))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and arg[0] >= 1:
            part = _needs(list(arg[2]))
        elif name == "BRANCH":
            branches = [_needs(list(branch)) for branch in arg[1]]
            if all(b is not None for b in branches):
                part = frozenset().union(*branches)  # type: ignore[arg-type]
        if part is not None:
            options.append(part)
    # only ASCII pieces: with IGNORECASE "ſ" (long s) matches "s", and the Kelvin sign "k"
    usable = [o for o in options if all(s.isascii() for s in o)]
    if not usable:
        return None
    # the most telling: longest shortest string, then the fewest strings
    best = max(usable, key=lambda o: (min(map(len, o)), -len(o)))
    return frozenset(s.lower() for s in best)


@dataclass(frozen=True, slots=True)
class _Bounds:
    low: float
    high: float
    text: str          # "at least +0.30 and at most +0.90", as the reasons say it
    has_min: bool


def _bounds(value: Any, file: str, key: str, lowest: float, highest: float,
            shown: Callable[[float], str]) -> _Bounds:
    """``{min: x}`` and/or ``{max: y}`` (inclusive), both within [lowest, highest]."""
    if not isinstance(value, dict) or not value or set(value) - {"min", "max"} or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        raise ConfigError("must be {min: NUMBER} and/or {max: NUMBER}", file, key)
    if not all(lowest <= v <= highest for v in value.values()):
        raise ConfigError(f"min and max must lie between {lowest:g} and {highest:g}"
                          if highest < float("inf") else f"min and max must be at least "
                          f"{lowest:g}", file, key)
    low, high = value.get("min", float("-inf")), value.get("max", float("inf"))
    if low > high:
        raise ConfigError("min is above max: nothing could match", file, key)
    text = " and ".join([f"at least {shown(low)}"] * ("min" in value)
                        + [f"at most {shown(high)}"] * ("max" in value))
    return _Bounds(low, high, text, "min" in value)


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def _plain(value: float) -> str:
    return f"{value:.2f}"


def _count(value: float) -> str:
    return f"{value:g}"


def _sentiment(name: str, value: Any, file: str, key: str) -> Check:
    """VADER's numbers. A post whose sentiment is unknown (not English) is not "neutral":
    no threshold matches it. Where the negative side matched, the worst sentence is cited."""
    bounds = _bounds(value, file, key, -1.0 if name == "compound" else 0.0, 1.0, _signed)
    negative_side = name == "neg" and bounds.has_min or name == "compound" and not bounds.has_min

    def check(subject: Subject, score: Score) -> Reasons:
        number = getattr(score, name)
        if not score.sentiment_known or not bounds.low <= number <= bounds.high:
            return None
        reasons = [f"{name} {number:+.2f} ({bounds.text})"]
        if negative_side and score.worst_sentence:
            reasons.append(f"worst sentence '{shorten(score.worst_sentence, 100)}'")
        return reasons
    return check


def _signal(name: str, value: Any, file: str, key: str) -> Check:
    """Our 0..1 signals; a match cites the scorer's evidence for that signal."""
    bounds = _bounds(value, file, key, 0.0, 1.0, _plain)

    def check(subject: Subject, score: Score) -> Reasons:
        number = getattr(score, name)
        if not bounds.low <= number <= bounds.high:
            return None
        evidence = [phrase for signal, phrase in score.evidence if signal == name]
        why = "; ".join(evidence) if bounds.has_min and evidence else bounds.text
        return [f"{name} {number:.2f} ({why})"]
    return check


def _flag(name: str, value: Any, file: str, key: str) -> Check:
    """``angry: true|false`` (the scorer's verdict) and ``vip: true|false`` (the author)."""
    if not isinstance(value, bool):
        raise ConfigError("must be true or false", file, key)

    def check(subject: Subject, score: Score) -> Reasons:
        found = score.angry if name == "angry" else subject.vip
        if found != value:
            return None
        if not value:
            return []
        if name == "angry":
            evidence = [phrase for signal, phrase in score.evidence if signal == "anger"]
            return [f"anger {score.anger:.2f} ({'; '.join(evidence) or 'angry'})"]
        author = subject.post.author if subject.post else None
        return [f"by VIP '{author}'" if author else "by a VIP"]
    return check


_LANGUAGE = re.compile(r"^([a-z]{2,3}|unknown)$")


def _language(value: Any, file: str, key: str) -> Check:
    """ISO 639-1 codes as the scorer reports them; ``unknown`` for posts too short to tell."""
    codes = [value] if isinstance(value, str) else value
    if not isinstance(codes, list) or not codes or not all(
            isinstance(c, str) and _LANGUAGE.match(c) for c in codes):
        raise ConfigError("must be a language code or a list of them, e.g. [en, de] "
                          "(or unknown)", file, key)
    wanted = frozenset(codes)

    def check(subject: Subject, score: Score) -> Reasons:
        code = score.language or "unknown"
        return [f"language {code}"] if code in wanted else None
    return check


_NAME_REASON = {"source": "from source '{}'", "kind": "from a {} source",
                "tag": "source tagged '{}'", "author": "by '{}'"}


def _names(name: str, value: Any, file: str, key: str) -> Check:
    """Source names, source kinds, source tags or authors, case ignored, ``*`` = anything
    (``reddit-*``). A post without one (no author, no kind given) matches none."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and n.strip() for n in names):
        raise ConfigError("must be a name or a list of names", file, key)
    wanted = re.compile("|".join(re.escape(n.strip()).replace(r"\*", ".*") for n in names),
                        re.IGNORECASE)

    def found(subject: Subject) -> Sequence[str | None]:
        post = subject.post
        if name == "kind":
            return [subject.kind]
        if name == "tag":
            return subject.tags
        return [(post.source if name == "source" else post.author) if post else None]

    def check(subject: Subject, score: Score) -> Reasons:
        hits = [have for have in found(subject) if have and wanted.fullmatch(have)]
        return [_NAME_REASON[name].format(h) for h in hits] or None
    return check


def _reach(value: Any, file: str, key: str) -> Check:
    """Upvotes, replies or points, as the source counts them; unknown reach never matches."""
    bounds = _bounds(value, file, key, 0, float("inf"), _count)

    def check(subject: Subject, score: Score) -> Reasons:
        reach = subject.post.reach if subject.post else None
        if reach is None or not bounds.low <= reach <= bounds.high:
            return None
        return [f"reach {reach} ({bounds.text})"]
    return check


_BOUNDED = "is within {min, max} (inclusive)"

CONDITIONS: dict[str, Condition] = {
    "all": Condition(_group, "all: [...]", "every condition in the list matches"),
    "any": Condition(_group, "any: [...]", "one condition in the list matches"),
    "not": Condition(_negated, "not: {...}", "the condition does not match"),
    "words": Condition(_unnamed(_words, _TEXT_COST), "words: [redesign*, new layout]",
                       "a whole word or phrase, case-insensitive, any whitespace inside a "
                       "phrase, * = any letters"),
    "regex": Condition(_unnamed(_regex, _TEXT_COST), r'regex: "\\b[1-2] stars?\\b"',
                       "the regular expression (case-insensitive) finds something"),
    "compound": Condition(_sentiment, "compound: {max: -0.3}",
                          f"VADER's compound score (-1..1) {_BOUNDED}; never for a post not "
                          "in English"),
    "pos": Condition(_sentiment, "pos: {min: 0.3}", f"VADER's positive share (0..1) {_BOUNDED}; "
                     "never for a post not in English"),
    "neu": Condition(_sentiment, "neu: {max: 0.5}", f"VADER's neutral share (0..1) {_BOUNDED}; "
                     "never for a post not in English"),
    "neg": Condition(_sentiment, "neg: {min: 0.3}", f"VADER's negative share (0..1) {_BOUNDED}; "
                     "never for a post not in English"),
    "anger": Condition(_signal, "anger: {min: 0.5}", f"our anger signal (0..1) {_BOUNDED}; "
                       "0.5 or more exactly when angry"),
    "change": Condition(_signal, "change: {min: 0.5}", "our signal (0..1) of talk about a "
                        f"change {_BOUNDED}"),
    "churn": Condition(_signal, "churn: {min: 0.5}", "our signal (0..1) of a threat to leave "
                       f"{_BOUNDED}"),
    "complaint": Condition(_signal, "complaint: {min: 0.5}", "our signal (0..1) of a problem "
                           f"report {_BOUNDED}; 0.5 or more when the post reports a problem"),
    "angry": Condition(_flag, "angry: true", "the scorer's verdict that the writer is angry "
                       "(true or false)"),
    "language": Condition(_unnamed(_language), "language: [de, fr]", "the post's language "
                          "(ISO 639-1; unknown for texts too short to tell)"),
    "source": Condition(_names, "source: [reddit-*]", "the post's source name (* = anything)"),
    "kind": Condition(_names, "kind: [forum]", "the kind of the post's source"),
    "tag": Condition(_names, "tag: [billing]", "one of the tags of the post's source"),
    "author": Condition(_names, "author: [marco]", "the author's name, case ignored"),
    "vip": Condition(_flag, "vip: true", "the author is in vip_authors (true or false)"),
    "reach": Condition(_unnamed(_reach), "reach: {min: 100}", "the post's reach (upvotes, "
                       f"replies or points, as its source counts) {_BOUNDED}; unknown reach "
                       "never matches"),
}


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit - 1].rsplit(" ", 1)[0] if " " in flat[:limit - 1] else flat[:limit - 1]
    return cut.rstrip(" ,;:") + "…"
