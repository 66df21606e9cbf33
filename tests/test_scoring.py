"""The scorer: VADER's numbers (our linear-time VADER against vaderSentiment), each signal
function, the angry verdict, language marking, bounds on hostile input, and the word files.

The VADER comparison reads the VADER paper corpora from shared/data beside the repository
(skipped, with the reason, when they are not there).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.model import Post
from monitor.scoring import Scorer, load_word_file, score_post, score_text
from monitor.scoring.detect import language_of, plainly_english
from monitor.scoring.lexicons import saturate
from monitor.scoring.scorer import MAX_SCORED_CHARS, MAX_SENTENCES
from monitor.scoring.signals import (
    change_cues,
    change_talk,
    churn_intent,
    intensifier_hits,
    profanity_hits,
    punctuation_runs,
    second_person_blame,
    shouting,
)
from monitor.scoring.vader import vader
from monitor.scoring.words import Text, WordList

VADER_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "vader_groundtruth"
CORPORA = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")

POLITE_THEN_FURIOUS = (
    "I have used this app every day for six years and I still recommend it to friends. "
    "The support team has always been kind and helpful, and I love the new dark mode. "
    "Thank you for listening to feedback over the years, it really shows. "
    "But this new editor is an absolute disaster and you ruined the one thing that worked. "
    "I am furious. "
    "Anyway, keep up the good work on the mobile app, it is great.")
GERMAN = ("Das neue Update ist eine absolute Katastrophe, ich finde nichts mehr und alles ist "
          "viel langsamer als vorher. Bitte bringt die alte Version zurück!")
FRENCH = ("La nouvelle mise à jour est une catastrophe, je ne trouve plus rien et tout est "
          "beaucoup plus lent qu'avant. Je vais résilier mon abonnement.")


@pytest.fixture(scope="module")
def plain() -> Scorer:
    """The hand signals alone (no trained model), so these tests hold with or without it."""
    return Scorer(anger_model=False)


@pytest.fixture(scope="module")
def full() -> Scorer:
    return Scorer()


def post(text: str, title: str | None = None, parent_id: str | None = None) -> Post:
    return Post("src", "1", "https://example.invalid/1", "someone", title, text,
                datetime(2024, 5, 1, tzinfo=UTC), thread_id="t", parent_id=parent_id)


# --- our VADER is VADER -----------------------------------------------------------------------

TRICKY = [
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "good but bad but good but bad, not bad at all but never so good",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", "Today SUX!", "Not bad at all",
    "Sentiment analysis has never been this good!", "Without a doubt, excellent idea.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "At least it isn't a horrible book.", "The book was only kind of good.",
    "yeah right, that is the shit and the bomb, a kiss of death", "no good, no or nor bad",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁", "😡😡😡 worst 🔥update🔥 ever 💩!!",
    "Make sure you :) or :D today??? ", "", "   ", "!!!", "but", "BUT BUT but but good",
    "😀start", "a😀b 😀 😀😀", "\uffff marker 😀 in the text",
]


def test_our_vader_gives_vaders_numbers_on_tricky_text() -> None:
    raw, ours = SentimentIntensityAnalyzer(), vader()
    for text in TRICKY:
        assert ours.polarity_scores(text) == raw.polarity_scores(text), text


def test_our_vader_gives_vaders_numbers_on_every_text_of_the_vader_corpora() -> None:
    if not VADER_DATA.is_dir():
        pytest.skip(f"VADER corpora not found at {VADER_DATA}")
    raw, ours = SentimentIntensityAnalyzer(), vader()
    texts = [line.split("\t")[2] for name in CORPORA
             for line in (VADER_DATA / f"{name}_GroundTruth.txt").read_text(
                 encoding="utf-8", errors="replace").splitlines() if line.count("\t") >= 2]
    assert len(texts) > 20_000
    differ = [t for t in texts if ours.polarity_scores(t) != raw.polarity_scores(t)]
    assert differ == []


def test_sentences_split_at_ends_and_lines_and_long_ones_are_cut() -> None:
    v = vader()
    tokens = v.tokens("Title line\nFirst one, e.g. this. Second!! Third? (fourth.) last")
    spans = v.sentences(tokens, 500)
    assert [" ".join(tokens.raw[a:b]) for a, b in spans] == [
        "Title line", "First one, e.g. this.", "Second!!", "Third?", "(fourth.)", "last"]
    long = v.tokens("word " * 300)
    parts = v.sentences(long, 500)
    assert len(parts) > 2 and all(len(" ".join(long.raw[a:b])) <= 500 for a, b in parts)
    assert v.sentences(v.tokens(""), 500) == []


# --- signals ----------------------------------------------------------------------------------

def test_shouting_counts_words_in_capitals_but_not_acronyms() -> None:
    share, count = shouting(Text.of("THIS UPDATE IS TERRIBLE and I HATE it").words)
    assert count == 4 and share == pytest.approx(4 / 8)  # IS and I are too short to shout
    assert shouting(Text.of("The JSON API over HTTPS breaks the UI and CSS in IE").words) \
        == (0.0, 0)
    assert shouting([]) == (0.0, 0)


def test_punctuation_runs() -> None:
    assert punctuation_runs("Why?! Why!!! Why!!! ok! fine?") == {"?!": 1, "!!!": 2}
    assert punctuation_runs("Fine. Really? Yes!") == {}


def test_profanity_hits_words_phrases_wildcards_and_masked() -> None:
    assert profanity_hits("This fucking update is crap, a total dumpster fire") == [
        "fucking", "crap", "dumpster fire"]
    assert profanity_hits("What the f*** is this sh*t") == ["f***", "sh*t"]
    assert profanity_hits("Hello there, I think it is fine. F# is nice.") == []
    words = WordList(["darn*", "oh snap", "rip-off"])
    assert profanity_hits("Darnit, oh   snap, darn, a RIP-OFF", words) == [
        "darnit", "darn", "oh snap", "rip-off"]


def test_harmless_phrases_are_not_profanity() -> None:
    assert profanity_hits("Garbage collection pauses, and the trash can is full") == []
    assert profanity_hits("Damn good update, but the editor is garbage") == ["garbage"]


def test_intensifiers() -> None:
    assert intensifier_hits("Absolutely useless and completely broken") == [
        "absolutely", "completely"]
    assert intensifier_hits("It works") == []


def test_second_person_blame() -> None:
    assert second_person_blame("You ruined it. You people never listen!") == [
        "you ruined", "you people"]
    assert second_person_blame("Shame on you. Nobody asked for this.") == [
        "shame on you", "nobody asked for this"]
    assert second_person_blame("Thank you guys, you rock") == []
    assert second_person_blame("The bayou ruined my shoes") == []


def test_change_talk_and_its_weights() -> None:
    hits = dict(change_talk("Since the update I can't find anything. Bring the old layout "
                            "back, I used to be able to export."))
    assert hits == {"since the update": 0.5, "can't find": 0.25,
                    "bring the old layout back": 0.5, "used to be able to": 0.5}
    assert dict(change_talk("The redesign moved the new editor")) == {
        "redesign": 0.5, "new editor": 0.5, "moved": 0.25}
    assert change_talk("Great food and a nice view") == []


def test_event_terms_count_as_change_talk() -> None:
    cues = change_cues(["Editor 2.0", "nova*"])
    assert dict(change_talk("Editor  2.0 is slow and NovaDesk too", cues)) == {
        "editor 2.0": 0.5, "novadesk": 0.5}
    scorer = Scorer(event_terms=["Project Falcon"], anger_model=False)
    score = scorer.score(None, "I tried project falcon today")
    assert score.change == 0.5 and ("change", "mentions 'project falcon'") in score.evidence
    assert Scorer(anger_model=False).score(None, "I tried project falcon today").change == 0


def test_churn_intent_says_each_intent_once() -> None:
    hits = dict(churn_intent("I am cancelling my subscription and want a refund. Switching to "
                             "Notion. I'm done."))
    assert hits == {"cancelling my subscription": 0.7, "refund": 0.6, "switching to": 0.35,
                    "i'm done": 0.6}
    assert churn_intent("I will never cancel, I love it") == []
    assert churn_intent("I'm not cancelling my subscription, no plans to switch to Notion") == []
    assert churn_intent("I won't renew") == [("won't renew", 0.5)]


def test_saturate_adds_weights_up_to_one() -> None:
    assert saturate([]) == 0.0
    assert saturate([("a", 0.25), ("b", 0.5)]) == 0.75
    assert saturate([("a", 0.7), ("b", 0.6)]) == 1.0


# --- language ---------------------------------------------------------------------------------

def test_language_of_short_english_german_french() -> None:
    assert language_of("ok, thanks") is None                      # too short to tell
    assert language_of("I think this is the best update they have shipped") == "en"
    assert plainly_english("I think this is the best update they have shipped")
    assert not plainly_english(GERMAN)
    assert language_of(GERMAN) == "de"
    assert language_of(FRENCH) == "fr"


def test_a_non_english_post_is_marked_not_scored_as_neutral(plain: Scorer, full: Scorer) -> None:
    for scorer in (plain, full):
        for text, code in ((GERMAN, "de"), (FRENCH, "fr")):
            score = scorer.score(None, text)
            assert score.language == code and not score.sentiment_known
            assert (score.compound, score.pos, score.neu, score.neg) == (0.0, 0.0, 0.0, 0.0)
            assert not score.angry and score.worst_sentence is None
        # Universal cues still count: shouting with '!!!'.
        shouted = scorer.score(None, "DAS IST EINE KATASTROPHE, IHR HABT ALLES KAPUTT GEMACHT!!!")
        assert shouted.language == "de" and shouted.angry and shouted.anger >= 0.5


# --- the verdict ------------------------------------------------------------------------------

def test_a_polite_post_with_one_furious_paragraph_is_angry(plain: Scorer, full: Scorer) -> None:
    for scorer in (plain, full):
        score = scorer.score(None, POLITE_THEN_FURIOUS)
        assert score.compound > 0  # the whole reads positive ...
        assert score.angry and score.anger >= 0.5  # ... but one paragraph is furious
        assert score.worst_sentence is not None and "absolute disaster" in score.worst_sentence
        assert any(p.startswith("most negative sentence -0.") for _, p in score.evidence)


def test_calm_and_polite_posts_are_not_angry(plain: Scorer, full: Scorer) -> None:
    for scorer in (plain, full):
        for text in ("Love the new layout, great work",
                     "Could you bring back the old editor please? Thanks!",
                     "How do I export my notes to PDF?"):
            score = scorer.score(None, text)
            assert not score.angry and score.anger < 0.5, text


def test_anger_is_at_least_half_exactly_when_angry(plain: Scorer, full: Scorer) -> None:
    texts = ["This is FUCKING GARBAGE, you ruined it!!!", "meh", "I hate this so much",
             "Terrible, awful, the worst company ever", "nice", POLITE_THEN_FURIOUS,
             "Your stupid update broke my workflow", "WHY WOULD YOU DO THIS TO US"]
    for scorer in (plain, full):
        for score in scorer.score_many([(None, t) for t in texts]):
            assert 0.0 <= score.anger <= 1.0
            assert (score.anger >= 0.5) == score.angry


def test_evidence_reads_as_phrases(plain: Scorer) -> None:
    score = plain.score("Editor", "WHY DID THEY BREAK THIS EDITOR!!! Really!!! You ruined the "
                        "new editor, I will cancel my subscription.")
    evidence = set(score.evidence)
    assert {("anger", "4 words in capitals"), ("anger", "'!!!' twice"),
            ("anger", "says 'you ruined'"), ("change", "mentions 'new editor'"),
            ("churn", "says 'cancel my subscription'")} <= evidence
    assert score.angry and score.change >= 0.5 and score.churn >= 0.7


def test_score_many_is_score_one_by_one(full: Scorer) -> None:
    pairs = [(None, "I hate it"), ("Title", "Great stuff"), (None, POLITE_THEN_FURIOUS),
             (None, GERMAN), (None, "")]
    assert full.score_many(pairs) == [full.score(t, x) for t, x in pairs]


# --- posts, replies, word files ---------------------------------------------------------------

def test_a_reply_is_scored_on_its_own_words() -> None:
    reply = post("This is shameful and greedy.", title="Great news: free plan",
                 parent_id="thread-1")
    assert score_post(reply) == score_text(None, reply.text)
    opener = post(reply.text, title=reply.title)
    assert score_post(opener) == score_text(reply.title, reply.text) != score_post(reply)
    assert Scorer(anger_model=False).score_posts([reply, opener]) == [
        Scorer(anger_model=False).score_post(reply), Scorer(anger_model=False).score_post(opener)]


def test_word_file_adds_and_removes_words(tmp_path: Path) -> None:
    path = tmp_path / "profanity.txt"
    path.write_text("# our own words\nbananas   # an insult here\n-crap\nfrak*\n\n- damn \n",
                    encoding="utf-8")
    added, removed = load_word_file(path)
    assert added == ["bananas", "frak*"] and removed == ["crap", "damn"]
    assert load_word_file(tmp_path / "missing.txt") == ([], [])
    scorer = Scorer(added, removed, anger_model=False)
    assert profanity_hits("bananas, crap, damn, frakking", scorer.profanity) == [
        "bananas", "frakking"]
    assert profanity_hits("bananas, crap, damn") == ["crap", "damn"]  # built-in list unchanged


# --- bounds -----------------------------------------------------------------------------------

def test_truncated_when_the_text_is_cut(plain: Scorer) -> None:
    assert not plain.score(None, "x" * (MAX_SCORED_CHARS - 1)).truncated
    assert plain.score(None, "x" * (MAX_SCORED_CHARS + 1)).truncated
    # Within the length, but more negative sentences than are scored one by one:
    many = "Bad. " * (MAX_SENTENCES + 50)
    assert len(many) < MAX_SCORED_CHARS and plain.score(None, many).truncated


@pytest.mark.parametrize("body", ["😡🔥💩" * 90_000, "but " * 262_144, "good but bad!!! " * 65_536,
                                  "a" * 1_048_576], ids=["emoji", "but", "good-but-bad", "word"])
def test_a_megabyte_post_scores_quickly(full: Scorer, body: str) -> None:
    start = time.perf_counter()
    score = full.score("A title", body)
    assert time.perf_counter() - start < 2.0  # a guard only: bench/score.py has the figures
    assert score.truncated
