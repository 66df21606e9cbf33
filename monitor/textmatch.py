"""The text conditions of rules, ``words`` and ``regex``, and their prefilters: the pieces
of which a text must hold one to match, found with plain substring tests long before a
pattern would have said "no" (most posts lack them all).

A prefilter may only turn away texts that cannot match: with or without it, a condition
gives the same answer, only sooner.

A rule's ``regex`` runs on text anyone can write, so it is compiled by RE2
(``compile_rule_regex``), whose time is linear in the text: ``(a+)+$`` cannot hang scoring.
What RE2 cannot take in linear time (backreferences, lookaround, atomic groups, possessive
repeats, conditionals) is refused when the rules are checked, naming the construct.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import re2

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
    firsts, rests = _term_pieces(terms) if needs is not None else (None, {})

    def hits(text: str, found: frozenset[int] | None) -> list[str]:
        # the pattern's leading lookbehind makes the engine try every position, slowly;
        # most posts lack some piece of every term, which PIECES (or, when it cannot tell,
        # plain substring tests) sees far sooner
        if needs is not None:
            if found is None or firsts is None:
                if not _has_any(text, needs):
                    return []
            elif firsts.isdisjoint(found) or not _any_term(firsts & found, rests, found):
                return []
        return _hits(pattern, text)
    on_empty = hits("", None)          # what an empty thread title (most posts) gives

    def check(subject: Subject, score: Score) -> Reasons:
        found = subject.pieces()
        own = [] if firsts is not None and found is not None and firsts.isdisjoint(found) \
            else hits(subject.own_lower, found)   # (most posts: no call to say no)
        thread = hits(subject.thread_lower, subject.pieces(thread=True)) \
            if subject.thread_lower else on_empty
        if not own and not thread:
            return None
        thread = [h for h in thread if h not in own]
        reasons = [f"mentions {_listed(own)}"] if own else []
        if thread:
            reasons.append(f"thread title mentions {_listed(thread)}")
        return reasons
    if firsts is not None and not on_empty:
        check.texts = (firsts,)  # type: ignore[attr-defined]
    return check


def _term_pieces(terms: Iterable[str]) -> tuple[frozenset[int] | None,
                                                 dict[int, list[frozenset[int]]]]:
    """What tells, from the pieces (``PIECES``) a text holds, whether it may hold one of
    ``terms``: a match of a term holds every piece of it (its letters between spaces and
    ``*``), so a text lacking one piece of each term cannot match. Each term's longest
    piece, and for each such piece the other pieces of the terms it is longest in; (None,
    {}) when PIECES takes no more."""
    wanted = [sorted({f for part in t.lower().split() for f in part.split("*") if f},
                     key=lambda f: (-len(f), f)) for t in terms]
    ids = [PIECES.add(pieces) for pieces in wanted]
    if any(i is None for i in ids):
        return None, {}
    rests: dict[int, list[frozenset[int]]] = {}
    for first, *rest in ids:  # type: ignore[misc]  # no term without pieces (checked above)
        rests.setdefault(first, []).append(frozenset(rest))
    return frozenset(rests), rests


def _any_term(firsts: frozenset[int], rests: dict[int, list[frozenset[int]]],
              found: frozenset[int]) -> bool:
    """Whether ``found`` holds every piece of a term whose longest piece is in ``firsts``."""
    return any(rest <= found for first in firsts for rest in rests[first])


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


_FOLD = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
"""The characters outside ASCII that a character of ASCII matches with case ignored (in
Python's re and in RE2; every code point tried), as the letter they match: İ ı ſ K."""
_FOLDED = re.compile("[\u0130\u0131\u017f\u212a]")   # finds one sooner than translate() would
_UNFOLDED = frozenset("\u0131\u017f\u0307")
"""What a piece may not hold, as ``_FOLD`` changes it in a text (ı, ſ; the dot that
lowercasing İ adds)."""


class Pieces:
    """The pieces that the text conditions' shortcuts look for, every condition's at once:
    one pass of an RE2 set over a post's text says which of them it holds, where plain
    substring tests would read it once per piece and condition (some hundred pieces for
    the shipped rules).

    The text is searched lowercased, and with ``_FOLD`` before that when it holds one of
    those characters: then every ASCII piece a ``regex`` needs is found in the text if the
    regex can match it (in any text, where substring tests of the lowercased text are only
    sure for ASCII), and every piece of a ``words`` term found if it is in the lowercased
    text.

    Shared by every condition compiled in this process (a piece is added once); past
    ``limit`` pieces or ``chars`` characters, a condition is left to its substring tests, so
    the set stays small, as does the memory of its automaton. Thread-safe."""

    def __init__(self, limit: int = 4_000, chars: int = 40_000) -> None:
        self._ids: dict[str, int] = {}        # numbered from 1: 0 is the end of the text
        self._limit, self._chars, self._used = limit, chars, 0
        self._compiled: tuple[int, Any] = (-1, None)  # (pieces it holds, the RE2 set): one
        self._lock = threading.Lock()                   # read gives both, never a mixed pair

    def add(self, pieces: Sequence[str]) -> tuple[int, ...] | None:
        """Each piece's number, to look for in ``found``; None when the set is full, or for
        a piece that ``_FOLD`` would hide."""
        if any(not _UNFOLDED.isdisjoint(piece) for piece in pieces):
            return None
        with self._lock:
            new = [p for p in dict.fromkeys(pieces) if p not in self._ids]
            size = sum(map(len, new))
            if len(self._ids) + len(new) > self._limit or self._used + size > self._chars:
                return None
            for piece in new:
                self._ids[piece] = len(self._ids) + 1
            self._used += size
            return tuple(self._ids[p] for p in pieces)

    def found(self, text: str, lower: str) -> frozenset[int] | None:
        """The numbers of the pieces that ``text`` (``lower``: lowercased) holds; None when
        RE2 could not tell (out of memory, or a lone surrogate it cannot encode): the caller
        then tests its pieces itself."""
        count, matcher = self._compiled
        if count != len(self._ids):
            matcher = self._compile()
        if not text.isascii() and _FOLDED.search(text):
            lower = text.translate(_FOLD).lower()
        try:
            hits = matcher.Match(lower.encode()) or ()  # the wrapper says None for none
        except UnicodeEncodeError:
            return None
        # the end of the text is in every text: missing, the search failed (RE2 then says
        # nothing at all), rather than found nothing
        return frozenset(hits) if 0 in hits else None

    def _compile(self) -> Any:
        with self._lock:
            if self._compiled[0] != len(self._ids):
                options = re2.Options()
                options.log_errors = False
                pieces = re2.Set.SearchSet(options)
                pieces.Add(r"\z")        # number 0 (not "", which would match everywhere,
                for piece in self._ids:  # which is slower); then the pieces in number order
                    pieces.Add(re2.escape(piece))
                pieces.Compile()
                # the bare RE2 set (one call less per post), else the public wrapper
                self._compiled = (len(self._ids), getattr(pieces, "_set", pieces))
            return self._compiled[1]


PIECES = Pieces()


def _hits(pattern: re.Pattern[str], text: str) -> list[str]:
    return list(dict.fromkeys(" ".join(m.group(0).split()) for m in pattern.finditer(text)))


def _listed(hits: list[str]) -> str:
    return ", ".join(f"'{h}'" for h in hits)


class Found(Protocol):
    """What a rule regex's search gives when it finds something: ``group(0)``, the match."""

    def group(self, index: int = 0, /) -> str: ...


_REFUSED = {
    "GROUPREF": "a backreference (\\1, (?P=name))",
    "GROUPREF_EXISTS": "a conditional group ((?(1)...))",
    "ASSERT": "a lookahead or lookbehind ((?=...), (?<=...))",
    "ASSERT_NOT": "a negative lookahead or lookbehind ((?!...), (?<!...))",
    "ATOMIC_GROUP": "an atomic group ((?>...))",
    "POSSESSIVE_REPEAT": "a possessive repeat (*+, ++, ?+)",
}
"""What RE2 cannot take in linear time, as ``re``'s parser names it, and as a person would."""

# Python's \w, \d and \s know every script; RE2's are ASCII: these keep Python's meaning
_SPACE = r"\t\n\x0b\f\r\x1c-\x1f\x85\p{Z}"
_IN_CLASS = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "D": r"\P{Nd}", "s": _SPACE}
_OUTSIDE = {"w": r"[\p{L}\p{N}_]", "W": r"[^\p{L}\p{N}_]", "d": r"\p{Nd}", "D": r"\P{Nd}",
            "s": f"[{_SPACE}]", "S": f"[^{_SPACE}]", "Z": r"\z"}
