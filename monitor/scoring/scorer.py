"""Text -> Score: VADER's numbers, the hand signals, the language and the trained models, put
together for many posts at once.

A ``Scorer`` is compiled once (word lists, cue patterns, event keywords, models) and scores
many posts: each post becomes a draft (VADER, its worst sentence, its cues), then the models
run once for the whole batch, then each draft is finished into a ``Score`` by
``monitor.scoring.verdict``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from monitor.model import Post, Score
from monitor.scoring.detect import _identifier, language_of
from monitor.scoring.lexicons import (
    Hit,
    Language,
    PhraseList,
    fold,
    folded_letters,
    language,
    saturate,
)
from monitor.scoring.signals import (
    BLAME,
    CHURN,
    change_cues,
    intensifier_hits,
    profanity_hits,
    profanity_list,
    punctuation_runs,
    shouting,
)
from monitor.scoring.vader import Tokens, Vader, vader
from monitor.scoring.verdict import Cues, complaint_signal, evidence, intensity, verdict
from monitor.scoring.words import Text

if TYPE_CHECKING:  # numpy is imported with the models, when first needed
    from monitor.scoring.hashed_dot import Counts
    from monitor.scoring.models import AngerModel

log = logging.getLogger(__name__)

MAX_SCORED_CHARS = 5_000      # of title + text; the same cut as before, so compounds continue
MAX_SENTENCE_CHARS = 500      # a longer sentence is scored in parts
MAX_SENTENCES = 100           # sentences scored per post (only those holding a negative word)
WORST_SENTENCE_MAX = -0.5     # a sentence this negative is reported as the worst sentence
LONG_POST_CHARS = 200         # a post this long is also scored per sentence


@cache
def _anger_model() -> Any:
    """``monitor.scoring.models`` when it and its weights are installed, else None (then the
    verdict comes from the hand signals alone). Imported here, not at the top: numpy is not
    needed until a post is scored with the models."""
    from monitor.scoring import models

    try:
        models.shipped_model()
    except Exception as error:  # a missing or unreadable weights file: say so, go on without
        log.warning("anger model not loaded (%s): the angry verdict uses hand signals only",
                    error)
        return None
    return models


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


class _Features:
    """A batch's n-gram counts per (blocks, texts): the anger model and English's complaint
    model read the same English texts with the same blocks, so they are counted once."""

    def __init__(self, drafts: Sequence[_Draft]) -> None:
        self.drafts = drafts
        self.done: dict[tuple[str, tuple[int, ...]], Counts] = {}

    def __call__(self, model: AngerModel, rows: Sequence[int]) -> Counts:
        """The counts of the drafts ``rows`` for ``model``'s blocks, counted on first ask."""
        key = (model.hashed_dot.blocks_key, tuple(rows))
        if key not in self.done:
            self.done[key] = model.count([self.drafts[i].scored for i in rows])
        return self.done[key]


