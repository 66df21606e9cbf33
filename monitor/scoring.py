"""Text -> Score: VADER's numbers plus our own signals (anger, change talk, churn intent).

Pure: the same text always gets the same numbers. A ``Scorer`` is compiled once (word lists,
cue patterns, event keywords) and scores many posts; ``score_text``/``score_post`` use a default
one. What it measures, and why:

* **VADER** (``monitor.vader``: VADER's own algorithm, the same numbers, in linear time) on the
  whole text, as before, and for a long post on each sentence that holds a negative word: a
  long, polite post with one furious paragraph is still angry, and its worst sentence is named.
* **Anger cues**: words in capitals (not acronyms), runs of ! and ?, profanity and insults (a
  word list in ``monitor/lexicon/``, adjusted by the user's ``rules/profanity.txt``),
  intensifiers in a negative post, and second-person blame ("you ruined", "you people").
* **Change talk** (redesign, new layout, "bring back", "since the update", the configured launch
  keywords) and **churn intent** (cancel, refund, delete my account, "I'm done").
* **Language**: VADER knows only English. A post confidently in another language keeps its
  language code, gets 0 for VADER's numbers and ``sentiment_known`` False; only the universal
  cues (capitals, !!!, listed swear words) can still call it angry.
* **Bounds**: at most ``MAX_SCORED_CHARS`` of a post are read, sentences are scored in parts of
  at most ``MAX_SENTENCE_CHARS``, and at most ``MAX_SENTENCES`` of them: any post, 1 MB of emoji
  included, scores in milliseconds. ``truncated`` says when something was left out.

``angry`` combines the trained model of ``monitor.anger_model`` (when its weights are shipped)
with strong hand signals; see ``verdict``. ``anger`` is at least 0.5 exactly when ``angry``.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from monitor.languages import Hit, Language, PhraseList, entries, fold, language, letters, saturate
from monitor.model import Post, Score
from monitor.vader import Tokens, Vader, vader

log = logging.getLogger(__name__)

MAX_SCORED_CHARS = 5_000      # of title + text; the same cut as before, so compounds continue
MAX_SENTENCE_CHARS = 500      # a longer sentence is scored in parts
MAX_SENTENCES = 100           # sentences scored per post (only those holding a negative word)
LANGUAGE_MIN_LETTERS = 20     # shorter texts are too short to tell: language None (English)
LANGUAGE_CHARS = 300          # the language is told from the first characters only
LANGUAGE_MIN_CONFIDENCE = 0.9  # below this, a non-English guess is not trusted
WORST_SENTENCE_MAX = -0.5     # a sentence this negative is reported as the worst sentence
LONG_POST_CHARS = 200         # a post this long is also scored per sentence


_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_ASCII_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")  # the same on ASCII text, faster
_RUN = re.compile(r"[!?]{2,}")
_NEGATED = re.compile(r"\b(?:not|never|no|don't|dont|won't|wont|wouldn't|didn't|isn't)"
                      r"(?: \S+){0,2} $")  # a negation just before a cue
_MASKED = re.compile(r"\bf(?:[*@]{1,3}c?k(?:ing|ed|er|in)?|\*{3})(?![\w*])|\bsh[*@]t\b|"
                     r"\bs\*\*t\b|\bb[*@]tch")


# --- word lists ------------------------------------------------------------------------------

def _lexicon(name: str) -> list[str]:
    text = importlib.resources.files("monitor").joinpath("lexicon", name).read_text("utf-8")
    return _entries(text.splitlines())


def _entries(lines: Iterable[str]) -> list[str]:
    """Non-empty lines without ``#`` comments, lowercased, inner whitespace collapsed."""
    return [entry.lower().replace("’", "'") for entry in entries(lines)]


def load_word_file(path: Path) -> tuple[list[str], list[str]]:
    """(added, removed) words of a user word file such as ``rules/profanity.txt``.

    One word or phrase per line, ``*`` at the end for any ending, ``-word`` to remove a
    built-in word, ``#`` for comments. A missing file adds and removes nothing.
    """
    if not path.is_file():
        return [], []
    added, removed = [], []
    for entry in _entries(path.read_text("utf-8").splitlines()):
        if entry.startswith("-"):
            if entry[1:].strip():
                removed.append(entry[1:].strip())
        else:
            added.append(entry)
    return added, removed


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
    runs = _WORD.findall(first)
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
        plain = {e for e in entries if _WORD.fullmatch(e)}
        stems = {e for e in entries if e.endswith("*") and _WORD.fullmatch(e[:-1])}
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
        found = [] if words.isdisjoint(text.word_set) else \
            [w for w in text.lower_words if w in words]
        if self.prefixes and any(p in text.lower for p in self.prefixes):
            found = [w for w in text.lower_words if w in words or w.startswith(self.prefixes)]
        if self.phrase_re is not None and (self.anchors is None
                                           or not self.anchors.isdisjoint(text.word_set)):
            found += [" ".join(m.group().split()) for m in self.phrase_re.finditer(text.lower)]
        if found and self.harmless_re is not None and (
                self.harmless_anchors is None
                or not self.harmless_anchors.isdisjoint(text.word_set)):
            for match in self.harmless_re.finditer(text.lower):
                inside = set(_WORD.findall(match.group()))
                for i, word in enumerate(found):
                    if word in inside:
                        del found[i]
                        break
        return found


