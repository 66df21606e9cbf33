"""The rule engine: whole-word matching, thresholds, all/any/not, severity and reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from conftest import REPO

from monitor.config import load
from monitor.model import Post, Score
from monitor.rules import RuleSet, compile_rules
from monitor.scoring import MAX_SCORED_CHARS, score_post, score_text

NEUTRAL = Score(compound=0.0, pos=0.0, neu=1.0, neg=0.0)
ANGRY = Score(compound=-0.9, pos=0.0, neu=0.5, neg=0.5)


def rules(text: str) -> RuleSet:
    return RuleSet(tuple(compile_rules(yaml.safe_load(text)["rules"], "test.yaml")))


def post(text: str, title: str | None = None, **more: object) -> Post:
    return Post(source="s", external_id="1", url="https://example.com/1", author="a",
                title=title, text=text, published_at=datetime(2026, 11, 1, tzinfo=UTC),
                **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("redesign", "The REDESIGN is bad", True),
    ("redesign", "They redesigned it", False),           # whole words only
    ("redesign*", "They redesigned it", True),           # unless a wildcard says otherwise
    ("old", "a bold move", False),
    ("new layout", "the new\n  layout hides it", True),  # any whitespace inside a phrase
    ("new layout", "the newlayout", False),
    ("bring back the old*", "Please bring back the oldschool look", True),
    ("c++", "I use C++ daily", True),                     # regex characters are literal
    ("e-mail", "my email is", False),
])
def test_words_match_whole_words(term: str, text: str, hit: bool) -> None:
    ruleset = rules(f"rules:\n  - {{id: r, when: {{words: [{term!r}]}}}}\n")
    assert (ruleset.evaluate(post(text), NEUTRAL) is not None) is hit


def test_thresholds_are_inclusive_and_explained() -> None:
    ruleset = rules("rules:\n  - {id: neg, when: {compound: {max: -0.5}}}\n")
    assert ruleset.evaluate(post("x"), Score(-0.49, 0, 1, 0)) is None
    flag = ruleset.evaluate(post("x"), Score(-0.5, 0, 1, 0))
    assert flag is not None and flag.reasons == ("neg: compound -0.50 (at most -0.50)",)


def test_all_any_not() -> None:
    ruleset = rules("""
rules:
  - id: combo
    when:
      all:
        - any: [{words: [redesign]}, {regex: "new (ui|layout)"}]
        - not: {words: [love]}
        - neg: {min: 0.3}
""")
    assert ruleset.evaluate(post("the new UI again"), ANGRY).reasons == (
        "combo: says 'new UI'; neg +0.50 (at least +0.30)",)
    assert ruleset.evaluate(post("I love the redesign"), ANGRY) is None
    assert ruleset.evaluate(post("the redesign"), NEUTRAL) is None


def test_highest_severity_wins_and_every_reason_is_kept() -> None:
    ruleset = rules("""
rules:
  - {id: low-one, severity: low, category: chatter, tags: [a], when: {words: [editor]}}
  - {id: high-one, severity: high, category: backlash, tags: [b, a], when: {words: [hate]}}
  - {id: other, severity: critical, when: {words: [lawsuit]}}
""")
    flag = ruleset.evaluate(post("I hate the editor"), NEUTRAL)
    assert flag is not None
    assert (flag.severity, flag.category, flag.rules, flag.tags) == (
        "high", "backlash", ("low-one", "high-one"), ("a", "b"))
    assert flag.reasons == ("low-one: mentions 'editor'", "high-one: mentions 'hate'")


def test_title_counts_for_matching() -> None:
    ruleset = rules("rules:\n  - {id: r, when: {words: [redesign]}}\n")
    assert ruleset.evaluate(post("it is bad", title="About the redesign"), NEUTRAL)


def test_truncated_scoring_is_said_in_the_flag() -> None:
    ruleset = rules("rules:\n  - {id: r, when: {words: [awful]}}\n")
    huge = "awful " + "😀 but " * 200_000
    score = score_text(None, huge)
    assert score.truncated
    flag = ruleset.evaluate(post(huge), score)
    assert flag is not None and "only the first part" in flag.reasons[-1]
    assert not score_text(None, "x" * (MAX_SCORED_CHARS - 1)).truncated


def test_a_reply_is_scored_on_its_own_words() -> None:
    reply = post("This is shameful and greedy.", title="Great news: free plan",
                 parent_id="thread-1")
    alone = score_text(None, reply.text)
    assert score_post(reply) == alone
    top = post(reply.text, title=reply.title)
    assert score_post(top) == score_text(reply.title, reply.text) != alone


def test_shipped_backlash_pack_flags_angry_change_talk() -> None:
    ruleset = load(REPO / "config.yaml").rules
    angry = post("This redesign is terrible. I hate the new layout, bring back the old one!")
    flag = ruleset.evaluate(angry, score_text(None, angry.text))
    assert flag is not None and flag.severity == "critical" and flag.category == "backlash"
    assert any("mentions 'redesign'" in r for r in flag.reasons)
    calm = post("Love the new layout, great work")
    assert ruleset.evaluate(calm, score_text(None, calm.text)) is None
    polite = post("Could you bring back the old editor please?")
    polite_flag = ruleset.evaluate(polite, score_text(None, polite.text))
    assert polite_flag is not None and polite_flag.severity == "medium"


def test_demo_ships_the_same_backlash_pack() -> None:
    """The demo bundles a copy of rules/backlash.yaml (config folders are not in the wheel)."""
    from importlib.resources import files

    bundled = (files("monitor.demo") / "rules" / "backlash.yaml").read_text()
    assert bundled == (REPO / "rules" / "backlash.yaml").read_text()


def test_a_reply_says_when_only_its_thread_title_matched() -> None:
    ruleset = rules("rules:\n  - {id: r, when: {words: [new editor, hate]}}\n")
    reply = post("I hate it", title="Meet the new editor", parent_id="t1")
    flag = ruleset.evaluate(reply, NEUTRAL)
    assert flag is not None
    assert flag.reasons == ("r: mentions 'hate'; thread title mentions 'new editor'",)
    regex = rules("rules:\n  - {id: x, when: {regex: 'new \\w+'}}\n")
    assert regex.evaluate(post("fine", title="the new editor", parent_id="t1"),
                          NEUTRAL).reasons == ("x: thread title says 'new editor'",)
