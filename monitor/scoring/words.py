"""A text as the signals see it (its words, prepared once), and word lists matched on it.

``Text`` splits a post into words once for every signal. ``WordList`` finds whole words and
phrases of a list (the swear words and insults) in a ``Text`` by set lookups, running a regex
only when a phrase's first word occurs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
"""A word: a run of letters, apostrophes inside ("don't")."""
_ASCII_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")  # the same on ASCII text, faster


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build
class Text:
    """One text prepared once for every signal: words, lowercased text, the set of words."""

    original: str
    lower: str
    words: list[str]
    lower_words: list[str]
    word_set: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Text:
        if "’" in text:
            text = text.replace("’", "'")
        words = (_ASCII_WORD if text.isascii() else WORD).findall(text)
        lower_words = list(map(str.lower, words))
        return cls(text, text.lower(), words, lower_words, frozenset(lower_words))


class LazyRegex:
    """A regular expression compiled on first use: most of the scorer's hundreds of phrase
    and cue patterns are tried only when their anchor word occurs, and a process scoring a
    few posts need not pay for compiling the others."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)


def as_text(text: Text | str) -> Text:
    """``text`` prepared, unless it is already: signals take either."""
    return text if isinstance(text, Text) else Text.of(text)


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for whole phrases: any whitespace between words, ``*`` for any letters."""
    alternatives = [r"\s+".join(re.escape(w[:-1]) + r"[^\W\d_]*" if w.endswith("*")
                                else re.escape(w) for w in p.split())
                    for p in sorted(phrases, key=len, reverse=True)]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)") \
        if alternatives else None


def _anchor(phrase: str) -> str | None:
    """The word that must occur for ``phrase`` to match: its first run of letters (None when it
    starts with a wildcard or has no letters, so it is tried on every text)."""
    first = phrase.split()[0]
    runs = WORD.findall(first)
    return None if not runs or (first.endswith("*") and len(runs) == 1 and
                                first[:-1] == runs[0]) else runs[0]


class WordList:
    """Whole words and phrases, case-insensitive, ``word*`` for any ending; matched on tokens.

    Plain words are a set lookup per token; phrases (and words with a hyphen or digits) run
    one regex, only when the text holds a phrase's first word, so a long list costs next to
    nothing. ``harmless``: phrases in which a listed word means no harm ("garbage
    collection", "junk mail"); a word found inside one is not counted.
    """

    def __init__(self, entries: Iterable[str], harmless: Iterable[str] = ()) -> None:
        entries = list(dict.fromkeys(entries))
        plain = {e for e in entries if WORD.fullmatch(e)}
        stems = {e for e in entries if e.endswith("*") and WORD.fullmatch(e[:-1])}
        phrases = [e for e in entries if e not in plain and e not in stems]
        self.words = frozenset(plain)
        self.prefixes = tuple(sorted(e[:-1] for e in stems))
        self.phrase_re = _phrase_regex(phrases)
        anchors = [_anchor(p) for p in phrases]
        self.anchors = None if None in anchors else frozenset(a for a in anchors if a)
        harmless = list(harmless)
        self.harmless_re = _phrase_regex(harmless)
        anchors = [_anchor(p) for p in harmless]
        self.harmless_anchors = None if None in anchors else frozenset(a for a in anchors if a)

    def hits(self, text: Text) -> list[str]:
        """The entries found, in text order (a word as often as it occurs)."""
        words = self.words
        if self.prefixes and any(map(text.lower.__contains__, self.prefixes)):
            found = [w for w in text.lower_words if w in words or w.startswith(self.prefixes)]
        elif words.isdisjoint(text.word_set):
            found = []
        else:
            found = [w for w in text.lower_words if w in words]
        if self.phrase_re is not None and (self.anchors is None
                                           or not self.anchors.isdisjoint(text.word_set)):
            found += [" ".join(m.group().split()) for m in self.phrase_re.finditer(text.lower)]
        if found and self.harmless_re is not None and (
                self.harmless_anchors is None
                or not self.harmless_anchors.isdisjoint(text.word_set)):
            for match in self.harmless_re.finditer(text.lower):
                inside = set(WORD.findall(match.group()))
                for i, word in enumerate(found):
                    if word in inside:
                        del found[i]
                        break
        return found

