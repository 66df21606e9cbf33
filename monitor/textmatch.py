"""The text conditions of rules, ``words`` and ``regex``, and their prefilters: the pieces
of which a text must hold one to match, found with plain substring tests long before a
pattern would have said "no" (most posts lack them all).

A prefilter may only turn away texts that cannot match: with or without it, a condition
gives the same answer, only sooner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from monitor.errors import ConfigError
from monitor.model import Score

if TYPE_CHECKING:
    from monitor.rules import Check, Reasons, Subject


def _term(term: str) -> str:
    pieces = [re.escape(p).replace(r"\*", r"\w*") for p in term.lower().split()]
    return r"\s+".join(pieces)


def _words(value: Any, file: str, key: str) -> Check:
    """``words``: whole words and phrases, case ignored, ``*`` = any letters."""
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
    """``regex``: a regular expression, case ignored, searched in the own words first."""
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