@cache
def _builtin_profanity() -> tuple[str, ...]:
    return tuple(_lexicon("profanity.txt"))


@cache
def _harmless() -> tuple[str, ...]:
    return tuple(_lexicon("harmless.txt"))


@cache
def _intensifiers() -> frozenset[str]:
    return frozenset(_lexicon("intensifiers.txt"))


@cache
def _acronyms() -> frozenset[str]:
    return frozenset(_lexicon("acronyms.txt"))


# --- the text as the signals see it -----------------------------------------------------------

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
        words = (_ASCII_WORD if text.isascii() else _WORD).findall(text)
        lower_words = list(map(str.lower, words))
        return cls(text, text.lower(), words, lower_words, frozenset(lower_words))


def _text(text: Text | str) -> Text:
    return text if isinstance(text, Text) else Text.of(text)


# --- signals: small pure functions ------------------------------------------------------------

def shouting(words: Sequence[str], acronyms: frozenset[str] | None = None) -> tuple[float, int]:
    """(share, count) of words written in capitals, out of all words.

    Capitals are shouting only in words of four letters or more that are not known acronyms
    (API, UI, CSS, JSON, HTTPS), so technical talk is not mistaken for anger.
    """
    if acronyms is None:
        acronyms = _acronyms()
    capitals = [w for w in words if w.isupper()]
    count = sum(1 for w in capitals if len(w) >= 4 and w.lower() not in acronyms)
    return (count / len(words) if words else 0.0), count


def punctuation_runs(text: str) -> dict[str, int]:
    """Runs of two or more ! and ? ('!!!', '?!'), each with how often it occurs."""
    if "!!" not in text and "??" not in text and "!?" not in text and "?!" not in text:
        return {}
    return dict(Counter(_RUN.findall(text)))


def profanity_hits(text: Text | str, words: WordList | None = None) -> list[str]:
    """Swear words and insults of ``words`` (default: the built-in list), plus masked ones
    such as 'f***' or 'sh*t'."""
    text = _text(text)
    found = (words or default_scorer().profanity).hits(text)
    if "*" in text.original or "@" in text.original:
        found += _MASKED.findall(text.lower)
    return found


def intensifier_hits(text: Text | str) -> list[str]:
    """Intensifiers ('absolutely', 'completely'): they turn up a negative post."""
    intensifiers, text = _intensifiers(), _text(text)
    if intensifiers.isdisjoint(text.word_set):
        return []
    return [w for w in text.lower_words if w in intensifiers]


@dataclass(frozen=True, slots=True)
class Cue:
    """A phrase pattern worth ``weight`` to a signal; tried only when an anchor word occurs."""

    weight: float
    anchors: frozenset[str]
    pattern: re.Pattern[str]


def _cue(weight: float, lead: str, rest: str = "", anchors: str = "") -> Cue:
    """A cue matching ``lead`` (plain words), then the pattern ``rest``, as whole words.

    The pattern starts with the literal lead, so the regex engine finds candidates by a fast
    substring search instead of trying every position (the left word boundary is checked by
    a lookbehind placed after the lead). ``anchors``: the words that must occur for the cue
    to be tried; by default the lead's first word.
    """
    literal = re.escape(lead)
    pattern = re.compile(f"{literal}(?<!\\w{literal}){rest}(?!\\w)")
    return Cue(weight, frozenset(anchors.split() or lead.split()[:1]), pattern)


def _cues(weight: float, leads: str, rest: str = "", anchors: str = "") -> tuple[Cue, ...]:
    """One cue per lead of ``leads`` ('|'-separated), all with the same ``rest``."""
    return tuple(_cue(weight, lead, rest, anchors) for lead in leads.split("|"))


_PLACE = (r"(?:ui|ux|layout|design|look|editor|interface|version|update|menu|navigation|"
          r"dashboard|home ?page|app|logo|pricing|plans?|theme|icons?|toolbar|sidebar|font|"
          r"colou?rs?|experience|feed|algorithm|format|search|site|website|system)")
_DAMAGE = (r"(?:ruin(?:ed|ing|s)?|broke|break|destroy(?:ed)?|kill(?:ed)?|screw(?:ed)?(?: up)?|"
           r"mess(?:ed)? up|butcher(?:ed)?|wreck(?:ed)?|fuck(?:ed)?(?: up)?|f\*+ed|trash(?:ed)?|"
           r"gutt?ed|ignor(?:ed|e))")
_ANY_CANCEL = "cancel canceled cancelled canceling cancelling cancels"

