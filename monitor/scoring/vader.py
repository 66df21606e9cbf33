"""VADER's numbers, computed faster, and per sentence from one tokenization.

vaderSentiment's ``polarity_scores`` is quadratic: it lowercases the whole word list again for
every sentiment word, and its "but" rule looks every value up with ``list.index``. On a long or
emoji-heavy post that has taken tens of seconds. This module reimplements the same algorithm
(vaderSentiment 3.3.2: the same lexicons, constants and rules, including the quirks of its "but"
rule) in linear time, so the compound, pos, neu and neg it returns are VADER's own;
``tests/test_scoring.py`` and ``bench/score.py`` check that on the VADER paper corpora.

It also splits the tokens into sentences, so each sentence can be scored as VADER would score
it alone without splitting and tokenizing the text a second time.

Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text. ICWSM-14. (vaderSentiment is MIT licensed.)
"""

from __future__ import annotations

import math
import string
from bisect import insort
from dataclasses import dataclass
from functools import cache
from itertools import compress

from vaderSentiment import vaderSentiment as _vs

N_SCALAR = _vs.N_SCALAR
C_INCR = _vs.C_INCR
BOOSTER = dict(_vs.BOOSTER_DICT)
SPECIAL_CASES = dict(_vs.SPECIAL_CASES)
NEGATE = frozenset(_vs.NEGATE)
_SO_THIS = ("so", "this")
# A phrase rule can only match when one of its words is near: skip the string building otherwise.
_PHRASE_WORDS = frozenset(w for key in (*SPECIAL_CASES, *(b for b in BOOSTER if " " in b))
                          for w in key.split())
_PUNCT = string.punctuation
_GLUE = "\uffff"  # a noncharacter: marks where an emoji's name was put, until spaced
_CLOSERS = frozenset(".!?…\"')]}»”’")
_ABBREVIATIONS = frozenset(("mr.", "mrs.", "ms.", "dr.", "vs.", "etc.", "e.g.", "i.e.", "st.",
                            "jr.", "sr.", "prof.", "approx.", "inc.", "ltd.", "co.", "fig."))

_NO_LINE_ENDS: frozenset[int] = frozenset()

Numbers = tuple[float, float, float, float]
"""(compound, pos, neu, neg), rounded as VADER rounds them (4, 3, 3, 3 decimals)."""


def _ends_sentence(raw: str) -> bool:
    """A token closing a sentence: ends in . ! ? (before closing quotes), not 'e.g.' or 'Mr.'."""
    core = raw.rstrip("\"')]}»”’")
    if not core or core[-1] not in ".!?…":
        return False
    return core[-1] != "." or core.lower() not in _ABBREVIATIONS


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build
class Tokens:
    """A text as VADER sees it: emoji replaced by their names, split on whitespace."""

    text: str                 # the text after emoji replacement (what VADER counts ! and ? in)
    raw: list[str]            # whitespace tokens, punctuation kept
    words: list[str]          # VADER's tokens: leading/trailing punctuation stripped
    lower: list[str]
    upper: list[bool]         # token.isupper(), for VADER's ALL-CAPS emphasis
    line_ends: frozenset[int]  # token indexes that end a line (a paragraph or title break)


