"""The routing tree: Alertmanager's matching order, inheritance, group keys, silences, and
config mistakes that name their key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from monitor.model import Flag, Post, Score
from monitor.route import (
    Labels,
    RouteTree,
    RoutingSpec,
    group_key,
    parse_matchers,
    silenced,
)


def labels(severity: str = "medium", category: str | None = "backlash",
           tags: tuple[str, ...] = ("change",), rules: tuple[str, ...] = ("backlash-redesign",),
           source: str = "reddit-acme", author: str | None = "Troll42",
           thread_id: str | None = "t3_thread", external_id: str = "t1_post",
           language: str | None = "en", kind: str | None = "reddit", vip: bool = False) -> Labels:
    post = Post(source=source, external_id=external_id, url="https://example.com/p",
                author=author, title=None, text="text", thread_id=thread_id,
                parent_id="t3_thread" if thread_id else None,
                published_at=datetime(2026, 11, 1, tzinfo=UTC))
    score = Score(compound=-0.5, pos=0.0, neu=0.5, neg=0.5, language=language)
    flag = Flag(severity=severity, rules=rules, reasons=("why",), category=category, tags=tags)
    return Labels.of(post, score, flag, kind, vip)


def tree(text: str) -> RouteTree:
    return RouteTree.of(RoutingSpec.model_validate(yaml.safe_load(text)))


def paths(routing: RouteTree, **label: Any) -> list[str]:
    return [r.path for r in routing.route(labels(**label))]


def test_labels_of_a_post() -> None:
    got = labels(language=None, kind=None, vip=True)
    assert (got.language, got.kind, got.vip, got.source, got.author) == (
        "unknown", None, True, "reddit-acme", "Troll42")
    assert (got.thread, got.post_id, got.rules, got.tags) == (
        "t3_thread", "t1_post", ("backlash-redesign",), ("change",))
    assert labels(thread_id=None).thread == "t1_post"   # a top-level post is its own thread


def test_default_root_sends_everything_to_the_queue_by_thread() -> None:
    for routing in (RouteTree.of(), RouteTree.of(RoutingSpec()), tree("{}")):
        (only,) = routing.route(labels())
        assert only.receivers == ("queue",)
        assert (only.path, only.group_by) == ("root", ("thread",))
        assert (only.group_wait, only.repeat_interval) == (30.0, 4 * 3600.0)


ROUTES = """
receivers: [queue]
routes:
  - match: {severity: [critical]}
    receivers: [queue, pager]
  - match: {source: [reddit-*]}
    receivers: [slack]
  - match: {category: [backlash]}
    receivers: [email]
"""


def test_first_matching_child_wins() -> None:
    routing = tree(ROUTES)
    assert paths(routing, severity="critical") == ["root/0"]   # would match all three
    assert paths(routing) == ["root/1"]
    assert paths(routing, source="hn") == ["root/2"]


def test_no_matching_child_leaves_the_node_itself() -> None:
    assert paths(tree(ROUTES), source="hn", category="praise") == ["root"]


def test_continue_tries_the_next_siblings_too() -> None:
    routing = tree(ROUTES.replace("receivers: [queue, pager]",
                                  "receivers: [queue, pager]\n    continue: true"))
    assert paths(routing, severity="critical") == ["root/0", "root/1"]
    assert paths(routing, severity="critical", source="hn") == ["root/0", "root/2"]
    assert paths(routing, severity="low") == ["root/1"]


def test_a_continuing_child_alone_does_not_bring_back_its_parent() -> None:
    routing = tree("""
routes:
  - match: {severity: [critical]}
    receivers: [pager]
    continue: true
  - match: {source: [nowhere]}
    receivers: [slack]
""")
    assert [r.receivers for r in routing.route(labels(severity="critical"))] == [("pager",)]


NESTED = """
receivers: [queue]
group_by: [thread]
group_wait: 1m
repeat_interval: 2h
routes:
  - match: {source: [hn]}
    receivers: [hn-team]
  - match: {source: [reddit-*]}
    group_by: [author]
    group_wait: 10s
    routes:
      - match: {severity: {min: high}}
        receivers: [slack-urgent]
        repeat_interval: 30m
        routes:
          - match: {vip: true}
            receivers: [ceo]
      - match: {category: [praise]}