BLAME_CUES = (
    _cue(1.0, "you", r"(?: (?:people|idiots|clowns|morons|muppets|lot)"
                     r"|(?:'ve| have| guys| people| all| clearly| really| just| completely"
                     r"| totally| actually)? " + _DAMAGE +
                     r"| (?:clearly |obviously |just |simply )?(?:don't|do not|never|didn't) "
                     r"(?:care|listen|test|read))", anchors="you you've"),
    *_cues(1.0, "shame on you|how dare you|what were you thinking|do you even|"
                "thanks for nothing"),
    _cue(1.0, "are you", r" (?:serious|kidding(?: me)?|insane|joking|crazy|nuts|mad)"),
    _cue(1.0, "who", r" (?:the (?:hell|fuck) )?(?:thought|decided) (?:this|that|it) (?:was|is) "
                     r"a good idea"),
    *_cues(1.0, "nobody|no one|no-one", r" (?:asked for|wanted|needed) (?:this|that)"),
    _cue(1.0, "your", r" (?:stupid|useless|garbage|crappy|terrible|awful|pathetic|idiotic|"
                      r"incompetent|lazy|greedy|horrible|shitty|trash|ridiculous|dumb|broken|"
                      r"fucking) \w+"),
)

CHANGE_CUES = (
    _cue(0.5, "redesign", r"(?:ed|s|ing)?", "redesign redesigned redesigns redesigning"),
    _cue(0.5, "re-design", r"(?:ed|s|ing)?", "re"),
    _cue(0.5, "new", " " + _PLACE),
    *_cues(0.5, "since|after", r" (?:the |this |that |your |their |last |latest |recent |new |"
                               r"last week's |yesterday's )?(?:update|upgrade|release|patch|"
                               r"redesign|change|changes|version|rollout|migration)"),
    _cue(0.5, "bring", r"(?:s|ing)? (?:\S+ ){0,3}?back", "bring brings bringing"),
    _cue(0.5, "put", r" (?:it|them) back"),
    *_cues(0.5, "old|previous|original|classic|former",
           r" (?:\w+ )?(?:" + _PLACE[3:-1] + r"|one|way|style|features?)"),
    _cue(0.5, "used to", r" (?:be able to|work)"),
    _cue(0.25, "used to be"),
    *_cues(0.4, "removed|remove|removing|got rid of|get rid of|took away|taken away|take away|"
                "killed off|dropped support|deprecated|discontinued|disabled|eliminated"),
    *_cues(0.5, "roll back|rollback|undo the change|undo this change|undo the update"),
    _cue(0.5, "revert", r"(?:ed|ing|s)?", "revert reverted reverting reverts"),
    _cue(0.5, "downgrad", r"(?:e|ed|ing)", "downgrade downgraded downgrading"),
    *_cues(0.25, "moved|no longer|anymore|can't find|cannot find|can not find|couldn't find"),
    _cue(0.25, "where", r" (?:did|has|have|is|are) (?:the |my |our )?\w+(?: \w+)? (?:go|gone)"),
    _cue(0.2, "change", r"(?:d|s)?", "change changed changes"),
    _cue(0.25, "update", r"(?:d|s)?", "update updated updates"),
    _cue(0.25, "upgrade", r"d?", "upgrade upgraded"),
    _cue(0.3, "forc", r"(?:ed|ing) (?:\w+ )?(?:us|me|users|people|everyone|this)",
         "forced forcing"),
)

CHURN_CUES = (
    _cue(0.7, "cancel", r"(?:l?ed|l?ing|s)? (?:\w+ ){0,2}?(?:subscriptions?|accounts?|plans?|"
                        r"membership|orders?|licen[cs]es?|renewal|service|contract|pro|premium|"
                        r"sub)", _ANY_CANCEL),
    *_cues(0.7, "i|we", r"(?:'m| am|'ll| will|'re| are|'ve| have| just)? (?:going to |gonna |"
                        r"already )?cancel(?:l?ed|l?ing)?", _ANY_CANCEL),
    _cue(0.7, "unsubscrib", r"(?:e|ed|ing)", "unsubscribe unsubscribed unsubscribing"),
    *_cues(0.7, "delet|clos|deactivat|remov|terminat",
           r"(?:e|ed|es|ing) (?:my|our|the) (?:\w+ )?account", "account"),
    _cue(0.6, "refund", r"(?:s|ed)?", "refund refunds refunded"),
    _cue(0.6, "chargeback"),
    *_cues(0.6, "my money back|our money back", anchors="money"),
    *_cues(0.6, "i'm|im|i am|we're|we are", r" (?:so |totally |completely |officially |just )?"
                                            r"(?:done|out of here|outta here|leaving)"),
    _cue(0.5, "uninstall", r"(?:ed|ing)?", "uninstall uninstalled uninstalling"),
    _cue(0.5, "never", r" (?:again|buying|using|paying|recommending|recommend)"),
    *_cues(0.5, "not|never|won't|will not|no longer", r" (?:be )?renew(?:ing)?", "renew renewing"),
    _cue(0.5, "lost", r" (?:me|a customer|another customer|my business|a (?:paying |loyal |"
                      r"long-time |longtime )?(?:customer|user|subscriber))"),
    *_cues(0.5, "take my|taking my", r" (?:money|business) elsewhere", "elsewhere"),
    *_cues(0.4, "looking for|look for|find|finding|switch to|switching to|try|trying",
           r" (?:an |some |other |a better )?alternatives?", "alternative alternatives"),
    _cue(0.35, "switch", r"(?:ing|ed)?(?: back| over)? to", "switch switching switched"),
    _cue(0.35, "migrat", r"(?:e|ing)(?: back| over)? to", "migrate migrating"),
    _cue(0.35, "jump", r"(?:ing)? ship", "jump jumping"),
    *_cues(0.3, "last straw|final straw", anchors="straw"),
)