class Vader:
    """VADER with its lexicons loaded once. Not thread-unsafe: it keeps no per-call state."""

    def __init__(self) -> None:
        analyzer = _vs.SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = analyzer.lexicon
        # VADER looks emoji up one character at a time, so only one-character keys ever match.
        self.emojis: dict[str, str] = {k: v for k, v in analyzer.emojis.items() if len(k) == 1}
        self._emoji_chars = frozenset(self.emojis)
        self._emoji_table = {ord(k): _GLUE + v for k, v in self.emojis.items()}

    # --- tokens ------------------------------------------------------------------------------
    def _replace_emoji(self, text: str) -> str:
        """Emoji become their names, spaced as vaderSentiment spaces them: a space before a
        name unless it starts the text or follows a space (so two emoji are two words)."""
        if text.isascii() or self._emoji_chars.isdisjoint(text):
            return text
        if _GLUE in text:  # cannot mark the names: vaderSentiment's own character loop
            return self._replace_emoji_slowly(text)
        marked = text.translate(self._emoji_table)
        if marked.startswith(_GLUE):
            marked = marked[1:]
        return marked.replace(" " + _GLUE, " ").replace(_GLUE, " ")

    def _replace_emoji_slowly(self, text: str) -> str:
        out, prev_space = [], True
        for char in text:
            name = self.emojis.get(char)
            if name is None:
                out.append(char)
                prev_space = char == " "
            else:
                out.append(name if prev_space else " " + name)
                prev_space = False
        return "".join(out)

    def tokens(self, text: str) -> Tokens:
        """Tokenize once; the whole text and each sentence are scored from these tokens."""
        replaced = self._replace_emoji(text).strip()
        raw: list[str] = []
        line_ends = set()
        if "\n" in replaced:
            for line in replaced.split("\n"):
                part = line.split()
                if part:
                    raw += part
                    line_ends.add(len(raw) - 1)
        else:
            raw = replaced.split()
        # VADER's _strip_punc_if_word, without a Python call per token.
        words = [s if len(s := t.strip(_PUNCT)) > 2 else t for t in raw]  # one pass
        return Tokens(replaced, raw, words, list(map(str.lower, words)),
                      list(map(str.isupper, words)),
                      frozenset(line_ends) if line_ends else _NO_LINE_ENDS)

    def sentences(self, tokens: Tokens, max_chars: int) -> list[tuple[int, int]]:
        """(start, end) token spans of the sentences; one longer than max_chars is cut in parts.

        A sentence ends at . ! ? or a line break; a part never holds more than ``max_chars``
        characters (but always at least one token), so no single span is expensive to score.
        """
        raw = tokens.raw
        if not raw:
            return []
        ends = {i for i, t in enumerate(raw) if t[-1] in _CLOSERS and _ends_sentence(t)}
        ends |= tokens.line_ends
        if len(tokens.text) <= max_chars:
            cuts = sorted(i + 1 for i in ends)
            if not cuts or cuts[-1] != len(raw):
                cuts.append(len(raw))
            return list(zip([0, *cuts[:-1]], cuts, strict=True))
        spans: list[tuple[int, int]] = []
        start, size = 0, 0
        for i, token in enumerate(raw):
            if size and size + len(token) + 1 > max_chars:
                spans.append((start, i))
                start, size = i, 0
            size += len(token) + 1
            if i in ends:
                spans.append((start, i + 1))
                start, size = i + 1, 0
        if start < len(raw):
            spans.append((start, len(raw)))
        return spans

    # --- scores -------------------------------------------------------------------------------
    def polarity_scores(self, text: str) -> dict[str, float]:
        """The same dict as vaderSentiment's ``polarity_scores``, in linear time."""
        compound, pos, neu, neg = self.score_span(self.tokens(text))
        return {"neg": neg, "neu": neu, "pos": pos, "compound": compound}

    def score_span(self, tokens: Tokens, start: int = 0, end: int | None = None) -> Numbers:
        """VADER's numbers for tokens[start:end], as if that span were the whole text."""
        sentiments, text = self._span(tokens, start, end)
        return _score_valence(sentiments, text)

    def analyze(self, tokens: Tokens, negatives: bool = True) -> tuple[Numbers, list[int]]:
        """The whole text's numbers, and the tokens it found negative (where a negative
        sentence can be: a sentence alone is negative only where its words are); with
        ``negatives`` False, no tokens (a caller that scores no sentences need not look)."""
        sentiments, text = self._span(tokens, 0, None)
        if not negatives or not any(sentiments):  # a short text often has no sentiment word
            return _score_valence(sentiments, text), []
        return _score_valence(sentiments, text), [i for i, s in enumerate(sentiments) if s < 0]

    def compound_span(self, tokens: Tokens, start: int = 0, end: int | None = None) -> float:
        """VADER's compound alone for tokens[start:end] (a sentence), as if it were the text."""
        sentiments, text = self._span(tokens, start, end)
        if not any(sentiments):
            return 0.0
        return round(_compound(float(sum(sentiments)), _punctuation(text)), 4)

    def _span(self, tokens: Tokens, start: int, end: int | None) -> tuple[list[float], str]:
        if end is None:
            end = len(tokens.raw)
        if start == 0 and end == len(tokens.raw):
            text, words, lower, upper = tokens.text, tokens.words, tokens.lower, tokens.upper
        else:
            text = " ".join(tokens.raw[start:end])
            words, lower, upper = (tokens.words[start:end], tokens.lower[start:end],
                                   tokens.upper[start:end])
        caps = sum(upper)
        sentiments = self._valences(words, lower, 0 < len(words) - caps < len(words))
        if "but" in lower:
            _but_check(lower.index("but"), sentiments)
        return sentiments, text

    def _valences(self, words: list[str], lower: list[str], cap_diff: bool) -> list[float]:
        """One valence per token, as vaderSentiment's loop over ``sentiment_valence``."""
        lexicon = self.lexicon
        n = len(lower)
        sentiments = [0.0] * n
        if lexicon.keys().isdisjoint(lower):  # one pass in C: most tokens are not in it
            return sentiments
        for i in compress(range(n), map(lexicon.__contains__, lower)):
            word = lower[i]
            if word in BOOSTER or (word == "kind" and i < n - 1 and lower[i + 1] == "of"):
                continue
            sentiments[i] = self._valence(i, lexicon[word], words, lower, cap_diff)
        return sentiments

    def _valence(self, i: int, valence: float, words: list[str], lower: list[str],
                 cap_diff: bool) -> float:
        lexicon = self.lexicon
        n = len(lower)
        word = lower[i]
        if word == "no" and i != n - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (i > 0 and lower[i - 1] == "no") or (i > 1 and lower[i - 2] == "no") or (
                i > 2 and lower[i - 3] == "no" and lower[i - 1] in ("or", "nor")):
            valence = lexicon[word] * N_SCALAR
        if cap_diff and words[i].isupper():
            valence = valence + C_INCR if valence > 0 else valence - C_INCR
        # The (up to) three tokens before, nearest first, with vaderSentiment's negation
        # check written out (a word in NEGATE or with "n't"): this runs per sentiment word.
        for start_i in range(i if i < 3 else 3):
            prior = lower[i - start_i - 1]
            if prior in lexicon:
                continue
            scalar = 0.0
            boost = BOOSTER.get(prior)
            if boost is not None:
                scalar = boost
                if valence < 0:
                    scalar *= -1
                if cap_diff and words[i - start_i - 1].isupper():
                    scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
                if start_i == 1 and scalar != 0:
                    scalar = scalar * 0.95
                if start_i == 2 and scalar != 0:
                    scalar = scalar * 0.9
            valence = valence + scalar
            if start_i == 0:
                if prior in NEGATE or "n't" in prior:
                    valence = valence * N_SCALAR
            elif start_i == 1:
                if prior == "never" and lower[i - 1] in _SO_THIS:
                    valence = valence * 1.25
                elif prior == "without" and lower[i - 1] == "doubt":
                    pass
                elif prior in NEGATE or "n't" in prior:
                    valence = valence * N_SCALAR
            else:
                if (prior == "never" and lower[i - 2] in _SO_THIS) or lower[i - 1] in _SO_THIS:
                    valence = valence * 1.25
                elif prior == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
                    pass
                elif prior in NEGATE or "n't" in prior:
                    valence = valence * N_SCALAR
                valence = _idioms_check(valence, lower, i)
        if i > 0 and lower[i - 1] == "least" and "least" not in lexicon:
            if i > 1:
                if lower[i - 2] != "at" and lower[i - 2] != "very":
                    valence = valence * N_SCALAR
            else:
                valence = valence * N_SCALAR
        return valence


