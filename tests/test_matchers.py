"""One matcher syntax for rules, routes and silences: the same spec matches the same post
wherever it is written, and the old spellings still work, with ``monitor check`` saying the
new one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from monitor.cli import main
from monitor.config import load
from monitor.errors import ConfigError
from monitor.matchers import LABELS, LabelMatch, compile_matcher, glob, respelled
from monitor.model import Flag, Post, Score
from monitor.route import (
    Labels,
    RouteTree,
    RoutingSpec,
    parse_matchers,
    silence_notices,
    silenced,
)
from monitor.rules import RuleSet, compile_rules

SCORE = Score(compound=0.0, pos=0.0, neu=1.0, neg=0.0, language="en")
FLAG = Flag(severity="high", rules=("backlash-redesign",), reasons=("why",),
            category="backlash", tags=("change",))
KIND, SOURCE_TAGS = "reddit", ("Community", "beta")


def a_post(author: str | None = "Troll42") -> Post:
    return Post(source="reddit-acme", external_id="t1", url="https://example.com/t1",
                author=author, title=None, text="text",
                published_at=datetime(2026, 11, 1, tzinfo=UTC))


def by_rule(label: str, value: Any, post: Post | None = None, vip: bool = False) -> bool:
    rules = RuleSet(tuple(compile_rules([{"id": "r", "when": {label: value}}], "rules/x.yaml")))
    return rules.evaluate(post or a_post(), SCORE, kind=KIND, tags=SOURCE_TAGS,
                          vip=vip) is not None


def labels(post: Post | None = None, vip: bool = False) -> Labels:
    return Labels.of(post or a_post(), SCORE, FLAG, KIND, vip, SOURCE_TAGS)


def by_route(label: str, value: Any, post: Post | None = None, vip: bool = False) -> bool:
    tree = RouteTree.of(RoutingSpec.model_validate(
        {"routes": [{"match": {label: value}, "receivers": ["hit"]}]}))
    return tree.route(labels(post, vip))[0].path == "root/0"


def by_silence(label: str, value: Any, post: Post | None = None, vip: bool = False) -> bool:
    text = str(value).lower() if isinstance(value, bool) else value
    return silenced(labels(post, vip), parse_matchers([f"{label}={text}"]))


ALL_THREE = [by_rule, by_route, by_silence]

BEFORE_FLAGGING = [    # labels a rule can read too: (label, value, matches the post)
    ("source", "reddit-acme", True),
    ("source", "REDDIT-*", True),                   # case ignored
    ("source", "reddit", False),                    # a whole name, not a prefix
    ("source", "*-acme", True),
    ("source", ["hn", "reddit-*"], True),           # a list: any of it
    ("source", ["hn", "blog"], False),
    ("kind", "Reddit", True),
    ("kind", "rss", False),
    ("author", "troll*", True),
    ("author", "someone", False),
    ("language", "en", True),
    ("language", ["de", "fr"], False),
    ("source_tag", "community", True),              # any of the source's tags
    ("source_tag", "bet*", True),
    ("source_tag", "change", False),                # the flag's tag is not the source's
    ("vip", False, True),
    ("vip", True, False),
]
ONCE_FLAGGED = [       # labels only routes and silences read
    ("severity", "HIGH", True),
    ("severity", "crit*", False),
    ("severity", "*", True),
    ("severity", ["medium", "high"], True),
    ("category", "back*", True),
    ("category", "abuse", False),
    ("flag_tag", "change", True),
    ("flag_tag", "community", False),               # the source's tag is not the flag's
    ("rule", "backlash-*", True),
    ("rule", ["churn-*"], False),
]


def _runs(cases: list[tuple[str, Any, bool]], where: list[Any]) -> list[Any]:
    """One case per place; a silence holds one value per key, not a list."""
    return [pytest.param(match, label, value, hit, id=f"{match.__name__}-{label}-{value}")
            for label, value, hit in cases for match in where
            if not (match is by_silence and isinstance(value, list))]


@pytest.mark.parametrize(("match", "label", "value", "hit"),
                         _runs(BEFORE_FLAGGING, ALL_THREE) + _runs(ONCE_FLAGGED,
                                                                    [by_route, by_silence]))
def test_the_same_matcher_means_the_same_post_everywhere(match: Any, label: str, value: Any,
                                                         hit: bool) -> None:
    assert match(label, value) is hit


@pytest.mark.parametrize("match", ALL_THREE)
def test_a_missing_label_matches_nothing_not_even_a_wildcard(match: Any) -> None:
    assert not match("author", "*", post=a_post(author=None))
    assert not match("author", "*", post=a_post(author=""))
    assert match("author", "*")
    assert match("vip", True, vip=True)


@pytest.mark.parametrize(("place", "old", "new"), [
    (by_rule, "tag", "source_tag"), (by_route, "tags", "flag_tag"),
    (by_silence, "tag", "flag_tag")])
def test_old_spellings_still_match_as_they_did(place: Any, old: str, new: str) -> None:
    for value in ("community", "change", "*a*", "nothing"):
        assert place(old, value) is place(new, value)
    assert place(old, "community" if new == "source_tag" else "change")


def test_rules_report_an_old_spelling_and_say_the_new_one() -> None:
    old, new = (compile_rules([{"id": "r", "when": {"all": [{"words": "x"}, {name: "beta"}]}}],
                              "rules/x.yaml")[0] for name in ("tag", "source_tag"))
    assert old.notices == ("rules/x.yaml: rules[0] (r).when.all[1].tag: 'tag' is an old "
                           "spelling, still read: write source_tag (a tag of the post's "
                           "source)",)
    assert new.notices == ()
    assert RuleSet((old, new, old)).notices == old.notices * 2
    flag = RuleSet(tuple(compile_rules([{"id": "r", "when": {"tag": "BETA"}}], "f"))).evaluate(
        a_post(), SCORE, tags=SOURCE_TAGS)
    assert flag is not None and flag.reasons == ("r: source tagged 'beta'",)


def test_routes_report_an_old_spelling_and_refuse_both_spellings() -> None:
    tree = RouteTree.of(RoutingSpec.model_validate({"routes": [
        {"match": {"tags": ["storm"]}, "receivers": ["a"]},
        {"match": {"flag_tag": ["x"]}, "receivers": ["b"],
         "routes": [{"match": {"tags": "y", "source": "hn"}, "receivers": ["c"]}]}]}))
    assert tree.notices() == [
        ("routing.routes[0].match.tags", "'tags' is an old spelling, still read: write "
         "flag_tag (a tag of the flag, from the rules that matched)"),
        ("routing.routes[1].routes[0].match.tags", "'tags' is an old spelling, still read: "
         "write flag_tag (a tag of the flag, from the rules that matched)")]
    with pytest.raises(ValidationError, match="give flag_tag only"):
        RoutingSpec.model_validate({"routes": [{"match": {"tags": "a", "flag_tag": "b"}}]})


def test_silences_keep_the_key_as_written_and_say_the_new_one() -> None:
    assert parse_matchers(["TAG=change"]) == {"tag": "change"}   # stored as written
    assert silence_notices({"tag": "change", "source": "x"}) == [
        "'tag' is an old spelling, still read: write flag_tag (a tag of the flag, from the "
        "rules that matched)"]
    assert silence_notices({"flag_tag": "change"}) == []
    with pytest.raises(ValueError, match="'flag_tag=b': flag_tag is given twice"):
        parse_matchers(["tag=a", "flag_tag=b"])


@pytest.mark.parametrize(("items", "message"), [
    (["vip=maybe"], "must be true or false"),
    (["severity=urgent"], "unknown severity 'urgent'"),
    (["sorce_tag=x"], "unknown key 'sorce_tag' (use one of source, kind, author, language, "
                      "source_tag, vip, severity, category, flag_tag, rule)"),
])
def test_silences_refuse_what_the_matcher_refuses(items: list[str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_matchers(items)
    assert message in str(caught.value)


def test_routes_and_silences_refuse_the_same_severities() -> None:
    for value in ("urgent", "hgh"):
        with pytest.raises(ValidationError, match="'low', 'medium', 'high' or 'critical'"):
            RoutingSpec.model_validate({"routes": [{"match": {"severity": [value]}}]})
        with pytest.raises(ValueError, match=f"unknown severity '{value}'"):
            parse_matchers([f"severity={value}"])
    assert by_route("severity", ["crit*", "h*"]) and by_silence("severity", "h*")


def test_a_broken_stored_silence_mutes_nothing() -> None:
    assert not silenced(labels(), {"tag": "change", "flag_tag": "change"})  # one label twice
    assert not silenced(labels(), {"vip": "perhaps"})
    assert silenced(labels(vip=True), {"vip": "True"})


def test_one_glob() -> None:
    pattern = glob([" Reddit-* ", "hn"])
    assert pattern.fullmatch("reddit-acme") and pattern.fullmatch("HN")
    assert pattern.fullmatch("reddit-a\nb")              # * crosses lines
    assert not pattern.fullmatch("hn2") and not pattern.fullmatch("xreddit-")
    assert glob(["a.b"]).fullmatch("a.b") and not glob(["a.b"]).fullmatch("axb")


def test_the_matcher_itself() -> None:
    assert compile_matcher({})(labels())                  # no labels: every post
    assert compile_matcher({"source": "reddit-*", "vip": None})(labels())  # None: unwritten
    assert not compile_matcher({"source": "reddit-*", "vip": True})(labels())
    assert LabelMatch("source_tag", ["*"]).hits(labels()) == ["Community", "beta"]
    assert respelled({"tags": ["x"]}, "route") == {"flag_tag": ["x"]}
    assert set(LABELS) == {"source", "kind", "author", "language", "source_tag", "vip",
                           "severity", "category", "flag_tag", "rule"}
    for label, value, message in [("sauce", "x", "unknown label 'sauce'"),
                                  ("source", [], "must be a name or a list of names"),
                                  ("vip", "yes", "must be true or false"),
                                  ("severity", {"max": "high"}, "{min: SEVERITY}")]:
        with pytest.raises(ValueError, match=message.replace("{", r"\{")):
            LabelMatch(label, value)


# --- monitor check ---------------------------------------------------------------------------

OLD_RULES = """\
rules:
  - {id: beta, when: {all: [{tag: [beta]}, {words: [broken]}]}}
  - {id: new, when: {source_tag: [beta]}}
