"""The Hacker News collector against a loopback server replaying real Algolia responses.

Oracles that do not come from the code under test: the recorded JSON itself (each hit's
fields, and its ``created_at`` ISO string for the time), hand-written plain texts, and request
paths written out literally below (the order documented in ``search_url``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from click.testing import CliRunner
from conftest import FIXTURES
from loopback import LoopbackServer, Route
from pydantic import ValidationError

from monitor.cli import main
from monitor.collectors.hackernews import HackerNewsCollector, HackerNewsOptions
from monitor.collectors.http import HttpClient
from monitor.config import load
from monitor.errors import ConfigError, SourceError
from monitor.model import Fetch

HN = FIXTURES / "hackernews"
COMMENT = "01_search_by_date__hitsPerPage=1_tags=_comment.json"
POLL = "03_search_by_date__hitsPerPage=1_tags=_poll.json"
REPLY = "11_search_by_date__hitsPerPage=1_tags=_comment_author_pg.json"
POLL_PG = "13_search_by_date__hitsPerPage=1_tags=_poll_author_pg.json"  # nbPages 11
STORY_PG = "15_search_by_date__hitsPerPage=1_tags=_story_author_pg.json"
APPLE_COMMENT = "17_search_by_date__hitsPerPage=1_tags=_comment_query=apple.json"
APPLE_POLL = "19_search_by_date__hitsPerPage=1_tags=_poll_query=apple.json"
APPLE_STORY = "23_search_by_date__hitsPerPage=1_tags=_story_query=apple.json"  # newest
ASK_HN = "25_search_by_date__hitsPerPage=1_tags=_ask_hn_page=2_query=apple.json"
ALL = [COMMENT, POLL, REPLY, POLL_PG, STORY_PG, APPLE_COMMENT, APPLE_POLL, APPLE_STORY, ASK_HN]
STORY_AT, ASK_AT = 1403235346, 1403171610  # created_at_i of the hits in 23_ and 25_


def body(name: str) -> bytes:
    return (HN / name).read_bytes()


def hit(name: str) -> dict:
    return json.loads(body(name))["hits"][0]


def path(page: int, since: int | None = None, query: str = "apple",
         tags: str = "%28story%2Ccomment%29", per: int = 1) -> str:
    """The request the collector must send, written out by hand."""
    numeric = "" if since is None else f"&numericFilters=created_at_i%3E%3D{since}"
    return f"/api/v1/search_by_date?query={query}&tags={tags}{numeric}&hitsPerPage={per}" \
        f"&page={page}"


@pytest.fixture(scope="module")
def http() -> Iterator[HttpClient]:
    with HttpClient("feedback-monitor-tests/1.0", connect_timeout=2, read_timeout=2,
                    retries=0, sleep=lambda _: None) as client:
        yield client


def collect(server: LoopbackServer, http: HttpClient, cursor: dict | None = None,
            **options: object) -> Fetch:
    settings = {"query": "apple", "api_url": server.url("/api/v1"), "hits_per_page": 1,
                **options}
    return HackerNewsCollector("hn", HackerNewsOptions(**settings), http).collect(cursor)


# --- hits become posts ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_each_hit_becomes_a_post_with_the_fixture_fields(
        name: str, server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(name))
    fetch = collect(server, http, max_pages=1)
    assert fetch.problems == ()
    [post] = fetch.posts
    raw = hit(name)
    comment = "comment" in raw["_tags"]
    assert post.source == "hn" and post.external_id == raw["objectID"]
    assert post.url == f"https://news.ycombinator.com/item?id={raw['objectID']}"
    assert post.author == raw["author"]
    assert post.published_at == datetime.fromisoformat(raw["created_at"].replace("Z", "+00:00"))
    assert post.published_at.utcoffset().total_seconds() == 0
    assert "&#x27;" not in post.text and "<p>" not in post.text and post.text.strip()
    if comment:
        assert post.title == raw["story_title"]
        assert (post.thread_id, post.parent_id) == (str(raw["story_id"]), str(raw["parent_id"]))
        assert post.reach == raw["points"] and post.is_reply
    else:
        assert post.title == raw["title"]
        assert (post.thread_id, post.parent_id) == (raw["objectID"], None)
        assert post.reach == raw["points"] + raw["num_comments"] and not post.is_reply
    assert fetch.cursor == {"created_at_i": raw["created_at_i"], "ids": [raw["objectID"]]}


def test_comment_html_becomes_plain_paragraphs(server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(APPLE_COMMENT))
    [post] = collect(server, http, max_pages=1).posts
    assert post.text == (
        "Yeah the article seems stupid, while technically they aren't contributing to the "
        "scholarship they do pay tuition for the last 2 years.\n\n"
        "I'm not the biggest fan of starbucks, mostly because their coffee doesn't taste that "
        "good, however, I don't why what they've done shouldn't be applauded.\n\n"
        "It's kinda funny that I see more people upset about the business practices of "
        "Starbucks/Wal-Mart than Lockheed Martin.")
    assert post.title == "Starbucks admits it's not contributing to scholarship fund"
    assert (post.thread_id, post.parent_id) == ("7918547", "7919290")  # a reply to a comment


def test_link_story_text_is_its_title_and_link(server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(APPLE_STORY))
    [post] = collect(server, http, max_pages=1).posts
    assert post.text == ("Judge says concerned about Apple, Google hiring settlement\n\n"
                         "http://in.reuters.com/article/2014/06/19/"
                         "apple-google-settlement-idINL2N0P01ZI20140619")


def test_text_story_keeps_its_text_and_a_bare_poll_its_title(
        server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(ASK_HN))
    [ask] = collect(server, http, max_pages=1).posts
    assert ask.title == "Ask HN: How can I get Swag from Startups?"
    assert ask.text.startswith("\\tHello HN,\\nI'm a college student from India.")  # as sent
    assert ask.text.endswith("I will tweet my picture with the swag when received :) Thanks")
    assert ask.reach == 1 + 3
    server.serve(path(0), body=body(POLL_PG))
    [poll] = collect(server, http, max_pages=1).posts
    assert poll.text == poll.title == "Poll: Do you have a 3d printer?"
    assert poll.reach == 180 + 276


# --- paging and the cursor ---------------------------------------------------------------


def test_pages_0_and_1_then_stops_at_max_pages(server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(APPLE_STORY))
    server.serve(path(1), body=body(ASK_HN))
    server.serve(path(2), body=body(APPLE_COMMENT))
    fetch = collect(server, http, max_pages=2)
    assert [p.external_id for p in fetch.posts] == ["7919424", "7915384"]
    assert [len(server.hits(path(n))) for n in range(3)] == [1, 1, 0]
    assert fetch.cursor == {"created_at_i": STORY_AT, "ids": ["7919424"]}
    assert fetch.problems == ()  # a first pass without backfill reads the newest pages only


def test_stops_when_nb_pages_is_reached(server: LoopbackServer, http: HttpClient) -> None:
    for page in range(12):  # the recording says nbPages 11: pages 0..10
        server.serve(path(page), body=body(POLL_PG))
    fetch = collect(server, http, max_pages=50)
    assert [len(server.hits(path(n))) for n in range(12)] == [1] * 11 + [0]
    assert [p.external_id for p in fetch.posts] == ["5640988"]  # one post, read once
    assert fetch.problems == ()


def test_second_pass_sends_the_cursor_and_adds_nothing(
        server: LoopbackServer, http: HttpClient) -> None:
    for since in (None, STORY_AT):  # the real API would answer both with the same newest hits
        server.serve(path(0, since), body=body(APPLE_STORY))
        server.serve(path(1, since), body=body(ASK_HN))
    first = collect(server, http, max_pages=2)
    second = collect(server, http, dict(first.cursor), max_pages=2)
    assert len(server.hits(path(0, STORY_AT))) == 1  # numericFilters=created_at_i>=1403235346
    assert len(server.hits(path(1, STORY_AT))) == 1  # its hit is older: paging stops there
    assert len(server.hits(path(2, STORY_AT))) == 0
    assert second.posts == () and second.problems == ()
    assert second.cursor == first.cursor


def test_a_hit_in_the_same_second_is_neither_lost_nor_repeated(
        server: LoopbackServer, http: HttpClient) -> None:
    cursor = {"created_at_i": STORY_AT, "ids": ["7919424"]}
    document = json.loads(body(APPLE_STORY))
    same_second = dict(document["hits"][0], objectID="7919425", author="another")
    document["hits"].insert(0, same_second)  # derived: a second hit at 1403235346
    document["nbHits"], document["nbPages"] = 2, 1
    server.serve(path(0, STORY_AT, per=2), body=json.dumps(document).encode())
    fetch = collect(server, http, cursor, hits_per_page=2)
    assert [p.external_id for p in fetch.posts] == ["7919425"]
    assert fetch.cursor == {"created_at_i": STORY_AT, "ids": ["7919424", "7919425"]}
    assert fetch.problems == ()


def test_too_many_new_hits_for_max_pages_is_a_problem(
        server: LoopbackServer, http: HttpClient) -> None:
    since = 1403000000  # older than both hits: the pages never reach the cursor
    server.serve(path(0, since), body=body(APPLE_STORY))
    server.serve(path(1, since), body=body(ASK_HN))
    server.serve(path(2, since), body=body(APPLE_COMMENT))
    fetch = collect(server, http, {"created_at_i": since, "ids": []}, max_pages=2)
    assert len(fetch.posts) == 2 and len(server.hits(path(2, since))) == 0
    [problem] = fetch.problems
    assert "read 2 of 849 hits newer than the cursor" in problem and "max_pages=2" in problem
    assert fetch.cursor == {"created_at_i": STORY_AT, "ids": ["7919424"]}


def test_backfill_bounds_the_first_pass(server: LoopbackServer, http: HttpClient) -> None:
    before = int(time.time()) - 7 * 86400
    for since in range(before, before + 5):  # the second the collector runs in
        server.serve(path(0, since), body=body(APPLE_STORY))
    fetch = collect(server, http, backfill="7d")
    [seen] = server.requests
    since = int(seen.path.split("created_at_i%3E%3D")[1].split("&")[0])
    assert before <= since < before + 5
    assert fetch.posts == ()  # 2014 is older than 7 days: nothing, and no paging past it
    assert fetch.cursor == {"created_at_i": since, "ids": []} and fetch.problems == ()


# --- failures --------------------------------------------------------------------------


def test_429_waits_as_told_then_reads(server: LoopbackServer) -> None:
    slept: list[float] = []
    server.serve(path(0), Route(status=429, headers={"Retry-After": "7"}),
                 Route(body=body(APPLE_COMMENT)))
    with HttpClient("tests", retries=2, sleep=slept.append) as client:
        fetch = collect(server, client, max_pages=1)
    assert slept == [7.0] and len(server.hits(path(0))) == 2
    assert [p.external_id for p in fetch.posts] == ["7919418"]


def test_503_fails_the_source_naming_the_url(server: LoopbackServer) -> None:
    slept: list[float] = []
    server.serve(path(0), status=503, body=b"Service Unavailable")
    with HttpClient("tests", retries=1, backoff=0.5, sleep=slept.append) as client, \
            pytest.raises(SourceError) as caught:
        collect(server, client)
    assert caught.value.retryable and slept == [0.5]
    assert str(caught.value) == (f"HTTP 503 from {server.url(path(0))} (gave up after 2 tries)")


def test_a_later_page_failing_keeps_the_old_cursor(
        server: LoopbackServer, http: HttpClient) -> None:
    since = 1403000000
    server.serve(path(0, since), body=body(APPLE_STORY))
    server.serve(path(1, since), status=503)
    old = {"created_at_i": since, "ids": []}
    fetch = collect(server, http, old, max_pages=5)
    assert [p.external_id for p in fetch.posts] == ["7919424"]
    assert fetch.cursor == old  # the next pass reads page 1 again
    [problem] = fetch.problems
    assert problem.startswith("page 1 failed") and "HTTP 503" in problem


def test_truncated_json_names_the_url_without_secrets(
        server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(APPLE_COMMENT)[:300])
    api = server.url("/api/v1").replace("http://", "http://user:s3cret@")
    with pytest.raises(SourceError) as caught:
        collect(server, http, api_url=api)
    message = str(caught.value)
    assert message.startswith("not a readable search response (JSONDecodeError")
    assert message.endswith(f"from {server.url(path(0))}")
    assert "s3cret" not in message and "user" not in message


def test_json_that_is_not_a_search_response(server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0), body=body(APPLE_COMMENT).replace(b'"hits"', b'"items"'))
    with pytest.raises(SourceError, match="not an Algolia search response") as caught:
        collect(server, http)
    assert not caught.value.retryable


def test_bad_hits_are_problems_and_deleted_ones_are_skipped(
        server: LoopbackServer, http: HttpClient) -> None:
    good = hit(APPLE_COMMENT)
    no_id = {k: v for k, v in hit(COMMENT).items() if k != "objectID"}
    no_time = {k: v for k, v in hit(REPLY).items() if k != "created_at_i"}
    future = dict(hit(STORY_PG), created_at_i=int(time.time()) + 10 * 86400)
    deleted = dict(hit(ASK_HN), author=None, story_text=None, title=None)
    wrong_type = dict(hit(POLL), _tags="poll", title=["not", "a", "title"])
    document = {"hits": [good, "junk", no_id, no_time, future, deleted, wrong_type],
                "nbHits": 7, "nbPages": 1, "page": 0, "hitsPerPage": 7}
    server.serve(path(0, per=7), body=json.dumps(document).encode())
    fetch = collect(server, http, hits_per_page=7)
    assert [p.external_id for p in fetch.posts] == ["7919418", "7918694"]
    assert fetch.posts[1].title is None and fetch.posts[1].thread_id == "7918694"
    assert fetch.problems == (
        "skipped a hit (not an object: str)",
        "skipped a hit (no objectID)",
        "skipped a hit (hit 7494555 has no created_at_i)",
        f"skipped a hit (hit 7493856 has created_at_i {future['created_at_i']}, in the future)",
    )
    # The deleted hit (7915384) moves nothing but is not a post; the bogus future one is ignored.
    assert fetch.cursor == {"created_at_i": good["created_at_i"], "ids": ["7919418"]}


# --- options and config --------------------------------------------------------------------


def test_options_defaults_and_validation() -> None:
    options = HackerNewsOptions(query="acme")
    assert options.tags == "(story,comment)" and options.hits_per_page == 100
    assert str(options.api_url) == "https://hn.algolia.com/api/v1" and options.backfill is None
    assert HackerNewsOptions(query="x", tags=["story", "poll"]).tags == "(story,poll)"
    assert HackerNewsOptions(query="x", tags="(story,comment),author_pg").tags == \
        "(story,comment),author_pg"
    assert HackerNewsOptions(query="x", backfill="7d").backfill == 7 * 86400
    for bad in ({"query": ""}, {"query": "x", "hits_per_page": 1001},
                {"query": "x", "max_pages": 0}, {"query": "x", "tags": "story&page=9"},
                {"query": "x", "backfill": "soon"}, {"query": "x", "api_url": "ftp://x"},
                {"query": "x", "limit": 5}):
        with pytest.raises(ValidationError):
            HackerNewsOptions(**bad)


def test_query_with_a_phrase_is_encoded(server: LoopbackServer, http: HttpClient) -> None:
    server.serve(path(0, query="%22acme+cloud%22", tags="%28story%29"), body=body(APPLE_STORY))
    fetch = collect(server, http, query='"acme cloud"', tags=["story"], max_pages=1)
    assert len(fetch.posts) == 1


def test_config_errors_name_the_keys(make_project) -> None:
    config = make_project([{"name": "hn", "kind": "hackernews", "hits_per_page": 5000,
                            "backfill": "soon"}])
    with pytest.raises(ConfigError) as caught:
        load(config)
    message = str(caught.value)
    assert "sources[0].query: required" in message
    assert "sources[0].hits_per_page" in message and "sources[0].backfill" in message


def test_monitor_run_collects_hacker_news(server: LoopbackServer, make_project) -> None:
    for since in (None, STORY_AT):
        server.serve(path(0, since), body=body(APPLE_STORY))
        server.serve(path(1, since), body=body(ASK_HN))
    config = make_project([{"name": "hn", "kind": "hackernews", "query": "apple",
                            "api_url": server.url("/api/v1"), "hits_per_page": 1,
                            "max_pages": 2}])
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert len(server.hits(path(0, STORY_AT))) == 1  # the second run used the stored cursor
    result = runner.invoke(main, ["export", "posts", "--config", str(config), "--format",
                                  "jsonl"], catch_exceptions=False)
    posts = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(p["external_id"] for p in posts) == ["7915384", "7919424"]

