"""The hand signals: small pure functions of a text, each readable and testable alone.

* **Anger cues**: words in capitals (not acronyms), runs of ! and ?, profanity and insults (a
  word list in ``monitor/scoring/lexicon/``, adjusted by the user's ``rules/profanity.txt``),
  intensifiers in a negative post, and second-person blame ("you ruined", "you people").
* **Change talk** (redesign, new layout, "bring back", "since the update", the configured launch
  keywords) and **churn intent** (cancel, refund, delete my account, "I'm done").

These are English cues (capitals, !!! and the listed swear words excepted); other languages'
phrases come from their lists (``monitor.scoring.lexicons``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from monitor.scoring.lexicons import Hit, builtin_list, word_entries
from monitor.scoring.words import WORD, LazyRegex, Text, WordList, as_text

_RUN = re.compile(r"[!?]{2,}")
_NEGATED = re.compile(r"\b(?:not|never|no|don't|dont|won't|wont|wouldn't|didn't|isn't)"
                      r"(?: \S+){0,2} $")  # a negation just before a cue
_MASKED = re.compile(r"\bf(?:[*@]{1,3}c?k(?:ing|ed|er|in)?|\*{3})(?![\w*])|\bsh[*@]t\b|"
                     r"\bs\*\*t\b|\bb[*@]tch")


@cache
def _builtin_profanity() -> tuple[str, ...]:
    return tuple(builtin_list("profanity.txt"))


@cache
def _harmless() -> tuple[str, ...]:
    return tuple(builtin_list("harmless.txt"))


@cache
def _intensifiers() -> frozenset[str]:
    return frozenset(builtin_list("intensifiers.txt"))


@cache
def _acronyms() -> frozenset[str]:
    return frozenset(builtin_list("acronyms.txt"))


def profanity_list(extra: Iterable[str] = (), removed: Iterable[str] = ()) -> WordList:
    """The built-in swear words and insults plus ``extra``, less ``removed`` (the user's word
    file, see ``load_word_file``); none counts inside a harmless phrase ("junk mail")."""
    gone = set(word_entries(removed))
    return WordList([w for w in (*_builtin_profanity(), *word_entries(extra)) if w not in gone],
                    _harmless())


@cache
def _default_profanity() -> WordList:
    return profanity_list()


# --- signals: small pure functions ------------------------------------------------------------

def shouting(words: Sequence[str], acronyms: frozenset[str] | None = None) -> tuple[float, int]:
    """(share, count) of words written in capitals, out of all words.

    Capitals are shouting only in words of four letters or more that are not known acronyms
    (API, UI, CSS, JSON, HTTPS), so technical talk is not mistaken for anger.
    """
    if acronyms is None:
        acronyms = _acronyms()
    count = 0
    for word in filter(str.isupper, words):  # few words are: filter them in C first
        if len(word) >= 4 and word.lower() not in acronyms:
            count += 1
    return (count / len(words) if words else 0.0), count


def punctuation_runs(text: str) -> dict[str, int]:
    """Runs of two or more ! and ? ('!!!', '?!'), each with how often it occurs."""
    if "!!" not in text and "??" not in text and "!?" not in text and "?!" not in text:
        return {}
    return dict(Counter(_RUN.findall(text)))


def profanity_hits(text: Text | str, words: WordList | None = None) -> list[str]:
    """Swear words and insults of ``words`` (default: the built-in list), plus masked ones
    such as 'f***' or 'sh*t'."""
    text = as_text(text)
    found = (words or _default_profanity()).hits(text)
    if "*" in text.original or "@" in text.original:
        found += _MASKED.findall(text.lower)
    return found


def intensifier_hits(text: Text | str) -> list[str]:
    """Intensifiers ('absolutely', 'completely'): they turn up a negative post."""
    intensifiers, text = _intensifiers(), as_text(text)
    if intensifiers.isdisjoint(text.word_set):
        return []
    return [w for w in text.lower_words if w in intensifiers]


@dataclass(frozen=True, slots=True)
class Cue:
    """A phrase pattern worth ``weight`` to a signal; tried only when an anchor word occurs,
    and then only when the text holds ``lead``, the literal text every match starts with (a
    substring test is much cheaper than starting a regex search)."""

    weight: float
    anchors: frozenset[str]
    pattern: LazyRegex
    lead: str = ""


def _cue(weight: float, lead: str, rest: str = "", anchors: str = "") -> Cue:
    """A cue matching ``lead`` (plain words), then the pattern ``rest``, as whole words.

    The pattern starts with the literal lead, so the regex engine finds candidates by a fast
    substring search instead of trying every position (the left word boundary is checked by
    a lookbehind placed after the lead). ``anchors``: the words that must occur for the cue
    to be tried; by default the lead's first word.
    """
    literal = re.escape(lead)
    pattern = LazyRegex(f"{literal}(?<!\\w{literal}){rest}(?!\\w)")
    return Cue(weight, frozenset(anchors.split() or lead.split()[:1]), pattern, lead)


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
        self.always = tuple(i for i, cue in enumerate(self.cues) if not cue.anchors)

    def hits(self, text: Text) -> list[Hit]:
        """Each phrase matched, with its cue's weight; a match overlapping an earlier one is
        the same words said once ('i am cancelling my subscription' counts once)."""
        present = self.anchors.intersection(text.word_set)
        if not present:
            if not self.always:
                return []
            wanted: Iterable[int] = self.always
        elif len(present) == 1 and not self.always:  # the usual case: one sorted tuple
            wanted = self.index[next(iter(present))]
        else:
            chosen = set(self.always)
            for anchor in present:
                chosen.update(self.index[anchor])
            wanted = sorted(chosen)
        lower = text.lower
        found: dict[str, float] = {}
        taken: list[tuple[int, int]] = []
        for i in wanted:
            cue = self.cues[i]
            if cue.lead not in lower:
                continue
            for match in cue.pattern.finditer(lower):
                start, end = match.span()
                if any(start < e and s < end for s, e in taken):
                    continue
                if self.negatable and _NEGATED.search(lower, max(0, start - 30), start):
                    continue
                taken.append((start, end))
                found.setdefault(" ".join(match.group().split()), cue.weight)
        return list(found.items())


BLAME = CueSet(BLAME_CUES)
CHANGE = CueSet(CHANGE_CUES)
CHURN = CueSet(CHURN_CUES, negatable=True)


def second_person_blame(text: Text | str) -> list[str]:
    """Blame aimed at 'you': 'you ruined', 'you people', 'shame on you', 'nobody asked for this'."""
    return [phrase for phrase, _ in BLAME.hits(as_text(text))]


def change_talk(text: Text | str, cues: CueSet = CHANGE) -> list[Hit]:
    """Talk of a change: redesign, new layout/UI/editor, update, removed or moved features,
    'bring back', 'the old version', 'used to be able to', 'since the update'; pass
    ``change_cues(event_terms)`` to count the configured launch keywords too."""
    return cues.hits(as_text(text))


def churn_intent(text: Text | str) -> list[Hit]:
    """Intent to leave: cancel, unsubscribe, delete my account, refund, switching to, 'I'm done'."""
    return CHURN.hits(as_text(text))


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
        first = WORD.findall(words[0])
        anchors = frozenset(first[:1]) if first and not words[0].endswith("*") else frozenset()
        pattern = LazyRegex(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)")
        # every match starts with the first word (less its wildcard), as written
        cues.append(Cue(0.5, anchors, pattern, words[0].removesuffix("*")))
    return CueSet((*cues, *CHANGE_CUES))