def _idioms_check(valence: float, lower: list[str], i: int) -> float:
    """VADER's special-case phrases ("the shit", "kiss of death") and two-word boosters."""
    n = len(lower)
    near = lower[i - 3:i + 3]
    if _PHRASE_WORDS.isdisjoint(near):
        return valence
    w3, w2, w1, w0 = lower[i - 3], lower[i - 2], lower[i - 1], lower[i]
    onezero, twoonezero, twoone = f"{w1} {w0}", f"{w2} {w1} {w0}", f"{w2} {w1}"
    threetwoone, threetwo = f"{w3} {w2} {w1}", f"{w3} {w2}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if n - 1 > i:
        zeroone = f"{w0} {lower[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if n - 1 > i + 1:
        zeroonetwo = f"{w0} {lower[i + 1]} {lower[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER:
            valence = valence + BOOSTER[n_gram]
    return valence


def _but_check(but: int, sentiments: list[float]) -> None:
    """vaderSentiment's "but" rule, quirks included, without its quadratic ``list.index``.

    VADER walks the list and scales the *first* element equal to the current one (halved
    before the first "but", times 1.5 after it), so a repeated value is scaled repeatedly at
    its first position. Here each value's positions are kept sorted to find that first one.
    Zeros are skipped: scaling a zero changes nothing.
    """
    where: dict[float, list[int]] = {}
    for k, value in enumerate(sentiments):
        if value != 0:
            where.setdefault(value, []).append(k)
    for k in range(len(sentiments)):
        value = sentiments[k]
        if value == 0:
            continue
        first = where[value][0]
        if first == but:
            continue
        scaled = value * 0.5 if first < but else value * 1.5
        sentiments[first] = scaled
        del where[value][0]
        if not where[value]:
            del where[value]
        insort(where.setdefault(scaled, []), first)


