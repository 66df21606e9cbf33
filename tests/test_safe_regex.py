"""Rule regexes run on text anyone can write: they are compiled by RE2 (linear time), give
Python's answers, and what RE2 cannot run in linear time is refused, saying what."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from guards import finishes

from monitor.errors import ConfigError
from monitor.model import Post, Score
from monitor.rules import RuleSet, compile_rules, load_rules
from monitor.textmatch import compile_rule_regex

pytestmark = pytest.mark.chaos

REPO = Path(__file__).resolve().parent.parent
NEUTRAL = Score(compound=0.0, pos=0.0, neu=1.0, neg=0.0)


def _rules(pattern: str) -> RuleSet:
    entries = yaml.safe_load(f"- {{id: r, when: {{regex: {pattern!r}}}}}\n".replace("'", '"'))
    return RuleSet(tuple(compile_rules(entries, "test.yaml")))


def test_a_catastrophic_pattern_cannot_hang_scoring() -> None:
    bomb = "a" * 5000 + "b"
    assert finishes(lambda: compile_rule_regex(r"(a+)+$").search(bomb)) is None
    ruleset = _rules(r"(a+)+$")
    sample = Post("s", "1", "https://x.test/1", "a", None, bomb, datetime(2026, 11, 1, tzinfo=UTC))
    assert finishes(lambda: ruleset.evaluate(sample, NEUTRAL)) is None
    assert compile_rule_regex(r"(\w+\s?)+$").search("word " * 4000 + "!") is None


@pytest.mark.parametrize(("pattern", "named"), [
    (r"(\w+) \1", "backreference"),
    (r"(?P<w>\w+) (?P=w)", "backreference"),
    (r"foo(?=bar)", "lookahead"),
    (r"(?<!not )happy", "lookbehind"),
    (r"(?>a+)b", "atomic group"),
    (r"a++b", "possessive repeat"),
    (r"(a)?(?(1)b|c)", "conditional"),
])
def test_what_re2_cannot_run_is_refused_naming_the_construct(pattern: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        compile_rule_regex(pattern)
    with pytest.raises(ConfigError, match=f"test.yaml: rules\\[0\\] \\(r\\).when.regex: .*{named}"):
        _rules(pattern)


def test_other_refusals_say_why() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        compile_rule_regex("(unclosed")
    with pytest.raises(ValueError, match=r"\(RE2\) cannot take it"):
        compile_rule_regex("(?x) a b")
    with pytest.raises(ValueError, match="outside ASCII"):
        compile_rule_regex(r"\bdéçu\b")  # RE2's word edges are ASCII's: words: knows
    compile_rule_regex("déçue?")  # without \b, fine


@pytest.mark.parametrize(("pattern", "text", "found"), [
    (r"\bkill\b", "I'll kill you", "kill"),
    (r"\bkill\b", "killé", None),            # é is a letter: no word edge after "kill"
    (r"\bkill\b", "ékill", None),
    (r"\bscum\b", "you ſcum", "ſcum"),       # ſ is an s when case is ignored, as in re
    (r"\w+", "  déçu!", "déçu"),             # \w knows every script
    (r"\d+", "٣٤ stars", "٣٤"),
    (r"a\sb", "a\u00a0b", "a\u00a0b"),       # \s too
    (r"\u00e9t\u00e9", "ÉTÉ", "ÉTÉ"),
    (r"end\Z", "the end", "end"),
    (r"\bu\b", "İ u", "u"),
    (r"^x{,3}y", "xxy", "xxy"),              # Python's {,n}: RE2 would read it as text
    (r"\bscum\b", "SCUM\u0301", "SCUM"),     # a combining accent is no word character
    (r"\bidiot", "İdiot", "İdiot"),         # a dotted capital I is an i, as in re
])
def test_answers_are_pythons(pattern: str, text: str, found: str | None) -> None:
    match = compile_rule_regex(pattern).search(text)
    assert (match.group(0) if match else None) == found
    python = re.search(pattern, text, re.IGNORECASE)
    assert (python.group(0) if python else None) == found


@pytest.mark.parametrize("folder", ["rules", "monitor/demo/rules"])
def test_every_shipped_pack_compiles(folder: str) -> None:
    assert load_rules(REPO / folder, REPO).rules
