"""Runtime: the word file, launch keywords, VIPs and source tags reach the scorer and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.config import load
from monitor.model import Post
from monitor.runtime import Runtime

SOURCES = """\
sources:
  - {name: forum, kind: rss, url: "https://example.com/forum.xml", tags: [community]}
  - {name: press, kind: rss, url: "https://example.com/press.xml", tags: [press]}
"""
CONFIG = """\
events:
  - {name: Nova launch, date: 2026-11-01, keywords: [project nova]}
vip_authors: [Marco]
"""


def judge_for(tmp_path: Path, rules: str, words: str | None = None) -> Runtime:
    files = {"config.yaml": CONFIG, "sources/s.yaml": SOURCES, "rules/r.yaml": rules}
    if words is not None:
        files["rules/profanity.txt"] = words
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return Runtime.of(load(tmp_path / "config.yaml"))


def post(text: str, source: str = "forum", author: str | None = "someone") -> Post:
    return Post(source, "1", "https://example.com/1", author, None, text,
                datetime(2026, 11, 2, tzinfo=UTC))


def test_user_word_file_adds_and_removes_swear_words(tmp_path: Path) -> None:
    rules = "rules:\n  - {id: swears, when: {anger: {min: 0.3}}}\n"
    plain = judge_for(tmp_path, rules)
    text = "What a numpty decision. Useless."
    before = plain.scorer.score(None, text)
    assert ("anger", "swears or insults: 'useless'") in before.evidence
    adjusted = judge_for(tmp_path, rules, "numpty*  # ours\n-useless\n")
    after = adjusted.scorer.score(None, text)
    assert ("anger", "swears or insults: 'numpty'") in after.evidence
    assert not any("useless" in phrase for signal, phrase in after.evidence if signal == "anger")


def test_launch_keywords_count_as_change_talk(tmp_path: Path) -> None:
    judge = judge_for(tmp_path, "rules:\n  - {id: change, when: {change: {min: 0.5}}}\n")
    (score, flag), = judge.judge([post("Project Nova made everything slower.")])
    assert score.change >= 0.5 and flag is not None
    assert "mentions 'project nova'" in flag.reasons[0]
    (score, flag), = judge.judge([post("Everything is slower today.")])
    assert score.change == 0 and flag is None


def test_rules_see_source_kind_tags_and_vips(tmp_path: Path) -> None:
    rules = """\
rules:
  - {id: community, when: {all: [{tag: [community]}, {kind: [rss]}]}}
  - {id: vip, severity: high, when: {vip: true}}
"""
    judge = judge_for(tmp_path, rules)
    results = judge.judge([post("hello there"), post("hello there", source="press"),
                           post("hello", source="press", author="marco"),
                           post("hello", source="gone-from-config")])
    flags = [flag.rules if flag else () for _, flag in results]
    assert flags == [("community",), (), ("vip",), ()]
