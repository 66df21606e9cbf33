"""Every word and phrase list the scorer reads: data files, not code.

``monitor/scoring/lexicon/`` holds the built-in lists (``builtin_list``): swear words and
insults (``profanity.txt``, counted in posts of every language), phrases in which such a word
means no harm (``harmless.txt``), intensifiers, acronyms (not shouting), and the English and
not-English words that tell a text's language without a model.

``monitor/scoring/languages/<code>/`` (ISO 639-1) holds one language's data (``language``):

* ``complaint.npz``: the trained complaint model (``monitor.scoring.models`` format, no
  pickle), rebuilt by ``bench/train_complaint.py``; its ``.json`` says how it was made. A
  language is *scored* when this file is there. English also has ``anger.npz``
  (``bench/train_anger.py``).
* ``complaint.txt``, ``change.txt``, ``churn.txt``: weighted phrases (``0.4 no longer``), each
  found adds its weight to its signal and is quoted as evidence;
* ``anger.txt``, ``profanity.txt``: words that name anger, and swear words and insults;
* ``negations.txt``: words that, just before a churn phrase, undo it ("won't cancel");
* ``stopwords.txt``, ``terms.txt``: for grouping complaints into themes
  (``monitor.backlash.themes``): words to ignore, and words to read as an English one
  (``montre = watch``), so that French and English posts about one problem meet.

English keeps its older regular-expression cues for change and churn in
``monitor.scoring.signals`` (its files add to them). Adding Spanish is adding ``es/`` with a
model trained by the same script and its lists; nothing else changes. Phrases are matched on
``fold``-ed text (lower case, no accents, straight apostrophes), so "mise a jour" finds
"Mise à jour". The user's own word files (``rules/profanity.txt``) are read by
``load_word_file``.
"""

from __future__ import annotations

import importlib.resources
import re
import unicodedata
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError
from monitor.scoring.words import LazyRegex, Text

Hit = tuple[str, float]
"""A phrase found in a text, as written (folded), and its weight 0..1."""

_NEGATION_WINDOW = 30  # characters before a phrase looked at for a negation


def fold(text: str) -> str:
    """Lower case without accents, with straight apostrophes: what phrases are matched on."""
    text = text.lower().replace("’", "'")
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))


def entries(lines: Iterable[str]) -> list[str]:
    """Non-empty lines of a word file, without ``#`` comments, inner whitespace collapsed."""
    out = []
    for line in lines:
        entry = " ".join(line.split("#", 1)[0].split())
        if entry:
            out.append(entry)
    return out


def word_entries(lines: Iterable[str]) -> list[str]:
    """Non-empty lines without ``#`` comments, lowercased, inner whitespace collapsed."""
    return [entry.lower().replace("’", "'") for entry in entries(lines)]


def builtin_list(name: str) -> list[str]:
    """The entries of the built-in word list ``lexicon/<name>``."""
    return word_entries(_data("lexicon", name).read_text("utf-8").splitlines())


def load_word_file(path: Path, shown: str | None = None) -> tuple[list[str], list[str]]:
    """(added, removed) words of a user word file such as ``rules/profanity.txt``.

    One word or phrase per line, ``*`` at the end for any ending, ``-word`` to remove a
    built-in word, ``#`` for comments. A missing file adds and removes nothing.
    """
    if not path.is_file():
        return [], []
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read ({error})", shown or str(path)) from None
    added, removed = [], []
    for entry in word_entries(text.splitlines()):
        if entry.startswith("-"):
            if entry[1:].strip():
                removed.append(entry[1:].strip())
        else:
            added.append(entry)
    return added, removed


def parse_weighted(lines: Iterable[str], default: float = 1.0) -> list[tuple[float, str]]:
    """(weight, folded phrase) per line ``0.4 no longer``; a line without a weight gets
    ``default``. ValueError names the line of a weight outside 0..1."""
    out = []
    for entry in entries(lines):
        first, _, rest = entry.partition(" ")
        try:
            weight = float(first)
        except ValueError:
            weight, rest = default, entry
        if not 0 <= weight <= 1:
            raise ValueError(f"{entry!r}: the weight must be between 0 and 1")
        if rest.strip():
            out.append((weight, fold(rest.strip())))
    return out


_LETTERS = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class _Phrase:
    weight: float
    needle: str            # the phrase is tried only when the text holds this ...
    whole: bool            # ... as a run of letters of its own (else anywhere, as a prefix)
    pattern: LazyRegex
    size: int              # longer phrases are tried first: theirs is a match inside them
    lead: str              # the literal text every match starts with ...
    runs: frozenset[str]   # ... and the runs of letters it holds whole: cheap first tests