class CueSet:
    """The cues of one signal, tried in order (strong ones first), each only when one of its
    anchor words occurs: one set intersection per text picks the few patterns to run.

    ``negatable``: a match right after a negation ("I'm not cancelling", "no plans to cancel
    my subscription", "won't switch to") does not count.
    """

    def __init__(self, cues: Iterable[Cue], negatable: bool = False) -> None:
        self.cues = tuple(cues)
        self.negatable = negatable
        index: dict[str, list[int]] = {}
        for i, cue in enumerate(self.cues):
            for anchor in cue.anchors:
                index.setdefault(anchor, []).append(i)
        self.index = {anchor: tuple(at) for anchor, at in index.items()}
        self.anchors = frozenset(index)
        self.always = frozenset(i for i, cue in enumerate(self.cues) if not cue.anchors)

    def hits(self, text: Text) -> list[Hit]:
        """Each phrase matched, with its cue's weight; a match overlapping an earlier one is
        the same words said once ('i am cancelling my subscription' counts once)."""
        present = self.anchors.intersection(text.word_set)
        if not present and not self.always:
            return []
        wanted = set(self.always)
        for anchor in present:
            wanted.update(self.index[anchor])
        found: dict[str, float] = {}
        taken: list[tuple[int, int]] = []
        for i in sorted(wanted):
            cue = self.cues[i]
            for match in cue.pattern.finditer(text.lower):
                start, end = match.span()
                if any(start < e and s < end for s, e in taken):
                    continue
                if self.negatable and _NEGATED.search(text.lower, max(0, start - 30), start):
                    continue
                taken.append((start, end))
                found.setdefault(" ".join(match.group().split()), cue.weight)
        return list(found.items())


BLAME = CueSet(BLAME_CUES)
CHANGE = CueSet(CHANGE_CUES)
CHURN = CueSet(CHURN_CUES, negatable=True)


def second_person_blame(text: Text | str) -> list[str]:
    """Blame aimed at 'you': 'you ruined', 'you people', 'shame on you', 'nobody asked for this'."""
    return [phrase for phrase, _ in BLAME.hits(_text(text))]


def change_talk(text: Text | str, cues: CueSet = CHANGE) -> list[Hit]:
    """Talk of a change: redesign, new layout/UI/editor, update, removed or moved features,
    'bring back', 'the old version', 'used to be able to', 'since the update'; pass
    ``change_cues(event_terms)`` to count the configured launch keywords too."""
    return cues.hits(_text(text))


def churn_intent(text: Text | str) -> list[Hit]:
    """Intent to leave: cancel, unsubscribe, delete my account, refund, switching to, 'I'm done'."""
    return CHURN.hits(_text(text))


def change_cues(event_terms: Iterable[str]) -> CueSet:
    """The change-talk cues plus configured launch keywords ('Editor 2.0', 'new dashboard*'):
    whole words, case-insensitive, ``*`` for any letters, each worth as much as 'redesign'."""
    cues = []
    for term in event_terms:
        words = " ".join(term.split()).lower().replace("’", "'").split()
        if not words:
            continue
        parts = [re.escape(w[:-1]) + r"[^\W\d_]*" if w.endswith("*") else re.escape(w)
                 for w in words]
        # Tried only on texts holding the first word's first run of letters; a term starting
        # with a wildcard or without letters ('2.0') is tried on every text.
        first = _WORD.findall(words[0])
        anchors = frozenset(first[:1]) if first and not words[0].endswith("*") else frozenset()
        pattern = re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)")
        cues.append(Cue(0.5, anchors, pattern))
    return CueSet((*cues, *CHANGE_CUES))


# --- language ---------------------------------------------------------------------------------

@cache
def _language_words() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """English words that are not words of the nearby European languages, short English
    words that some of them share, and their frequent words that are not English
    (``monitor/lexicon/english.txt``, ``english-common.txt``, ``not-english.txt``)."""
    return (frozenset(_lexicon("english.txt")), frozenset(_lexicon("english-common.txt")),
            frozenset(_lexicon("not-english.txt")))


def plainly_english(text: Text | str) -> bool:
    """Does the text read as English from its common words alone? (No model needed.)

    Two English-only words making up a tenth of the words, or one plus short common English
    words making up a third (three words at least); and no frequent word of another language.
    """
    text = _text(text)
    english, common, other = _language_words()
    if not other.isdisjoint(text.word_set):
        return False
    strong = sum(map(english.__contains__, text.lower_words))
    if strong >= 2 and strong >= 0.1 * len(text.words):
        return True
    both = strong + sum(map(common.__contains__, text.lower_words))
    return strong >= 1 and both >= 3 and both >= len(text.words) / 3