class Scorer:
    """Every signal, compiled once: word lists, cue patterns, event keywords, the models.

    ``extra_words``/``removed_words`` adjust the built-in profanity and insult list (see
    ``load_word_file`` for ``rules/profanity.txt``); ``event_terms`` are the configured launch
    keywords, counted as change talk. ``anger_model=False`` leaves the trained models out (the
    anger and complaint models: hand signals only). ``learned``: (signal, language) -> (name,
    model) of the models ``monitor learn`` installed, used instead of the shipped ones there;
    each Score's ``model`` names the models that made it (``model_name``).
    """

    def __init__(self, extra_words: Iterable[str] = (), removed_words: Iterable[str] = (),
                 event_terms: Iterable[str] = (), *, anger_model: bool = True,
                 complaint_models: Mapping[str, Any] | None = None,
                 learned: Mapping[tuple[str, str], tuple[str, AngerModel]] | None = None,
                 ) -> None:
        self.complaint_models = dict(complaint_models or {})  # language -> model, for benches
        self.learned = dict(learned or {})
        self.profanity = profanity_list(extra_words, removed_words)
        event_terms = tuple(event_terms)
        self.change_cues = change_cues(event_terms)
        self.launch = PhraseList((0.5, fold(t)) for t in event_terms if t.strip())
        self.vader: Vader = vader()
        self.use_models = anger_model
        self.model = _anger_model() if anger_model else None
        self.threshold: float | None = self._anger()[1].threshold if self.model else None

    # --- public --------------------------------------------------------------------------------
    def preload(self) -> None:
        """Load now what the first posts would load (English's complaint model, the language
        identifier): before forking workers, so they share it instead of each loading its
        own. Another language's data loads when its first post comes: most inputs have none,
        and loading every language first would delay them all."""
        english = language("en")
        if self.use_models and english is not None:
            english.model("complaint")
        _identifier()

    def score(self, title: str | None, text: str) -> Score:
        """Score a post's title and text together."""
        return self.score_many([(title, text)])[0]

    def score_post(self, post: Post) -> Score:
        """Score the author's own words: a reply's title is its thread's, so it is left out."""
        return self.score_posts([post])[0]

    def score_posts(self, posts: Iterable[Post]) -> list[Score]:
        """``score_post`` for many posts at once."""
        return self.score_many((None if p.is_reply else p.title, p.text) for p in posts)

    def score_many(self, pairs: Iterable[tuple[str | None, str]]) -> list[Score]:
        """Scores of many (title, text) pairs, in order. Much faster than one at a time: the
        models are called once for the whole batch."""
        drafts = [self._draft(title, text) for title, text in pairs]
        features = _Features(drafts)
        anger = self._probabilities(drafts, features)
        complaint = self._complaint(drafts, features)
        named = self._anger()[0] if self.model else None
        return [self._finish(d, p, c[:2] if c else None,
                             model_name(c[2] if c else None, named if p is not None else None))
                for d, p, c in zip(drafts, anger, complaint, strict=True)]

    # --- steps ---------------------------------------------------------------------------------
    def _anger(self) -> tuple[str, AngerModel]:
        """(name, model) of the anger model in use: a learned one, else the shipped one."""
        return self.learned.get(("anger", "en")) or ("shipped", self.model.shipped_model())

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
            long = len(scored) >= LONG_POST_CHARS  # only a long post is read per sentence
            numbers, negative = self.vader.analyze(tokens, negatives=long)
            worst = numbers[0]
            if long and negative:
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
        the launch keywords. Every language: capitals, !!!, the listed swear words.

        Most short texts hold no cue: the cue sets are asked directly (no wrapper per
        signal), and the language's lists are looked through once for all (``Language.gate``)."""
        share, shouted = shouting(text.words)
        profanity = profanity_hits(text, self.profanity)
        if pack is None or pack.code == "en":
            change, churn = self.change_cues.hits(text), CHURN.hits(text)
            blame = [phrase for phrase, _ in BLAME.hits(text)]
            intensifiers = intensifier_hits(text)
        else:
            change, churn, blame, intensifiers = [], [], [], []
        complaint: list[Hit] = []
        anger_words: list[str] = []
        if pack is not None:
            folded, words = folded_letters(text)
            original = text.original
            if pack.code != "en":
                change = self.launch.hits(folded, original, words) if self.launch.phrases \
                    else []
            present = pack.gate.present(folded, words)  # one look for all the lists
            if present:
                def listed(phrases: PhraseList) -> list[Hit]:
                    return phrases.hits(folded, original, words, present) \
                        if phrases.phrases else []

                change += [hit for hit in listed(pack.change) if hit not in change]
                churn += listed(pack.churn)
                profanity += [phrase for phrase, _ in listed(pack.profanity)]
                complaint = listed(pack.complaint)
                anger_words = [phrase for phrase, _ in listed(pack.anger_words)]
        return Cues(shouted, share, punctuation_runs(text.original), profanity, intensifiers,
                    blame, change, churn, complaint, anger_words)

    def _probabilities(self, drafts: Sequence[_Draft], features: _Features,
                       ) -> list[float | None]:
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
        model = self._anger()[1]
        texts = [drafts[i].scored for i in english]
        numbers = [dict(zip(("compound", "pos", "neu", "neg"), drafts[i].numbers, strict=True))
                   for i in english]
        found = model.probability(texts, numbers, features(model, english))
        for i, p in zip(english, found, strict=True):
            out[i] = float(p)
        long = [i for i in english if drafts[i].worst_sentence]
        if long:
            sentences = [drafts[i].worst_sentence or "" for i in long]
            numbers = [self.vader.polarity_scores(s) for s in sentences]
            for i, p in zip(long, model.probability(sentences, numbers), strict=True):
                out[i] = max(out[i] or 0.0, float(p))
        return out

    def _complaint(self, drafts: Sequence[_Draft], features: _Features,
                   ) -> list[tuple[float, float, str] | None]:
        """(probability, threshold, model name) of each post's language's complaint model, one
        batch per language; None where the language has no model (or models are off)."""
        out: list[tuple[float, float, str] | None] = [None] * len(drafts)
        if not self.use_models:
            return out
        by_language: dict[str, list[int]] = {}
        for i, d in enumerate(drafts):
            if d.pack is not None:
                by_language.setdefault(d.pack.code, []).append(i)
        for code, rows in by_language.items():
            if ("complaint", code) in self.learned:
                name, model = self.learned[("complaint", code)]
            elif code in self.complaint_models:  # a bench's own
                name, model = "given", self.complaint_models[code]
            else:
                name, model = "shipped", drafts[rows[0]].pack.model("complaint")
            if model is None:
                continue
            found = model.probability([drafts[i].scored for i in rows],
                                      [drafts[i].model_inputs for i in rows],
                                      features(model, rows))
            for i, p in zip(rows, found.tolist(), strict=True):
                out[i] = (p, model.threshold, name)
        return out

    def _finish(self, d: _Draft, probability: float | None,
                complaint_model: tuple[float, float] | None, model: str | None) -> Score:
        compound, pos, neu, neg = d.numbers
        cues, lowest = d.cues, d.lowest
        threshold = self.threshold if probability is not None else None
        complaint = complaint_signal(cues, complaint_model)
        angry = verdict(d.known, lowest, cues, probability, threshold, complaint)
        intensifiers = cues.intensifiers if lowest <= -0.3 else ()
        anger = intensity(lowest, cues, intensifiers, probability, threshold, angry)
        model_said = probability if threshold is not None and probability is not None \
            and probability >= threshold else None
        return Score(
            compound=compound, pos=pos, neu=neu, neg=neg, truncated=d.truncated, anger=anger,
            change=round(saturate(cues.change), 3) if cues.change else 0.0,
            churn=round(saturate(cues.churn), 3) if cues.churn else 0.0, angry=angry,
            complaint=complaint, language=d.language, worst_sentence=d.worst_sentence,
            evidence=evidence(cues, intensifiers, d.worst if d.worst_sentence else None,
                              model_said, complaint, complaint_model), model=model)


def model_name(complaint: str | None, anger: str | None) -> str | None:
    """What a Score's ``model`` says: the one name when every model that read the post has it
    ("shipped", "learned:3"), else each signal's ("complaint:learned:3,anger:shipped"); None
    when no model read it."""
    used = {signal: name for signal, name in (("complaint", complaint), ("anger", anger))
            if name is not None}
    if len(set(used.values())) <= 1:
        return next(iter(used.values()), None)
    return ",".join(f"{signal}:{name}" for signal, name in used.items())


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