"""


def test_nested_routes_descend_depth_first() -> None:
    routing = tree(NESTED)
    assert paths(routing, severity="high") == ["root/1/0"]
    assert paths(routing, severity="critical", vip=True) == ["root/1/0/0"]
    assert paths(routing, severity="low") == ["root/1"]        # reached reddit-*, no child
    assert paths(routing, source="hn", severity="critical", vip=True) == ["root/0"]
    assert paths(routing, source="rss", severity="critical", vip=True) == ["root"]


def test_children_inherit_what_they_leave_out() -> None:
    routing = tree(NESTED)
    (reddit,) = routing.route(labels(severity="low"))
    assert (reddit.receivers, reddit.group_by, reddit.group_wait, reddit.repeat_interval) == (
        ("queue",), ("author",), 10.0, 7200.0)
    (urgent,) = routing.route(labels(severity="high"))
    assert (urgent.receivers, urgent.group_by, urgent.group_wait, urgent.repeat_interval) == (
        ("slack-urgent",), ("author",), 10.0, 1800.0)
    (ceo,) = routing.route(labels(severity="critical", vip=True))
    assert (ceo.receivers, ceo.group_by, ceo.group_wait, ceo.repeat_interval) == (
        ("ceo",), ("author",), 10.0, 1800.0)
    (praise,) = routing.route(labels(category="praise"))
    assert (praise.path, praise.receivers, praise.group_wait) == ("root/1/1", ("queue",), 10.0)
    (hn,) = routing.route(labels(source="hn"))
    assert (hn.receivers, hn.group_by, hn.group_wait) == (("hn-team",), ("thread",), 60.0)


def test_an_empty_group_by_is_not_inherited() -> None:
    routing = tree("routes: [{match: {kind: [rss]}, group_by: []}]")
    assert routing.route(labels(kind="rss"))[0].group_by == ()


@pytest.mark.parametrize(("match", "label", "hit"), [
    ({}, {}, True),
    ({"severity": ["high", "critical"]}, {"severity": "critical"}, True),
    ({"severity": ["high", "critical"]}, {"severity": "medium"}, False),
    ({"severity": "critical"}, {"severity": "critical"}, True),
    ({"severity": {"min": "high"}}, {"severity": "high"}, True),
    ({"severity": {"min": "high"}}, {"severity": "critical"}, True),
    ({"severity": {"min": "high"}}, {"severity": "medium"}, False),
    ({"severity": {"min": "low"}}, {"severity": "low"}, True),
    ({"category": ["abuse", "backlash"]}, {}, True),
    ({"category": ["abuse"]}, {}, False),
    ({"category": ["*"]}, {"category": None}, False),      # no category matches no name
    ({"tags": ["churn", "change"]}, {"tags": ("pricing", "change")}, True),
    ({"tags": ["churn"]}, {"tags": ("pricing", "change")}, False),
    ({"tags": ["*"]}, {"tags": ()}, False),
    ({"source": ["reddit-*"]}, {}, True),
    ({"source": ["Reddit-*"]}, {}, True),                  # case ignored
    ({"source": ["reddit-*"]}, {"source": "hn"}, False),
    ({"source": ["reddit"]}, {}, False),                   # a whole name, not a prefix
    ({"source": ["*-acme"]}, {}, True),
    ({"kind": ["reddit", "hackernews"]}, {}, True),
    ({"kind": ["*"]}, {"kind": None}, False),              # kind not given: matches nothing
    ({"language": ["unknown"]}, {"language": None}, True),
    ({"language": ["unknown"]}, {"language": "en"}, False),
    ({"language": ["de", "fr"]}, {"language": "de"}, True),
    ({"vip": True}, {"vip": True}, True),
    ({"vip": True}, {}, False),
    ({"vip": False}, {}, True),
    ({"vip": False}, {"vip": True}, False),
    ({"rule": ["backlash-*"]}, {}, True),
    ({"rule": ["churn-*"]}, {"rules": ("churn-cancel", "x")}, True),
    ({"rule": ["churn-*"]}, {}, False),
    ({"severity": {"min": "high"}, "source": ["reddit-*"]}, {"severity": "high"}, True),
    ({"severity": {"min": "high"}, "source": ["hn"]}, {"severity": "high"}, False),
    ({"source": ["reddit-*"], "vip": True}, {}, False),
])
def test_matchers(match: dict[str, Any], label: dict[str, Any], hit: bool) -> None:
    routing = RouteTree.of(RoutingSpec.model_validate(
        {"routes": [{"match": match, "receivers": ["hit"]}]}))
    assert (routing.route(labels(**label))[0].path == "root/0") is hit


def test_a_receiver_is_told_once() -> None:
    routing = tree("""
