"""The conditions a rule's ``when:`` may use (CONDITIONS, also listed by ``monitor kinds``),
each compiled once into a check: (subject, score) -> None, or the sentences saying why.

Conditions on where a post came from (source, kind, author, language, source_tag, vip) are
matchers of ``monitor.matchers``, the syntax routes and silences use too; the text ones are
in ``monitor.textmatch``; the numbers and verdicts of the scorer are here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from monitor.errors import ConfigError
from monitor.matchers import RESPELLED, LabelMatch, respelling
from monitor.model import SIGNALS, Score
from monitor.textmatch import _regex, _words

if TYPE_CHECKING:
    from monitor.rules import Check, Reasons, Subject


@dataclass(frozen=True, slots=True)
class Where:
    """Where a condition is written (for its errors), and the list that collects what
    ``monitor check`` should say about how it is written (old spellings)."""

    file: str
    key: str
    notices: list[str]
    depth: int = 0          # conditions this one sits inside

    def at(self, part: str) -> Where:
        return Where(self.file, self.key + part, self.notices, self.depth)

    def inside(self, name: str) -> Where:
        """Where the value of condition ``name`` is: one level deeper. A name that is not
        printable (a newline) is quoted, so each mistake stays on one line."""
        shown = name if name.isprintable() else repr(name)
        return Where(self.file, f"{self.key}.{shown}", self.notices, self.depth + 1)

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, self.file, self.key)


@dataclass(frozen=True, slots=True)
class Condition:
    """A key that a rule's ``when:`` accepts: how its value becomes a check (``build(name,
    value, where)``, raising ConfigError), an example, and what it means (for ``monitor
    kinds``). The table of them is ``CONDITIONS``, at the end of this module."""

    build: Callable[[str, Any, Where], Check]
    example: str
    help: str


def compile_condition(node: Any, file: str, key: str) -> tuple[Check, list[str]]:
    """The check for one ``when:`` (ConfigError if it is wrong), and the notices about it
    ("file: key: message", like an error's line)."""
    notices: list[str] = []
    return _compile(node, Where(file, key, notices)), notices


MAX_DEPTH = 32
"""Conditions inside each other (all, any, not) at most: deeper is no rule a person means,
and would exhaust Python's stack when compiled or checked."""

_TEXT_COST = 1  # reading the text (words, regex) costs far more than comparing a number


def _cost(check: Check) -> int:
    return getattr(check, "cost", 0)


Gate = tuple[Callable[[Score], Any], Any, Any, bool, bool]
"""Exactly what a condition on the score alone (a number, ``angry``) matches: open when
``low <= read(score) <= high`` and, if the fourth is true, the sentiment is known; the fifth
negates that (``not:`` of such a condition)."""

Clauses = tuple[tuple[Gate, ...], ...]
"""Gates that every post a check matches passes: of each clause, one gate at least is open
(the clause of an ``any`` of gated conditions has one gate per alternative).
``RuleSet.evaluate`` tests a rule's clauses before calling its check: most posts fail there,
and a test in a loop costs a fraction of the calls that would say the same."""


def gates(check: Check) -> Clauses:
    """``check``'s clauses (none: every post is worth calling it for)."""
    return getattr(check, "gates", ())


def texts(check: Check) -> tuple[frozenset[int], ...]:
    """What ``check`` needs of a post without a thread title: of each set, one piece
    (numbers of ``textmatch.PIECES``) in its own words; ``RuleSet.evaluate`` tests them as
    it tests clauses. Set by ``words`` and ``regex``, whose pieces they are."""
    return getattr(check, "texts", ())


def _gated(check: Check, gate: Gate) -> Check:
    """``check`` matches exactly where ``gate`` is open."""
    check.gate = gate  # type: ignore[attr-defined]
    check.gates = ((gate,),)  # type: ignore[attr-defined]
    return check


def _costs(check: Check, cost: int) -> Check:
    check.cost = cost  # type: ignore[attr-defined]
    return check


def _compile(node: Any, where: Where) -> Check:
    if where.depth >= MAX_DEPTH:
        raise where.error(f"conditions nested more than {MAX_DEPTH} deep (all, any and not "
                          "inside each other): write the rule flatter")
    if not isinstance(node, dict) or len(node) != 1:
        raise where.error(
            f"a condition is a mapping with one key, one of: {', '.join(_KNOWN)}")
    (name, value), = node.items()
    where = where.inside(str(name))
    condition = CONDITIONS.get(name)
    if condition is None:
        raise where.error(f"unknown condition {name!r} (known: {', '.join(_KNOWN)})")
    if name in RESPELLED["rule"]:
        where.notices.append(str(where.error(respelling(name, RESPELLED["rule"][name]))))
    return condition.build(name, value, where)


def _group(name: str, value: Any, where: Where) -> Check:
    """``all`` or ``any``: a list of conditions; costs what its dearest part costs."""
    if not isinstance(value, list) or not value:
        raise where.error("must be a non-empty list of conditions")
    parts: list[Check] = []
    problems: list[ConfigError] = []
    for i, entry in enumerate(value):   # every wrong entry is named, not just the first
        try:
            parts.append(_compile(entry, where.at(f"[{i}]")))
        except ConfigError as error:
            problems.append(error)
    if problems:
        raise ConfigError.combine(problems)
    return _costs(_all(parts) if name == "all" else _any(parts), max(map(_cost, parts)))


def _negated(name: str, value: Any, where: Where) -> Check:
    part = _compile(value, where)
    check = _costs(_not(part), _cost(part))
    if (gate := getattr(part, "gate", None)) is not None:
        read, low, high, known, negate = gate
        _gated(check, (read, low, high, known, not negate))
    return check


def _unnamed(build: Callable[[Any, str, str], Check],
             cost: int = 0) -> Callable[[str, Any, Where], Check]:
    """A builder that needs no name, as the table calls it (``cost``: see ``_all``)."""
    return lambda _name, value, where: _costs(build(value, where.file, where.key), cost)


MAX_WORDS = 500
"""Words and phrases in one ``words:`` at most (the shipped packs use up to 18): tens of
thousands would take minutes to compile, at every pass."""


def _word_list(name: str, value: Any, where: Where) -> Check:
    """``words``: compiled by ``monitor.textmatch``, at most MAX_WORDS of them."""
    if isinstance(value, list) and len(value) > MAX_WORDS:
        raise where.error(f"{len(value)} words: at most {MAX_WORDS} in one condition (split "
                          "them over several under any:)")
    return _costs(_words(value, where.file, where.key), _TEXT_COST)


def _pattern(name: str, value: Any, where: Where) -> Check:
    """``regex``: the one place rule patterns are compiled, by ``monitor.textmatch``, whose
    engine refuses what it cannot match in bounded time; a refusal is a mistake ``monitor
    check`` names (rule and key), never a failure at the first post."""
    try:
        return _costs(_regex(value, where.file, where.key), _TEXT_COST)
    except (ValueError, re.error) as error:
        raise where.error(f"not a usable regular expression ({error})") from None
    except RecursionError:   # Python's own pattern parser, on thousands of nested groups
        raise where.error("not a usable regular expression (nested too deeply)") from None


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
    check.gates = tuple(clause for part in parts for clause in gates(part))  # type: ignore
    check.texts = tuple(pieces for part in parts for pieces in texts(part))  # type: ignore
    return check


def _any(parts: Sequence[Check]) -> Check:
    """The first alternative that matches says why; the rest are not even tried."""
    def check(subject: Subject, score: Score) -> Reasons:
        for part in parts:
            if (why := part(subject, score)) is not None:
                return why
        return None
    alternatives = tuple(getattr(part, "gate", None) for part in parts)
    if None not in alternatives:
        check.gates = (alternatives,)  # type: ignore[attr-defined]
    if all(texts(part) for part in parts):   # one piece of any part's first set, at least
        check.texts = (frozenset().union(*(texts(part)[0] for part in parts)),)  # type: ignore
    return check


def _not(part: Check) -> Check:
    return lambda subject, score: [] if part(subject, score) is None else None


@dataclass(frozen=True, slots=True)
class _Bounds:
    low: float
    high: float
    text: str          # "at least +0.30 and at most +0.90", as the reasons say it
    has_min: bool


def _bounds(value: Any, where: Where, lowest: float, highest: float,
            shown: Callable[[float], str]) -> _Bounds:
    """``{min: x}`` and/or ``{max: y}`` (inclusive), both within [lowest, highest]."""
    if not isinstance(value, dict) or not value or set(value) - {"min", "max"} or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
        raise where.error("must be {min: NUMBER} and/or {max: NUMBER}")
    if not all(lowest <= v <= highest for v in value.values()):
        raise where.error(f"min and max must lie between {lowest:g} and {highest:g}"
                          if highest < float("inf") else f"min and max must be at least "
                          f"{lowest:g}")
    low, high = value.get("min", float("-inf")), value.get("max", float("inf"))
    if low > high:
        raise where.error("min is above max: nothing could match")
    text = " and ".join([f"at least {shown(low)}"] * ("min" in value)
                        + [f"at most {shown(high)}"] * ("max" in value))
    return _Bounds(low, high, text, "min" in value)


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def _plain(value: float) -> str:
    return f"{value:.2f}"


def _count(value: float) -> str:
    return f"{value:g}"


def _sentiment(name: str, value: Any, where: Where) -> Check:
    """VADER's numbers. A post whose sentiment is unknown (not English) is not "neutral":
    no threshold matches it. Where the negative side matched, the worst sentence is cited."""
    bounds = _bounds(value, where, -1.0 if name == "compound" else 0.0, 1.0, _signed)
    negative_side = name == "neg" and bounds.has_min or name == "compound" and not bounds.has_min
    read, low, high = attrgetter(name), bounds.low, bounds.high  # locals: read for every post

    def check(subject: Subject, score: Score) -> Reasons:
        number = read(score)
        if not low <= number <= high or not score.sentiment_known:
            return None
        reasons = [f"{name} {number:+.2f} ({bounds.text})"]
        if negative_side and score.worst_sentence:
            reasons.append(f"worst sentence '{shorten(score.worst_sentence, 100)}'")
        return reasons
    return _gated(check, (read, low, high, True, False))


def _signal(name: str, value: Any, where: Where) -> Check:
    """Our 0..1 signals; a match cites the scorer's evidence for that signal."""
    bounds = _bounds(value, where, 0.0, 1.0, _plain)
    read, low, high = attrgetter(name), bounds.low, bounds.high

    def check(subject: Subject, score: Score) -> Reasons:
        number = read(score)
        if not low <= number <= high:
            return None
        evidence = [phrase for signal, phrase in score.evidence if signal == name]
        why = "; ".join(evidence) if bounds.has_min and evidence else bounds.text
        return [f"{name} {number:.2f} ({why})"]
    return _gated(check, (read, low, high, False, False))


def _angry(name: str, value: Any, where: Where) -> Check:
    """The scorer's verdict; a match of ``true`` cites its anger evidence."""
    if not isinstance(value, bool):
        raise where.error("must be true or false")

    def check(subject: Subject, score: Score) -> Reasons:
        if score.angry != value:
            return None
        if not value:
            return []
        evidence = [phrase for signal, phrase in score.evidence if signal == "anger"]
        return [f"anger {score.anger:.2f} ({'; '.join(evidence) or 'angry'})"]
    # angry is a bool: between value and value is equal to value
    return _gated(check, (_ANGRY, value, value, False, False))


_ANGRY = attrgetter("angry")


_LANGUAGE = re.compile(r"^([a-z]{2,3}|unknown)$")
_REASON = {"source": "from source '{}'", "kind": "from a {} source",
           "source_tag": "source tagged '{}'", "author": "by '{}'", "language": "language {}"}


def _label(name: str, value: Any, where: Where) -> Check:
    """A matcher on one label of the post (see ``monitor.matchers``); a match says which of
    the post's values matched. Rules take only real language codes, so a typo shows."""
    label = RESPELLED["rule"].get(name, name)
    codes = [value] if isinstance(value, str) else value
    if label == "language" and not (isinstance(codes, list) and codes and all(
            isinstance(c, str) and _LANGUAGE.match(c) for c in codes)):
        raise where.error("must be a language code or a list of them, e.g. [en, de] "
                          "(or unknown)")
    try:
        match = LabelMatch(label, value)
    except ValueError as error:
        raise where.error(str(error)) from None
    if label == "vip":
        def vip(subject: Subject, score: Score) -> Reasons:
            if not match(subject):
                return None
            author = subject.author
            return [] if not value else [f"by VIP '{author}'" if author else "by a VIP"]
        return vip
    reason = _REASON[label]

    def check(subject: Subject, score: Score) -> Reasons:
        return [reason.format(h) for h in match.hits(subject)] or None
    return check


def _reach(name: str, value: Any, where: Where) -> Check:
    """Upvotes, replies or points, as the source counts them; unknown reach never matches."""
    bounds = _bounds(value, where, 0, float("inf"), _count)

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
    "words": Condition(_word_list, "words: [redesign*, new layout]",
                       "a whole word or phrase, case-insensitive, any whitespace inside a "
                       "phrase, * = any letters"),
    "regex": Condition(_pattern, r'regex: "\\b[1-2] stars?\\b"',
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
    **{name: Condition(_signal, f"{name}: {{min: 0.5}}", f"our signal (0..1) {_BOUNDED}: {about}")
       for name, about in SIGNALS.items()},
    "angry": Condition(_angry, "angry: true", "the scorer's verdict that the writer is angry "
                       "(true or false)"),
    "language": Condition(_label, "language: [de, fr]", "the post's language (ISO 639-1; "
                          "unknown for texts too short to tell)"),
    "source": Condition(_label, "source: [reddit-*]", "the post's source name (* = anything)"),
    "kind": Condition(_label, "kind: [forum]", "the kind of the post's source"),
    "source_tag": Condition(_label, "source_tag: [billing]", "one of the tags of the post's "
                            "source (* = anything)"),
    "tag": Condition(_label, "tag: [billing]", "the old spelling of source_tag, still read"),
    "author": Condition(_label, "author: [marco]", "the author's name, case ignored"),
    "vip": Condition(_label, "vip: true", "the author is in vip_authors (true or false)"),
    "reach": Condition(_reach, "reach: {min: 100}", "the post's reach (upvotes, replies or "
                       f"points, as its source counts) {_BOUNDED}; unknown reach never matches"),
}
_KNOWN = [name for name in CONDITIONS if name not in RESPELLED["rule"].values()]
"""What an unknown condition's message lists: each condition once, under the name it has
always been listed by (``tag``, whose notice then points to ``source_tag``)."""


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit - 1].rsplit(" ", 1)[0] if " " in flat[:limit - 1] else flat[:limit - 1]
    return cut.rstrip(" ,;:") + "…"