"""
OLD_ROUTING = """\
routing:
  routes:
    - match: {tags: [storm]}
      receivers: [queue]
"""


def project(tmp_path: Path, rules: str, config: str) -> Path:
    for name, text in {"config.yaml": config, "rules/r.yaml": rules,
                       "sources/s.yaml": "sources: []\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "config.yaml"


def test_check_says_how_to_write_an_old_spelling_and_still_passes(tmp_path: Path) -> None:
    config = project(tmp_path, OLD_RULES, OLD_ROUTING)
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"{config}: ok" in result.stdout and "rules:   2 in 1 file(s)" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: rules/r.yaml: rules[0] (beta).when.all[0].tag: 'tag' is an old spelling, "
        "still read: write source_tag (a tag of the post's source)",
        "warning: config.yaml: routing.routes[0].match.tags: 'tags' is an old spelling, "
        "still read: write flag_tag (a tag of the flag, from the rules that matched)"]
    assert len(load(config).notices) == 2


def test_check_is_quiet_about_the_new_spellings(tmp_path: Path) -> None:
    config = project(tmp_path, OLD_RULES.replace("{tag:", "{source_tag:"),
                     OLD_ROUTING.replace("tags:", "flag_tag:"))
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 0 and result.stderr == ""


def test_check_still_fails_on_a_real_mistake_next_to_an_old_spelling(tmp_path: Path) -> None:
    config = project(tmp_path, OLD_RULES + "  - {id: bad, when: {sorce_tag: [x]}}\n",
                     OLD_ROUTING)
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "when.sorce_tag: unknown condition 'sorce_tag'" in result.stderr
    with pytest.raises(ConfigError):
        load(config)


def test_silence_add_says_how_to_write_an_old_spelling(tmp_path: Path) -> None:
    config = project(tmp_path, OLD_RULES, "")
    result = CliRunner().invoke(main, ["silence", "add", "--match", "tag=storm", "--for", "1h",
                                       "--reason", "x", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ("warning: --match: 'tag' is an old spelling, still read: write "
                             "flag_tag (a tag of the flag, from the rules that matched)\n")
    listed = CliRunner().invoke(main, ["silence", "list", "--config", str(config)])
    assert "tag=storm" in listed.stdout


def test_kinds_lists_the_new_spelling_and_the_old() -> None:
    result = CliRunner().invoke(main, ["kinds", "source_tag", "tag"])
    assert result.exit_code == 0, result.output
    assert "source_tag: [billing]" in result.output
    assert "the old spelling of source_tag" in result.output


def test_a_running_config_routes_and_silences_by_source_tag(tmp_path: Path) -> None:
    """The runtime hands the source's tags to routes and silences, not only to rules."""
    from monitor.runtime import Runtime

    config = project(tmp_path, OLD_RULES, """\
routing:
  routes:
    - match: {source_tag: [Community]}
      receivers: [queue]
      group_by: [source]
""")
    (tmp_path / "sources" / "s.yaml").write_text(
        "sources:\n  - {name: forum, kind: rss, url: 'https://example.com/f.xml', "
        "tags: [community]}\n  - {name: press, kind: rss, url: 'https://example.com/p.xml'}\n")
    runtime = Runtime.of(load(config))
    forum, press = (Post(source=name, external_id="1", url="https://example.com/1",
                         author="a", title=None, text="broken",
                         published_at=datetime(2026, 11, 1, tzinfo=UTC))
                    for name in ("forum", "press"))
    assert runtime.route(forum, SCORE, FLAG).group_key == "source:forum"
    assert runtime.route(press, SCORE, FLAG).group_key == "thread:press:1"
    muted = [parse_matchers(["source_tag=comm*"])]
    assert runtime.route(forum, SCORE, FLAG, muted).silenced
    assert not runtime.route(press, SCORE, FLAG, muted).silenced
