"""End to end: `monitor run` against real feeds on a loopback server, then digest and export."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import fixture_bytes
from loopback import LoopbackServer, Route

from monitor.cli import main

GUARDIAN = "feeds/rss-parser/guardian.rss"
V1, V2 = "e2e/comments-v1.xml", "e2e/comments-v2.xml"


def monitor(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(config: Path) -> Result:
    return monitor("run", "--config", str(config))


def exported(config: Path, what: str = "posts") -> list[dict]:
    result = monitor("export", what, "--config", str(config), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def line_for(result: Result, source: str) -> str:
    return next(line for line in result.output.splitlines() if line.startswith(source + " "))


@pytest.fixture
def project(server: LoopbackServer, make_project) -> Path:
    server.serve("/guardian.rss", body=fixture_bytes(GUARDIAN), etag='"g1"')
    server.serve("/comments.xml", body=fixture_bytes(V1), etag='"c1"',
                 headers={"Content-Type": "application/rss+xml"})
    return make_project([
        {"name": "guardian", "kind": "rss", "url": server.url("/guardian.rss")},
        {"name": "blog-comments", "kind": "rss", "url": server.url("/comments.xml")},
    ])


def test_a_pass_stores_scores_flags_and_queues(project: Path, server: LoopbackServer) -> None:
    result = run(project)
    assert result.exit_code == 0, result.output
    assert "guardian" in result.output and "2 sources: 2 ok, 0 failed; 58 new posts" in \
        result.output
    posts = exported(project)
    assert len(posts) == 58 and {p["source"] for p in posts} == {"guardian", "blog-comments"}
    marco = next(p for p in posts if p["external_id"] == "comment-1")
    assert marco["text"] == ("This redesign is a disaster. Awful, slow and ugly. "
                             "Bring back the old layout!")
    assert marco["url"] == server.url("/our-new-look/#comment-1")  # relative link resolved
    assert marco["published_at"] == "2026-11-02T08:00:00Z"
    assert marco["flagged"] and marco["severity"] == "critical"
    assert marco["category"] == "backlash" and "change" in marco["tags"]
    assert marco["change"] >= 0.5 and "change: mentions 'redesign'" in marco["evidence"]
    assert any("mentions 'redesign'" in r for r in marco["reasons"])
    priya = next(p for p in posts if p["external_id"] == "comment-2")
    assert not priya["flagged"] and priya["compound"] > 0
    case, = exported(project, "cases")  # the two flagged comments of one thread: one case
    assert [p["external_id"] for p in case["posts"]] == ["comment-1", "comment-3"]
    assert case["state"] == "new" and case["group"].startswith("thread:blog-comments:")


def test_rerun_adds_nothing_and_honours_304(project: Path, server: LoopbackServer) -> None:
    run(project)
    for _ in range(2):
        again = run(project)
        assert again.exit_code == 0
        assert "0 new posts, 0 flagged" in again.output
        assert "unchanged" in line_for(again, "guardian")
    assert server.hits("/guardian.rss")[-1].headers.get("If-None-Match") == '"g1"'
    assert len(exported(project)) == 58
    assert len(exported(project, "cases")) == 1  # a thread's flags are one case, however many runs


def test_same_body_without_conditional_get_is_skipped(
        project: Path, server: LoopbackServer) -> None:
    server.serve("/guardian.rss", body=fixture_bytes(GUARDIAN))  # ignores If-None-Match
    run(project)
    again = run(project)
    assert "unchanged" in line_for(again, "guardian")


def test_an_edited_entry_is_noticed(project: Path, server: LoopbackServer) -> None:
    run(project)
    server.serve("/comments.xml", body=fixture_bytes(V2), etag='"c2"')
    again = run(project)
    assert again.exit_code == 0
    assert line_for(again, "blog-comments").split()[1:4] == ["4", "1", "1"]  # fetched new edited
    posts = {p["external_id"]: p for p in exported(project)}
    assert posts["comment-2"]["version"] == 2
    assert posts["comment-2"]["text"].endswith("Edit: the dark mode is lovely.")
    assert len(posts) == 59


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broken_sources_fail_alone(server: LoopbackServer, make_project) -> None:
    server.serve("/good.rss", body=fixture_bytes(GUARDIAN))
    server.serve("/error.rss", body=b"<html>Internal Server Error <rss></rss></html>",
                 status=500)
    server.serve("/slow.rss", Route(body=fixture_bytes(GUARDIAN), delay=3))
    server.serve("/html.rss", body=fixture_bytes("feeds/rss-parser/unrecognized.rss"),
                 headers={"Content-Type": "text/html"})
    server.serve("/huge.rss", Route(stream_bytes=50 * 1024 * 1024))
    server.serve("/bozo.rss", body=fixture_bytes(
        "feeds/feedparser/illformed/rss_item_link_corrupted_ampersands.xml"))
    config = make_project([
        {"name": "good", "kind": "rss", "url": server.url("/good.rss")},
        {"name": "error", "kind": "rss", "url": server.url("/error.rss")},
        {"name": "slow", "kind": "rss", "url": server.url("/slow.rss")},
        {"name": "refused", "kind": "rss", "url": f"http://127.0.0.1:{closed_port()}/feed"},
        {"name": "html", "kind": "rss", "url": server.url("/html.rss")},
        {"name": "huge", "kind": "rss", "url": server.url("/huge.rss")},
        {"name": "bozo", "kind": "rss", "url": server.url("/bozo.rss")},
    ], http={"read_timeout": 1, "max_bytes": 5 * 1024 * 1024})
    result = run(config)
    assert result.exit_code == 1
    assert "7 sources: 2 ok, 5 failed; 56 new posts" in result.output
    assert "FAILED: HTTP 500" in line_for(result, "error")
    assert "timed out" in line_for(result, "slow")
    assert "cannot connect" in line_for(result, "refused")
    assert "not a readable feed" in line_for(result, "html")
    assert "byte cap" in line_for(result, "huge")
    assert "malformed but readable" in line_for(result, "bozo")
    assert line_for(result, "good").split()[1:3] == ["55", "55"]
    assert len(exported(config)) == 56  # the good sources landed despite the others


def test_bad_config_exits_2_without_a_traceback(make_project) -> None:
    config = make_project([{"name": "x", "kind": "rss", "url": "ftp:/nope"}])
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: sources/test.yaml: sources[0].url: ")
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["run", "--config", str(config.parent / "nope.yaml")])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_export_csv_and_since(project: Path, tmp_path: Path) -> None:
    import pandas as pd

    run(project)
    out = tmp_path / "posts.csv"
    result = monitor("export", "posts", "--config", str(project), "--format", "csv",
                     "-o", str(out))
    assert result.exit_code == 0
    frame = pd.read_csv(out)
    assert len(frame) == 58 and {"source", "external_id", "url", "author", "title", "text",
                                 "published_at", "compound", "reasons"} <= set(frame.columns)
    assert exported(project) and monitor(
        "export", "posts", "--config", str(project), "--since", "2999-01-01").stdout == ""
    cases = tmp_path / "cases.csv"
    monitor("export", "cases", "--config", str(project), "--format", "csv", "-o", str(cases))
    assert {"id", "state", "severity", "post_url"} <= set(pd.read_csv(cases).columns)
    bad = CliRunner().invoke(main, ["export", "posts", "--config", str(project),
                                    "--since", "yesterday-ish"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_only_one_source(project: Path) -> None:
    result = monitor("run", "--config", str(project), "--source", "guardian")
    assert "1 sources: 1 ok" in result.output
    unknown = CliRunner().invoke(main, ["run", "--config", str(project), "--source", "nope"])
    assert unknown.exit_code == 2 and "no source named nope" in unknown.output


def test_source_file_is_plain_yaml(make_project) -> None:
    config = make_project([{"name": "a", "kind": "rss", "url": "https://example.com/f"}])
    assert yaml.safe_load((config.parent / "sources" / "test.yaml").read_text())["sources"]


def test_a_pass_on_postgresql(server: LoopbackServer, make_project, pg_url: str) -> None:
    """The same pass against the local PostgreSQL (skipped, saying why, when unreachable)."""
    server.serve("/comments.xml", body=fixture_bytes(V1))
    config = make_project([{"name": "blog-comments", "kind": "rss",
                            "url": server.url("/comments.xml")}], store=pg_url)
    assert run(config).exit_code == 0
    assert run(config).exit_code == 0
    assert len(exported(config)) == 3
    case, = exported(config, "cases")
    assert [p["external_id"] for p in case["posts"]] == ["comment-1", "comment-3"]


def test_rescore_applies_fixed_rules_to_stored_posts(project: Path) -> None:
    run(project)
    assert len(exported(project, "cases")) == 1
    rules = project.parent / "rules"
    for pack in rules.glob("*.yaml"):
        pack.unlink()
    (rules / "fixed.yaml").write_text(
        "rules:\n  - {id: looks-fresh, severity: low, category: feedback, "
        "when: {words: [looks fresh]}}\n")
    result = monitor("rescore", "--config", str(project))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "rescored 58 posts; 1 newly flagged"
    posts = {p["external_id"]: p for p in exported(project)}
    assert posts["comment-2"]["rules"] == ["looks-fresh"]
    assert not posts["comment-1"]["flagged"]           # the old rule is gone, and so its flag
    case, = exported(project, "cases")  # the new flag joined its thread's open case; none lost
    assert [p["external_id"] for p in case["posts"]] == ["comment-1", "comment-3", "comment-2"]
    again = monitor("rescore", "--config", str(project), "--since", "1d")
    assert again.output.strip() == "rescored 58 posts; 0 newly flagged"


PRAISE_AND_BACKLASH = """\
rules:
  - {id: fans, severity: low, category: praise, when: {words: [looks fresh]}}
  - {id: backlash, severity: high, category: backlash, when: {words: [redesign, new design]}}