@cache
def _identifier() -> Any:
    """py3langid's model, loaded the first time a text needs it.

    py3langid ships it LZMA-compressed: unpacking takes 0.5 to 1 s, longer than scoring
    thousands of posts, in every process. So the unpacked arrays are kept in the user's cache
    folder (``$XDG_CACHE_HOME/feedback-monitor``, about 70 MB per py3langid version) and
    mapped from there in milliseconds by later processes: the same arrays, the same answers.
    Without a writable cache folder (or another py3langid layout) it loads as py3langid does.
    """
    import json
    import os
    import shutil
    import tempfile
    from importlib.metadata import version

    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    def cached() -> Any:
        from py3langid.modelio import load_model

        source = MODEL_DIR / MODEL_FILE
        stat = source.stat()
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
            / "feedback-monitor"
        folder = root / f"py3langid-{version('py3langid')}-{stat.st_size}-{stat.st_mtime_ns}"
        names = ("ptc", "pc", "nextmove", "row", "out")
        if not (folder / "classes.json").is_file():  # unpack once, as from_model_file does
            ptc, pc, classes, nextmove, row, out = load_model(source)
            root.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
            arrays = (ptc, pc, np.frombuffer(nextmove, dtype=f"u{nextmove.itemsize}"),
                      np.frombuffer(row, dtype=f"u{row.itemsize}"), np.asarray(out, np.int32))
            for name, array in zip(names, arrays, strict=True):
                np.save(work / f"{name}.npy", array)
            (work / "classes.json").write_text(json.dumps(classes), "utf-8")
            try:  # renamed whole: no reader sees half a cache
                work.rename(folder)
            except OSError:  # another process got there first
                shutil.rmtree(work, ignore_errors=True)
        ptc, pc, nextmove, row, out = (np.load(folder / f"{name}.npy", mmap_mode="r")
                                       for name in names)
        classes = json.loads((folder / "classes.json").read_text("utf-8"))
        return LanguageIdentifier(ptc, np.asarray(pc), classes, memoryview(nextmove),
                                  out.tolist(), norm_probs=True, tk_row=memoryview(row))

    try:
        return cached()
    except Exception as error:  # the cache is a shortcut, never a failure
        log.debug("py3langid model not cached (%s): unpacking it", error)
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: Text | str) -> str | None:
    """ISO 639-1 code of the text's language; None when too short to tell (under 20 letters).

    Clearly English text is recognised from its common words; the rest goes to py3langid, on
    its first ``LANGUAGE_CHARS`` characters. A non-English answer needs a confidence of
    ``LANGUAGE_MIN_CONFIDENCE``; anything less is taken as English, so VADER still reads it.
    """
    text = _text(text)
    if sum(map(len, text.words)) < LANGUAGE_MIN_LETTERS:
        return None
    if plainly_english(text):
        return "en"
    language, confidence = _identifier().classify(text.original[:LANGUAGE_CHARS])
    return language if language != "en" and confidence >= LANGUAGE_MIN_CONFIDENCE else "en"


# --- the anger model ---------------------------------------------------------------------------

@cache
def _anger_model() -> Any:
    """``monitor.anger_model`` when it and its weights are installed, else None (then the
    verdict comes from the hand signals alone)."""
    try:
        from monitor import anger_model
    except ImportError:
        log.debug("monitor.anger_model is not installed: hand signals only")
        return None
    try:
        anger_model.shipped_model()
    except Exception as error:  # a missing or unreadable weights file: say so, go on without
        log.warning("anger model not loaded (%s): the angry verdict uses hand signals only",
                    error)
        return None
    return anger_model


# --- the scorer ------------------------------------------------------------------------------

ANGRY_ALONE = -0.75           # hand rules: this negative is angry without any other cue ...
ANGRY_WITH_CUE = 0.2          # ... and swearing or blame is angry unless clearly positive
HEAVY = -0.5                  # with the model: heavy swearing/blame/shouting when this negative
SWEARING = -0.3               # ... and one swear word or insult when this negative


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build
class Cues:
    """The anger, change and churn cues found in one text."""

    shouted: int
    shout_share: float
    runs: dict[str, int]
    profanity: list[str]
    intensifiers: list[str]
    blame: list[str]
    change: list[Hit]
    churn: list[Hit]
    complaint: list[Hit]
    anger_words: list[str]

    @property
    def run_count(self) -> int:
        return sum(self.runs.values())

    @property
    def complaint_cues(self) -> float:
        """The complaint cue score 0..1 the complaint model reads beside the words."""
        return saturate(self.complaint)

    @property
    def plain_complaint(self) -> bool:
        """A phrase that alone says something is wrong ("not working", "bring back"): its
        list gives it a weight of 0.5 or more."""
        return any(weight >= 0.5 for _, weight in self.complaint)


@dataclass(slots=True)
class _Draft:
    """One post before the (batched) anger model: everything but the verdict."""

    scored: str
    numbers: tuple[float, float, float, float]
    language: str | None
    truncated: bool
    worst: float                   # compound of the most negative sentence (or of the whole)
    worst_sentence: str | None
    cues: Cues
    pack: Language | None          # the language's data; None: a language we cannot score

    @property
    def known(self) -> bool:
        return self.language in (None, "en")

    @property
    def model_inputs(self) -> dict[str, float]:
        """The dense columns the complaint model reads beside the text."""
        return {"compound": self.numbers[0], "neg": self.numbers[3],
                "cues": self.cues.complaint_cues}

    @property
    def lowest(self) -> float:
        return min(self.numbers[0], self.worst) if self.known else 0.0