def _punctuation(text: str) -> float:
    """VADER's emphasis for ! (up to 4) and for more than one ?."""
    questions = text.count("?")
    question_amp = 0 if questions <= 1 else (questions * 0.18 if questions <= 3 else 0.96)
    return min(text.count("!"), 4) * 0.292 + question_amp


def _compound(sum_s: float, punct: float) -> float:
    if sum_s > 0:
        sum_s += punct
    elif sum_s < 0:
        sum_s -= punct
    return max(-1.0, min(1.0, sum_s / math.sqrt(sum_s * sum_s + 15)))


def _score_valence(sentiments: list[float], text: str) -> Numbers:
    """vaderSentiment's ``score_valence``: punctuation emphasis, normalisation, proportions."""
    if not sentiments:
        return 0.0, 0.0, 0.0, 0.0
    if not any(sentiments):  # what the sums below come to when every token is neutral
        return 0.0, 0.0, 1.0, 0.0
    punct = _punctuation(text)
    compound = _compound(float(sum(sentiments)), punct)
    pos_sum, neg_sum = 0.0, 0.0
    nonzero = list(filter(None, sentiments))
    for s in nonzero:  # in VADER's order: the sums are bit-for-bit its own
        if s > 0:
            pos_sum += s + 1
        else:
            neg_sum += s - 1
    neu_count = len(sentiments) - len(nonzero)  # sentiments.count(0)
    if pos_sum > math.fabs(neg_sum):
        pos_sum += punct
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= punct
    total = pos_sum + math.fabs(neg_sum) + neu_count
    return (round(compound, 4), round(math.fabs(pos_sum / total), 3),
            round(math.fabs(neu_count / total), 3), round(math.fabs(neg_sum / total), 3))


@cache
def vader() -> Vader:
    """The process's one Vader (the lexicons take ~0.1 s to load)."""
    return Vader()