def _compile(weight: float, phrase: str) -> _Phrase:
    """The pattern starts with the literal first word, so the regex engine finds candidates by
    a fast substring search; the left word boundary is a lookbehind placed after it."""
    words = phrase.split()
    parts = [re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) for w in words]
    size = len(r"\s+".join(parts))
    lead = re.escape(words[0].rstrip("*"))
    parts[0] = f"{lead}(?<!\\w{lead})" + parts[0][len(lead):]
    runs: list[str] = []
    for word in words:
        found = _LETTERS.findall(word.rstrip("*"))
        runs += found[:-1] if word.endswith("*") else found  # ending in a prefix, not a word
    whole = bool(runs)
    needle = max(runs, key=len) if runs else max((w.rstrip("*") for w in words), key=len)
    return _Phrase(weight, needle, whole, LazyRegex(r"\s+".join(parts) + r"(?!\w)"), size,
                   words[0].rstrip("*"), frozenset(runs))


_LOOKED_UP_RUNS = 64  # a text with more runs of letters is searched for prefixes instead


class _Starts(dict[str, tuple[str, ...]]):
    """A run of letters -> the prefixes it starts with, filled as runs are met: a text's
    words are looked up in C, and most words of a stream have been met before."""

    LIMIT = 50_000  # runs remembered; then it starts again (hostile input: random words)

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def __missing__(self, run: str) -> tuple[str, ...]:
        found = tuple(p for p in self.prefixes if run.startswith(p)) \
            if run.startswith(self.prefixes) else ()
        if len(self) >= self.LIMIT:
            self.clear()
        self[run] = found
        return found


class _Gate:
    """Which needles of some phrases a text holds: its runs of letters that are needles (a
    set intersection), and the prefixes its runs start with. A phrase is tried only when
    its needle is held: every match holds it (a prefix of letters starts a run wherever its
    phrase matches; any other prefix, such as '2fa', is looked for anywhere in the text)."""

    def __init__(self, phrases: Iterable[_Phrase]) -> None:
        phrases = list(phrases)
        self.words = frozenset(p.needle for p in phrases if p.whole)
        prefixes = tuple(dict.fromkeys(p.needle for p in phrases if not p.whole))
        letters = tuple(p for p in prefixes if _LETTERS.fullmatch(p))
        self.starts = _Starts(letters) if letters else None
        # a long text's runs are not looked up one by one (a hostile one's are all new):
        # one search of the text finds where any prefix occurs at all, as a cheaper test
        self.any_prefix = re.compile("|".join(map(re.escape, letters))) if letters else None
        self.loose = tuple(p for p in prefixes if p not in letters)

    def present(self, folded: str, words: Set[str]) -> Set[str]:
        """The needles ``folded`` holds, ``words`` being its runs of letters."""
        present = self.words.intersection(words)
        if self.starts is not None:
            if len(words) <= _LOOKED_UP_RUNS:
                started = list(filter(None, map(self.starts.__getitem__, words)))
                if started:
                    present = present.union(*started)
            elif self.any_prefix is not None and self.any_prefix.search(folded):
                present = present.union([n for n in self.starts.prefixes if n in folded])
        if self.loose:
            present = present.union([n for n in self.loose if n in folded])
        return present


class PhraseList:
    """Weighted phrases matched on folded text; each is tried only when its longest word is
    one of the text's words (a set intersection), or for a phrase that is one word with a
    wildcard, when one of the text's runs of letters starts with its prefix (see ``_Gate``):
    a list of a hundred phrases costs a few microseconds.

    ``negations``: words that, in the few characters before a match, undo it.
    """

    def __init__(self, entries: Iterable[tuple[float, str]], negations: Iterable[str] = ()
                 ) -> None:
        phrases = [_compile(w, p) for w, p in dict((p, (w, p)) for w, p in entries).values()]
        self.phrases = tuple(sorted(phrases, key=lambda p: -p.size))
        by_needle: dict[str, list[int]] = {}
        for i, phrase in enumerate(self.phrases):
            by_needle.setdefault(phrase.needle, []).append(i)
        self.by_needle = {needle: tuple(at) for needle, at in by_needle.items()}
        self.needles = frozenset(by_needle)
        self.gate = _Gate(self.phrases)
        words = [re.escape(fold(w)) for w in negations]
        self.negation = re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)") \
            if words else None

    def __bool__(self) -> bool:
        return bool(self.phrases)

    def hits(self, folded: str, original: str | None = None,
             words: Set[str] | None = None, present: Set[str] | None = None) -> list[Hit]:
        """Each phrase found, once, with its weight; a match inside an earlier (longer) one is
        the same words said once. With the ``original`` text that was folded, phrases are
        reported as written (accents kept) when folding kept every character in place.
        ``words``: the folded text's runs of letters, when the caller has them already;
        ``present``: the needles a wider ``_Gate`` (its language's) found in the text."""
        if words is None:
            words = set(_LETTERS.findall(folded))
        if present is None:
            present = self.gate.present(folded, words)
        else:
            present = self.needles.intersection(present)
        if not present:
            return []
        found: dict[str, float] = {}
        taken: list[tuple[int, int]] = []
        shown = None
        if len(present) == 1:
            wanted: Iterable[int] = self.by_needle[next(iter(present))]
        else:
            wanted = sorted([i for needle in present for i in self.by_needle[needle]])
        for i in wanted:
            phrase = self.phrases[i]
            if phrase.lead not in folded or not phrase.runs <= words:
                continue
            for match in phrase.pattern.finditer(folded):
                start, end = match.span()
                if any(start < e and s < end for s, e in taken):
                    continue
                if self.negation is not None and self.negation.search(
                        folded, max(0, start - _NEGATION_WINDOW), start):
                    continue
                taken.append((start, end))
                if shown is None:
                    shown = original.lower() if original is not None \
                        and len(original) == len(folded) else folded
                found.setdefault(" ".join(shown[start:end].split()), phrase.weight)
        return list(found.items())