class Scorer:
    """Every signal, compiled once: word lists, cue patterns, event keywords, the models.

    ``extra_words``/``removed_words`` adjust the built-in profanity and insult list (see
    ``load_word_file`` for ``rules/profanity.txt``); ``event_terms`` are the configured launch
    keywords, counted as change talk. ``anger_model=False`` leaves the trained models out (the
    anger and complaint models: hand signals only).
    """

    def __init__(self, extra_words: Iterable[str] = (), removed_words: Iterable[str] = (),
                 event_terms: Iterable[str] = (), *, anger_model: bool = True,
                 complaint_models: Mapping[str, Any] | None = None) -> None:
        removed = set(_entries(removed_words))
        self.complaint_models = dict(complaint_models or {})  # language -> model, for benches
        self.profanity = WordList([w for w in (*_builtin_profanity(), *_entries(extra_words))
                                   if w not in removed], _harmless())
        event_terms = tuple(event_terms)
        self.change_cues = change_cues(event_terms)
        self.launch = PhraseList((0.5, fold(t)) for t in event_terms if t.strip())
        self.vader: Vader = vader()
        self.use_models = anger_model
        self.model = _anger_model() if anger_model else None
        self.threshold: float | None = self.model.anger_threshold() if self.model else None

    # --- public --------------------------------------------------------------------------------
    def score(self, title: str | None, text: str) -> Score:
        """Score a post's title and text together."""
        return self.score_many([(title, text)])[0]

    def score_post(self, post: Post) -> Score:
        """Score the author's own words: a reply's title is its thread's, so it is left out."""
        return self.score(None if post.is_reply else post.title, post.text)

    def score_posts(self, posts: Iterable[Post]) -> list[Score]:
        """``score_post`` for many posts at once."""
        return self.score_many((None if p.is_reply else p.title, p.text) for p in posts)

    def score_many(self, pairs: Iterable[tuple[str | None, str]]) -> list[Score]:
        """Scores of many (title, text) pairs, in order. Much faster than one at a time: the
        models are called once for the whole batch."""
        drafts = [self._draft(title, text) for title, text in pairs]
        anger = self._probabilities(drafts)
        complaint = self._complaint(drafts)
        return [self._finish(d, p, c) for d, p, c in zip(drafts, anger, complaint, strict=True)]

    # --- steps ---------------------------------------------------------------------------------
    def _draft(self, title: str | None, text: str) -> _Draft:
        whole = f"{title}\n{text}" if title else text
        scored = whole[:MAX_SCORED_CHARS]
        truncated = len(scored) < len(whole)
        prepared = Text.of(scored)
        code = language_of(prepared)
        pack = language(code)
        worst, worst_sentence = 0.0, None
        if code in (None, "en"):
            tokens = self.vader.tokens(scored)
            numbers, negative = self.vader.analyze(tokens)
            worst = numbers[0]
            if len(scored) >= LONG_POST_CHARS and negative:
                worst, worst_sentence, cut = self._worst_sentence(tokens, worst, negative)
                truncated = truncated or cut
        else:
            numbers = (0.0, 0.0, 0.0, 0.0)
        return _Draft(scored, numbers, code, truncated, worst, worst_sentence,
                      self._cues(prepared, pack), pack)

    def _worst_sentence(self, tokens: Tokens, compound: float, negative: list[int],
                        ) -> tuple[float, str | None, bool]:
        """(compound, text) of the most negative sentence, and whether sentences were skipped.

        Only sentences holding a token VADER found negative (``negative``) are scored: a
        sentence without one does not come out negative. The text is reported only when the
        post has several sentences and that one is clearly negative.
        """
        v = self.vader
        if not negative:
            return compound, None, False
        spans = v.sentences(tokens, MAX_SENTENCE_CHARS)
        if len(spans) < 2:
            return compound, None, False
        wanted, k = [], 0
        for start, end in spans:
            while k < len(negative) and negative[k] < start:
                k += 1
            if k < len(negative) and negative[k] < end:
                wanted.append((start, end))
        cut = len(wanted) > MAX_SENTENCES
        worst, where = 0.0, None
        for start, end in wanted[:MAX_SENTENCES]:
            c = v.compound_span(tokens, start, end)
            if c < worst:
                worst, where = c, (start, end)
        if where is None or worst > WORST_SENTENCE_MAX:
            return min(worst, compound), None, cut
        sentence = " ".join(tokens.raw[where[0]:where[1]])
        return worst, sentence[:MAX_SENTENCE_CHARS], cut

    def _cues(self, text: Text, pack: Language | None) -> Cues:
        """English: the built-in cues. Any language with data (English too): its lists, and
        the launch keywords. Every language: capitals, !!!, the listed swear words."""
        share, shouted = shouting(text.words)
        profanity = profanity_hits(text, self.profanity)
        folded = fold(text.original) if pack is not None else ""
        words = letters(folded)

        def listed(phrases: PhraseList | None) -> list[Hit]:
            return phrases.hits(folded, text.original, words) if phrases else []

        if pack is None or pack.code == "en":
            change, churn = change_talk(text, self.change_cues), churn_intent(text)
            blame, intensifiers = second_person_blame(text), intensifier_hits(text)
        else:
            change, churn, blame, intensifiers = listed(self.launch), [], [], []
        if pack is not None:
            change += [hit for hit in listed(pack.change) if hit not in change]
            churn += listed(pack.churn)
            profanity += [phrase for phrase, _ in listed(pack.profanity)]
        return Cues(shouted, share, punctuation_runs(text.original), profanity, intensifiers,
                    blame, change, churn, listed(pack and pack.complaint),
                    [phrase for phrase, _ in listed(pack and pack.anger_words)])

    def _probabilities(self, drafts: Sequence[_Draft]) -> list[float | None]:
        """The anger model's probability per English post (None elsewhere), in one batch.

        A (long) post whose worst sentence was reported is also judged on that sentence alone
        and keeps the higher of the two: the model reads whole texts, and one furious
        paragraph in a long polite post is diluted in the whole.
        """
        out: list[float | None] = [None] * len(drafts)
        if self.model is None:
            return out
        english = [i for i, d in enumerate(drafts) if d.known]
        if not english:
            return out
        texts = [drafts[i].scored for i in english]
        numbers = [dict(zip(("compound", "pos", "neu", "neg"), drafts[i].numbers, strict=True))
                   for i in english]
        for i, p in zip(english, self.model.anger_probability(texts, numbers), strict=True):
            out[i] = float(p)
        long = [i for i in english if drafts[i].worst_sentence]
        if long:
            sentences = [drafts[i].worst_sentence or "" for i in long]
            numbers = [self.vader.polarity_scores(s) for s in sentences]
            for i, p in zip(long, self.model.anger_probability(sentences, numbers), strict=True):
                out[i] = max(out[i] or 0.0, float(p))
        return out

    def _complaint(self, drafts: Sequence[_Draft]) -> list[tuple[float, float] | None]:
        """(probability, threshold) of each post's language's complaint model, one batch per
        language; None where the language has no model (or models are off)."""
        out: list[tuple[float, float] | None] = [None] * len(drafts)
        if not self.use_models:
            return out
        by_language: dict[str, list[int]] = {}
        for i, d in enumerate(drafts):
            if d.pack is not None:
                by_language.setdefault(d.pack.code, []).append(i)
        for code, rows in by_language.items():
            model = self.complaint_models.get(code) or drafts[rows[0]].pack.model("complaint")
            if model is None:
                continue
            found = model.probability([drafts[i].scored for i in rows],
                                      [drafts[i].model_inputs for i in rows])
            for i, p in zip(rows, found.tolist(), strict=True):
                out[i] = (p, model.threshold)
        return out

    def _finish(self, d: _Draft, probability: float | None,
                complaint_model: tuple[float, float] | None) -> Score:
        compound, pos, neu, neg = d.numbers
        cues, lowest = d.cues, d.lowest
        threshold = self.threshold if probability is not None else None
        complaint = complaint_signal(cues, complaint_model)
        angry = verdict(d.known, lowest, cues, probability, threshold, complaint)
        intensifiers = cues.intensifiers if lowest <= -0.3 else []
        anger = intensity(lowest, cues, intensifiers, probability, threshold, angry)
        model_said = probability if threshold is not None and probability is not None \
            and probability >= threshold else None
        return Score(
            compound=compound, pos=pos, neu=neu, neg=neg, truncated=d.truncated, anger=anger,
            change=round(saturate(cues.change), 3) if cues.change else 0.0,
            churn=round(saturate(cues.churn), 3) if cues.churn else 0.0, angry=angry,
            complaint=complaint, language=d.language, worst_sentence=d.worst_sentence,
            evidence=_evidence(cues, intensifiers, d.worst if d.worst_sentence else None,
                               model_said, complaint, complaint_model))