_CATEGORIES = {"CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W", "CATEGORY_DIGIT": r"\d",
               "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
               "CATEGORY_NOT_SPACE": r"\S"}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.case_sensitive = False
_RE2_OPTIONS.log_errors = False


class RuleRegex:
    r"""A rule's regular expression run by RE2, so a search takes time linear in the text,
    giving Python's answer: on a text outside ASCII, each of its other characters is first
    replaced by an ASCII one that every part of the pattern treats alike (``_Twins``), since
    RE2's word edges (``\b``) know ASCII words only."""

    def __init__(self, pattern: str, compiled: Any, twins: _Twins | None) -> None:
        self.pattern, self._compiled, self._twins = pattern, compiled, twins

    def search(self, text: str) -> Found | None:
        if self._twins is None or text.isascii():
            return self._compiled.search(text)  # type: ignore[no-any-return]
        found = self._compiled.search(text.translate(self._twins))
        return None if found is None else _Span(text[found.start():found.end()])


class _Span:
    """A match found in the translated text, as the original text's (same span): true even
    when empty, as a match is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def group(self, index: int = 0, /) -> str:
        return self.text


class _Twins(dict[int, int]):
    r"""``str.translate`` table: each character outside ASCII to an ASCII one that matches the
    same parts (characters, sets, ``\w`` ...) of a pattern written in ASCII, and is a word
    character exactly when it is one; itself when none does (only a pattern whose sets name
    every ASCII word character leaves one, whose word edges are then RE2's). Filled lazily."""

    def __init__(self, atoms: list[re.Pattern[str]]) -> None:
        super().__init__((c, c) for c in range(128))
        self._atoms = atoms
        self._ascii: dict[tuple[bool, ...], int] = {}
        for code in range(128):  # any twin will do: all of one signature match alike
            if chr(code) != "\n":  # a newline would make a line end (^ $ in (?m)) out of one
                self._ascii.setdefault(self._signature(chr(code)), code)

    def _signature(self, char: str) -> tuple[bool, ...]:
        return (char.isalnum() or char == "_",
                *(atom.fullmatch(char) is not None for atom in self._atoms))

    def __missing__(self, code: int) -> int:
        twin = self._ascii.get(self._signature(chr(code)), code)
        if len(self) < _TWINS_KEPT:  # a post of every code point cannot grow it without end
            self[code] = twin
        return twin


_TWINS_KEPT = 20_000


def compile_rule_regex(value: str) -> RuleRegex:
    r"""A rule's regular expression, case ignored, run by RE2 (linear time in the text) with
    Python's meaning (``\w``, ``\d``, ``\s``, ``\b`` for every script).

    ValueError saying why for a pattern that is not a valid regular expression, or that uses
    what RE2 cannot run in linear time (a backreference, a lookaround...) or ``\b`` beside
    letters outside ASCII (RE2 knows ASCII word edges only; ``words:`` knows every script)."""
    try:
        parsed = list(re._parser.parse(value, re.IGNORECASE))  # type: ignore[attr-defined]
    except re.error as error:
        raise ValueError(f"not a valid regular expression ({error})") from None
    refused = _refused(parsed)
    if refused:
        raise ValueError(f"uses {refused}, which the safe regex engine (RE2) cannot run in "
                         "time linear in the text; rewrite it without (or use words:)")
    atoms: list[re.Pattern[str]] = []
    edges = _atoms(parsed, re.IGNORECASE, atoms)
    ascii_only = all(atom.pattern.isascii() for atom in atoms)
    if edges and not ascii_only:
        raise ValueError("uses \\b or \\B with characters outside ASCII, whose word edges the "
                         "safe regex engine (RE2) does not know; use words: for such words")
    try:
        compiled = re2.compile(_for_re2(value), _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) \
            else str(error)
        raise ValueError(f"the safe regex engine (RE2) cannot take it ({reason})") from None
    unique = list({(atom.pattern, atom.flags): atom for atom in atoms}.values())
    return RuleRegex(value, compiled, _Twins(unique) if ascii_only else None)


def _refused(items: list[tuple[Any, Any]]) -> str | None:
    """The first construct of a parsed pattern that RE2 cannot take, named; None if none."""
    for op, arg in items:
        name = getattr(op, "name", "")
        if name in _REFUSED:
            return _REFUSED[name]
        for child in _children(name, arg):
            if found := _refused(child):
                return found
    return None


def _children(name: str, arg: Any) -> list[list[tuple[Any, Any]]]:
    if name == "SUBPATTERN":
        return [list(arg[-1])]
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return [list(arg[2])]
    if name == "BRANCH":
        return [list(branch) for branch in arg[1]]
    if name == "ATOMIC_GROUP":
        return [list(arg)]
    return []


def _atoms(items: list[tuple[Any, Any]], flags: int, out: list[re.Pattern[str]]) -> bool:
    r"""Each one-character part of a parsed pattern (a character, a set, ``.``) into ``out`` as
    a Python pattern of its own; returns whether the pattern has a ``\b`` or ``\B``."""
    edges = False
    for op, arg in items:
        name = getattr(op, "name", "")
        source = None
        if name == "LITERAL":
            source = re.escape(chr(arg))
        elif name == "NOT_LITERAL":
            source = f"[^{re.escape(chr(arg))}]"
        elif name == "ANY":
            source = "."
        elif name == "IN":
            source = "[" + "".join(_set_part(o.name, a) for o, a in arg) + "]"
        elif name == "AT":
            edges |= arg.name in ("AT_BOUNDARY", "AT_NON_BOUNDARY")
        if source is not None:
            out.append(re.compile(source, flags))
        local = flags
        if name == "SUBPATTERN":
            local = (flags | arg[1]) & ~arg[2]
        for child in _children(name, arg):
            edges |= _atoms(child, local, out)
    return edges


def _set_part(name: str, arg: Any) -> str:
    if name == "NEGATE":
        return "^"
    if name == "RANGE":
        return f"{re.escape(chr(arg[0]))}-{re.escape(chr(arg[1]))}"
    if name == "CATEGORY":
        return _CATEGORIES[arg.name]
    return re.escape(chr(arg))  # LITERAL


def _for_re2(pattern: str) -> str:
    r"""``pattern`` with what RE2 reads otherwise (or not at all) rewritten: ``\w \W \d \D
    \s \S`` by their Unicode classes, ``\Z`` as ``\z``, ``\uXXXX`` as ``\x{XXXX}``, ``{,n}``
    as ``{0,n}``."""
    out: list[str] = []
    in_class, i = False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped in "uU":
                width = 4 if escaped == "u" else 8
                out.append(f"\\x{{{pattern[i + 2:i + 2 + width]}}}")
                i += 2 + width
                continue
            table = _IN_CLASS if in_class else _OUTSIDE
            if escaped in table:
                out.append(table[escaped])
            elif in_class and escaped in "WS":
                raise ValueError(f"uses \\{escaped} inside [...], which the safe regex "
                                 "engine (RE2) reads differently; write [^...] instead")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out.append(char)
            i += 1
            if pattern[i:i + 1] == "^":
                out.append("^")
                i += 1
            if pattern[i:i + 1] == "]":  # a ] first in a set is a character of it
                out.append("]")
                i += 1
            continue
        elif char == "{" and pattern[i + 1:i + 2] == ",":  # Python's {,n} is {0,n}
            out.append("{0")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _regex(value: Any, file: str, key: str) -> Check:
    """``regex``: a regular expression, case ignored, searched in the own words first."""
    if not isinstance(value, str):
        raise ConfigError("must be a regular expression", file, key)
    try:
        pattern = compile_rule_regex(value)
    except ValueError as error:
        raise ConfigError(str(error), file, key) from None
    needs = regex_needs(pattern)
    need_ids = PIECES.add(needs) if needs is not None else None
    wanted = frozenset(need_ids) if need_ids is not None else None
    on_empty = pattern.search("")      # what an empty thread title (most posts) gives

    def search(text: str, lower: str, found: frozenset[int] | None) -> Found | None:
        # with IGNORECASE the engine tries the pattern at every position; a missing needed
        # piece says "no" sooner. PIECES knows what IGNORECASE does; substring tests of the
        # lowercased text, used when it cannot tell, only for ASCII text
        if needs is not None and (
                found.isdisjoint(wanted) if found is not None and wanted is not None
                else text.isascii() and not _has_any(lower, needs)):
            return None
        return pattern.search(text)

    def check(subject: Subject, score: Score) -> Reasons:
        found = subject.pieces()
        if wanted is not None and found is not None and found.isdisjoint(wanted):
            pass   # most posts: no call to say no
        elif match := search(subject.own, subject.own_lower, found):
            return [f"says '{match.group(0)[:80]}'"]
        if match := (search(subject.thread, subject.thread_lower, subject.pieces(thread=True))
                     if subject.thread else on_empty):
            return [f"thread title says '{match.group(0)[:80]}'"]
        return None
    if wanted is not None and not on_empty:
        check.texts = (wanted,)  # type: ignore[attr-defined]
    return check


def regex_needs(pattern: re.Pattern[str] | RuleRegex) -> tuple[str, ...] | None:
    """Lowercase ASCII substrings of which an ASCII text, lowercased, must contain one for
    ``pattern`` to match it (``you (idiot|moron)`` needs "idiot" or "moron"); None if unsure.

    Read from the parse tree of ``re`` itself; anything this does not follow (a set, a
    lookaround, an optional part) adds nothing, so the answer errs towards None."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        flags = pattern.flags if isinstance(pattern, re.Pattern) else re.IGNORECASE
        found = _needs(list(_parser.parse(pattern.pattern, flags)))
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