"""


@pytest.mark.parametrize("fans_route", [False, True])
def test_praise_opens_no_case_and_goes_only_where_a_route_takes_it(
        server: LoopbackServer, make_project, tmp_path: Path, fans_route: bool) -> None:
    """Praise needs no answer: it is stored and listed, but the root's receivers (the queue, a
    notification) never get it; a route below the root matching it passes it on."""
    server.serve("/comments.xml", body=fixture_bytes(V1),
                 headers={"Content-Type": "application/rss+xml"})
    team, fans = tmp_path / "team.jsonl", tmp_path / "fans.jsonl"
    routing: dict = {"receivers": ["queue", "team"], "group_by": ["thread"], "group_wait": "0s"}
    if fans_route:
        routing["routes"] = [{"match": {"category": ["praise"]}, "receivers": ["fans"]}]
    config = make_project(
        [{"name": "blog", "kind": "rss", "url": server.url("/comments.xml")}],
        rules=PRAISE_AND_BACKLASH, routing=routing,
        receivers={"team": {"type": "file", "path": str(team)},
                   "fans": {"type": "file", "path": str(fans)}})
    result = run(config)
    assert result.exit_code == 0, result.output
    assert "2 flagged" in result.output  # comments 1 and 3; the praise of comment 2 is not
    posts = {p["external_id"]: p for p in exported(config)}
    assert posts["comment-2"]["rules"] == ["fans"]  # stored with its flag, for the digest
    case, = exported(config, "cases")
    assert [p["external_id"] for p in case["posts"]] == ["comment-1", "comment-3"]
    told = [json.loads(line) for line in team.read_text().splitlines()]
    assert sorted(p["external_id"] for n in told for p in n["posts"]) == \
        ["comment-1", "comment-3"]
    passed_on = [json.loads(line) for line in fans.read_text().splitlines()] \
        if fans.exists() else []
    assert [p["external_id"] for n in passed_on for p in n["posts"]] == \
        (["comment-2"] if fans_route else [])


def test_export_never_writes_over_the_store(project: Path) -> None:
    """``export -o monitor.db`` truncated the store while reading it: both were lost."""
    run(project)
    database = project.parent / "monitor.db"
    before = database.read_bytes()
    result = monitor("export", "posts", "--config", str(project), "-o", str(database))
    assert result.exit_code == 2, result.output
    assert "is a SQLite database (the store?)" in result.output
    assert database.read_bytes() == before
    assert len(exported(project)) == 58