def rescaled(probability: float, threshold: float) -> float:
    """A model's probability on a 0..1 scale whose 0.5 is the model's threshold."""
    if probability < threshold:
        return probability / (2 * threshold)
    return 0.5 + 0.5 * (probability - threshold) / (1 - threshold)


def complaint_signal(cues: Cues, model: tuple[float, float] | None) -> float:
    """Complaint 0..1, at least 0.5 exactly when the post reports a problem: the language's
    model (its threshold rescaled to 0.5), or, without a model, the cue score alone; a phrase
    that alone says something is wrong ("not working", "bring back the old") is enough."""
    value = rescaled(*model) if model is not None else 0.6 * cues.complaint_cues
    if cues.plain_complaint:
        value = max(value, 0.5)
    return round(value, 3)


def verdict(known: bool, lowest: float, cues: Cues, probability: float | None = None,
            threshold: float | None = None, complaint: float = 0.0) -> bool:
    """Is the writer angry? ``lowest``: the lower of the whole text's and the worst
    sentence's compound.

    With the model (English): its probability reaches its threshold, or the text is
    negative (``HEAVY``) with heavy cues: two or more swear words or insults, blame aimed at
    'you', or shouting; or it swears and is negative (``SWEARING``); or it names anger
    ("furious", "fed up", "ugh") and is negative. The last two were added for short posts,
    where the model reads few words: on GoEmotions dev they cost 0.005 of F1 and find 5 % more
    of the clearly negative VADER tweets at the same precision. Without the
    model: very negative (``ANGRY_ALONE``), or swearing or blame in a text that is not clearly
    positive (``ANGRY_WITH_CUE``); both chosen on the GoEmotions train split (F1 0.40 there,
    0.38 on dev, raw VADER 0.30).
    Other languages: VADER and the model cannot read them, so only universal cues count (much
    shouting, or swearing together with shouting or '!!!') and, where the language has word
    lists, a complaint that swears or names anger.
    """
    profanity, blame = len(cues.profanity), bool(cues.blame)
    heavy_shouting = cues.shouted >= 3 and cues.shout_share >= 0.3
    if not known:
        return heavy_shouting and cues.shout_share >= 0.5 or profanity >= 2 or (
            profanity >= 1 and (cues.shouted >= 2 or cues.run_count >= 1)) or (
            complaint >= 0.5 and (profanity >= 1 or bool(cues.anger_words)))
    named = bool(cues.anger_words) and lowest < 0
    if probability is not None and threshold is not None:
        return probability >= threshold or named or (
            lowest <= SWEARING and profanity >= 1) or (
            lowest <= HEAVY and (profanity >= 2 or blame or heavy_shouting))
    return lowest <= ANGRY_ALONE or named or (
        lowest <= ANGRY_WITH_CUE and (profanity >= 1 or blame))