def letters(folded: str) -> set[str]:
    """The runs of letters of a folded text: what ``PhraseList.hits`` looks its words up in."""
    return set(_LETTERS.findall(folded))


def folded_letters(text: Text) -> tuple[str, Set[str]]:
    """``fold`` of the text and its ``letters``, from the words ``Text`` found already when
    the text is ASCII (most posts): folded, it is just the lower case, and its runs of
    letters are its words cut at their apostrophes."""
    if not text.original.isascii():
        folded = fold(text.original)
        return folded, letters(folded)
    if "'" not in text.lower:
        return text.lower, text.word_set
    # the words cut at their (inner) apostrophes, in C: "don't" -> "don", "t"
    return text.lower, set(" ".join(text.lower_words).replace("'", " ").split())


def saturate(hits: Iterable[Hit]) -> float:
    """A signal 0..1 from its hits: the weights add up, capped at 1."""
    return min(1.0, sum((weight for _, weight in hits), 0.0))


@dataclass(frozen=True)
class Language:
    """One language's data: its phrase lists, and its models read on first use."""

    code: str
    complaint: PhraseList
    anger_words: PhraseList
    change: PhraseList
    churn: PhraseList
    profanity: PhraseList
    folder: Traversable = field(repr=False, compare=False)

    @cached_property
    def gate(self) -> _Gate:
        """One ``_Gate`` for all the lists: a text is looked through once, not per list."""
        return _Gate(phrase for phrases in (self.complaint, self.anger_words, self.change,
                                            self.churn, self.profanity)
                     for phrase in phrases.phrases)

    def model(self, name: str) -> Any:
        """The language's ``<name>.npz`` model (complaint, anger), or None when not shipped."""
        return _model(self.code, name)


def _data(*parts: str) -> Traversable:
    """A file or folder of the scorer's package data."""
    return importlib.resources.files("monitor.scoring").joinpath(*parts)


def _folder(code: str) -> Traversable:
    return _data("languages", code)


def read_lines(folder: Traversable, name: str) -> list[str]:
    """The lines of ``name`` in a language folder; none when the file is not there."""
    path = folder.joinpath(name)
    return path.read_text("utf-8").splitlines() if path.is_file() else []


def language_folders() -> list[Traversable]:
    """Every language's folder of ``monitor/scoring/languages``, in name order."""
    return sorted((f for f in _data("languages").iterdir() if f.is_dir()), key=lambda f: f.name)


@cache
def language(code: str | None) -> Language | None:
    """The data of language ``code`` (None is English: too short to tell), or None when the
    language has no folder."""
    code = code or "en"
    if not re.fullmatch(r"[a-z]{2,3}", code):
        return None
    folder = _folder(code)
    if not folder.is_dir():
        return None
    negations = [fold(line) for line in entries(read_lines(folder, "negations.txt"))]
    return Language(
        code=code,
        complaint=PhraseList(parse_weighted(read_lines(folder, "complaint.txt"))),
        anger_words=PhraseList(parse_weighted(read_lines(folder, "anger.txt"))),
        change=PhraseList(parse_weighted(read_lines(folder, "change.txt"))),
        churn=PhraseList(parse_weighted(read_lines(folder, "churn.txt")), negations),
        profanity=PhraseList(parse_weighted(read_lines(folder, "profanity.txt"))),
        folder=folder)


@cache
def scored_languages() -> frozenset[str]:
    """The codes of every language with a complaint model: posts in any other language are
    stored and counted, but not scored."""
    return frozenset(folder.name for folder in language_folders()
                     if folder.joinpath("complaint.npz").is_file())


def is_scored(code: str | None) -> bool:
    """Are posts in ``code`` scored? None (too short to tell) is read as English."""
    return (code or "en") in scored_languages()


@cache
def _model(code: str, name: str) -> Any:
    import numpy as np

    from monitor.scoring.models import load_model

    path = _folder(code).joinpath(f"{name}.npz")
    if not path.is_file():
        return None
    with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        return load_model(data)