receivers: [queue]
routes:
  - match: {severity: [critical]}
    receivers: [queue, slack, queue]
    continue: true
  - match: {source: [reddit-*]}
    receivers: [slack]
    continue: true
  - match: {category: [backlash]}
    receivers: [slack, email, queue]
""")
    got = routing.route(labels(severity="critical"))
    assert [(r.path, r.receivers) for r in got] == [("root/0", ("queue", "slack")),
                                                    ("root/2", ("email",))]


def test_receiver_uses_name_their_key() -> None:
    routing = tree(NESTED)
    assert routing.receiver_uses() == [
        ("routing.receivers[0]", "queue"),
        ("routing.routes[0].receivers[0]", "hn-team"),
        ("routing.routes[1].routes[0].receivers[0]", "slack-urgent"),
        ("routing.routes[1].routes[0].routes[0].receivers[0]", "ceo"),
    ]
    slak = tree("routes: [{receivers: [queue, slak]}, {receivers: [queue]}]")
    assert ("routing.routes[0].receivers[1]", "slak") in slak.receiver_uses()


@pytest.mark.parametrize(("group_by", "label", "key"), [
    (["thread"], {}, "thread:reddit-acme:t3_thread"),                 # a reply: its thread
    (["thread"], {"thread_id": None}, "thread:reddit-acme:t1_post"),  # top-level: itself
    (["author"], {}, "author:reddit-acme:troll42"),
    (["author"], {"author": " TROLL42 "}, "author:reddit-acme:troll42"),
    (["author"], {"author": None}, "author:reddit-acme:#t1_post"),    # anonymous: alone
    (["source"], {}, "source:reddit-acme"),
    (["category"], {}, "category:backlash"),
    (["category"], {"category": None}, "category:none"),
    (["thread", "author"], {}, "thread:reddit-acme:t3_thread|author:reddit-acme:troll42"),
    (["author", "thread"], {}, "thread:reddit-acme:t3_thread|author:reddit-acme:troll42"),
    (["category", "source", "category"], {}, "source:reddit-acme|category:backlash"),
    (["thread"], {"thread_id": "a|b%"}, "thread:reddit-acme:a%7Cb%25"),
    ([], {}, "all"),
])
def test_group_keys(group_by: list[str], label: dict[str, Any], key: str) -> None:
    assert group_key(labels(**label), group_by) == key


def test_group_key_is_the_same_for_a_thread_and_its_replies() -> None:
    opener = labels(thread_id=None, external_id="t3_thread", author="op")
    reply = labels(thread_id="t3_thread", external_id="t1_reply", author="other")
    assert group_key(opener, ["thread"]) == group_key(reply, ["thread"])
    assert group_key(opener, ["author"]) != group_key(reply, ["author"])


def test_group_key_refuses_an_unknown_part() -> None:
    with pytest.raises(ValueError, match="cannot group by thred"):
        group_key(labels(), ["thred"])


def test_parse_matchers() -> None:
    assert parse_matchers(["source=reddit-*", " Author = troll42 ", "tag=x=y"]) == {
        "source": "reddit-*", "author": "troll42", "tag": "x=y"}
    assert parse_matchers(["severity=LOW", "category=abuse", "kind=rss", "rule=r*"])


@pytest.mark.parametrize(("items", "message"), [
    (["source"], "'source': write KEY=VALUE"),
    (["sauce=reddit"], "unknown key 'sauce' (use one of source, kind, author"),
    (["author="], "'author=': the value is empty"),
    (["author=  "], "the value is empty"),
    (["severity=urgent"], "unknown severity 'urgent'"),
    (["tag=a", "tag=b"], "'tag=b': tag is given twice"),
    ([], "at least one matcher"),
])
def test_parse_matchers_says_what_is_wrong(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_matchers(items)


@pytest.mark.parametrize(("matchers", "label", "muted"), [
    ({"source": "reddit-acme"}, {}, True),
    ({"source": "reddit-*"}, {}, True),
    ({"source": "hn"}, {}, False),
    ({"author": "TROLL42"}, {}, True),
    ({"author": "troll*"}, {}, True),
    ({"author": "*"}, {"author": None}, False),
    ({"source": "reddit-*", "author": "troll42", "category": "backlash"}, {}, True),
    ({"source": "reddit-*", "author": "someone-else"}, {}, False),    # all must match
    ({"category": "abuse"}, {}, False),
    ({"severity": "low"}, {"severity": "low"}, True),
    ({"severity": "low"}, {"severity": "critical"}, False),
    ({"tag": "x"}, {"tags": ("change", "x")}, True),
    ({"tag": "x"}, {}, False),
    ({"kind": "reddit"}, {}, True),
    ({"rule": "backlash-*"}, {}, True),
    ({}, {}, False),                                   # no matchers mute nothing
    ({"source": "*", "bogus": "x"}, {}, False),        # a broken silence mutes nothing
])
def test_silenced(matchers: dict[str, str], label: dict[str, Any], muted: bool) -> None:
    assert silenced(labels(**label), matchers) is muted


def test_parsed_matchers_silence() -> None:
    matchers = parse_matchers(["source=reddit-acme", "author=troll42", "category=backlash",
                               "severity=medium", "tag=change"])
    assert silenced(labels(), matchers)
    assert not silenced(labels(severity="high"), matchers)


@pytest.mark.parametrize(("raw", "loc", "message"), [
    ({"routes": [{"match": {"sevrity": ["high"]}}]},
     ("routes", 0, "match", "sevrity"), "Extra inputs"),
    ({"routes": [{"recievers": ["queue"]}]}, ("routes", 0, "recievers"), "Extra inputs"),
    ({"match": {"severity": ["high"]}}, ("match",), "Extra inputs"),   # the root matches all
    ({"group_wait": "3x"}, ("group_wait",), "not a duration: '3x'"),
    ({"routes": [{"repeat_interval": "soon"}]}, ("routes", 0, "repeat_interval"),
     "not a duration"),
    ({"routes": [{"repeat_interval": 0}]}, ("routes", 0, "repeat_interval"), "greater than 0"),
    ({"group_by": ["thred"]}, ("group_by", 0), "'thread', 'author', 'source' or 'category'"),
    ({"routes": [{"routes": [{"group_by": ["site"]}]}]},
     ("routes", 0, "routes", 0, "group_by", 0), "'thread'"),
    ({"routes": [{"match": {"severity": {"min": "urgent"}}}]},
     ("routes", 0, "match", "severity"), "{min: SEVERITY}"),
    ({"routes": [{"match": {"severity": {"max": "high"}}}]},
     ("routes", 0, "match", "severity"), "{min: SEVERITY}"),
    ({"routes": [{"match": {"severity": ["urgent"]}}]},
     ("routes", 0, "match", "severity", 0), "'low', 'medium', 'high' or 'critical'"),
    ({"routes": [{"match": {"severity": None}}]},
     ("routes", 0, "match", "severity"), "is empty"),
    ({"routes": [{"match": {"source": []}}]}, ("routes", 0, "match", "source"), "at least 1"),
    ({"routes": [{"match": {"vip": "maybe"}}]}, ("routes", 0, "match", "vip"), "boolean"),
    ({"routes": [{"continue": "maybe"}]}, ("routes", 0, "continue"), "boolean"),
    ({"routes": [{"continue_": True}]}, ("routes", 0, "continue_"), "Extra inputs"),
    ({"receivers": []}, ("receivers",), "at least 1"),
    ({"routes": [{"receivers": [""]}]}, ("routes", 0, "receivers", 0), "pattern"),
])
def test_config_mistakes_name_their_key(raw: dict[str, Any], loc: tuple[Any, ...],
                                        message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RoutingSpec.model_validate(raw)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [loc]
    assert message in errors[0]["msg"]


def test_a_single_name_is_a_list_of_one() -> None:
    spec = RoutingSpec.model_validate(
        {"receivers": "queue", "routes": [{"match": {"source": "hn"}, "receivers": "slack"}]})
    assert spec.receivers == ["queue"]
    assert spec.routes[0].match.source == ["hn"]
    assert RouteTree.of(spec).route(labels(source="hn"))[0].receivers == ("slack",)