def intensity(lowest: float, cues: Cues, intensifiers: Sequence[str],
              probability: float | None, threshold: float | None, angry: bool) -> float:
    """Anger 0..1: how negative the text is (or the model's probability, rescaled so that its
    threshold is 0.5), made stronger by each cue; at least 0.5 exactly when ``angry``, so a
    rule's ``anger: {min: 0.5}`` means the same as our verdict."""
    if probability is not None and threshold:
        base = rescaled(probability, threshold)
    else:
        base = 0.6 * max(0.0, -lowest)
    parts = (
        base,
        0.35 if len(cues.profanity) == 1 else 0.55 if cues.profanity else 0.0,
        0.4 if cues.blame else 0.0,
        min(0.5, 0.15 + cues.shout_share) if cues.shouted >= 2 else 0.0,
        min(0.2, 0.1 * cues.run_count),
        min(0.2, 0.1 * len(intensifiers)),
    )
    calm = 1.0
    for part in parts:
        calm *= 1.0 - part
    anger = 1.0 - calm
    anger = max(anger, 0.5) if angry else min(anger, 0.49)
    return round(anger, 3)


def _evidence(cues: Cues, intensifiers: Sequence[str], worst: float | None,
              probability: float | None, complaint: float = 0.0,
              complaint_model: tuple[float, float] | None = None,
              ) -> tuple[tuple[str, str], ...]:
    """Readable (signal, phrase) pairs: ("anger", "4 words in capitals")."""
    if worst is None and probability is None and cues.shouted < 2 and complaint < 0.5 and not (
            cues.runs or cues.profanity or cues.blame or intensifiers or cues.change
            or cues.churn or cues.anger_words):
        return ()
    out: list[tuple[str, str]] = []
    if worst is not None:
        out.append(("anger", f"most negative sentence {worst:.2f}"))
    if probability is not None:
        out.append(("anger", f"reads as angry (model {probability:.2f})"))
    if cues.shouted >= 2:
        out.append(("anger", f"{cues.shouted} words in capitals"))
    for run, n in sorted(cues.runs.items(), key=lambda kv: (-kv[1], kv[0]))[:2]:
        out.append(("anger", f"'{run}' {_times(n)}"))
    if cues.profanity:
        words = list(dict.fromkeys(cues.profanity))[:3]
        out.append(("anger", "swears or insults: " + ", ".join(f"'{w}'" for w in words)))
    out += [("anger", f"says '{p}'") for p in cues.blame[:3]]
    out += [("anger", f"names anger: '{w}'") for w in list(dict.fromkeys(cues.anger_words))[:2]]
    if intensifiers:
        words = list(dict.fromkeys(intensifiers))[:3]
        out.append(("anger", "intensifiers: " + ", ".join(f"'{w}'" for w in words)))
    if complaint >= 0.5:
        if complaint_model is not None and complaint_model[0] >= complaint_model[1]:
            out.append(("complaint", f"reads as a problem report (model {complaint_model[0]:.2f})"))
        phrases = [p for p, _ in sorted(cues.complaint, key=lambda h: -h[1])[:3]]
        if phrases:
            out.append(("complaint", "says " + ", ".join(f"'{p}'" for p in phrases)))
    out += [("change", f"mentions '{p}'") for p, _ in
            sorted(cues.change, key=lambda h: -h[1])[:3]]
    out += [("churn", f"says '{p}'") for p, _ in sorted(cues.churn, key=lambda h: -h[1])[:3]]
    return tuple(out)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


# --- the default scorer, for callers without configuration ------------------------------------

@cache
def default_scorer() -> Scorer:
    """A Scorer with the built-in word lists and no event keywords, made once."""
    return Scorer()


def score_text(title: str | None, text: str) -> Score:
    """Score a title and text with the default Scorer."""
    return default_scorer().score(title, text)


def score_post(post: Post) -> Score:
    """Score the author's own words: a reply's title is its thread's, so it is left out."""
    return default_scorer().score_post(post)
