"""The Discourse collector against a real HTTP server replaying recorded Discourse API answers.

The recordings (tests/fixtures/discourse/, from discourse/discourse_api's spec fixtures) are
served as they are; the few shapes no recording has are built in the test from the
recordings' own objects, and each says so. Expected values are read off the files by hand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import fixture_bytes
from loopback import LoopbackServer, Route
from pydantic import ValidationError

from monitor.cli import main
from monitor.collectors.discourse import DiscourseCollector, DiscourseOptions
from monitor.collectors.http import HttpClient
from monitor.errors import SourceError
from monitor.model import Fetch, Post

KEY = "d1sc0urse-api-key-e7b9"
SANDBOX = "THIS SITE IS A SANDBOX -- it is reset every day"
UNCATEGORIZED = "This is an uncategorized title"


def recorded(name: str) -> bytes:
    return fixture_bytes(f"discourse/{name}")


def loaded(name: str) -> Any:
    return json.loads(recorded(name))


@pytest.fixture(scope="module")
def http() -> Iterator[HttpClient]:
    with HttpClient("feedback-monitor-tests/1.0", connect_timeout=2, read_timeout=2,
                    retries=0, sleep=lambda _: None) as client:
        yield client


def collect(server: LoopbackServer, http: HttpClient, cursor: dict | None = None,
            **options: object) -> Fetch:
    settings = DiscourseOptions(url=server.base, **options)
    return DiscourseCollector("forum", settings, http).collect(cursor)


def by_id(fetch: Fetch) -> dict[str, Post]:
    return {p.external_id: p for p in fetch.posts}


def headers_of(hit: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in hit.headers.items()}


# --- latest posts (/posts.json) -------------------------------------------------------------


def test_first_pass_stores_the_latest_posts(server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    fetch = collect(server, http, max_posts=4)
    assert fetch.problems == () and not fetch.unchanged
    assert [p.external_id for p in fetch.posts] == ["2", "10", "14", "15"]
    assert fetch.cursor == {"last_post_id": 15}
    reply, opening = by_id(fetch)["15"], by_id(fetch)["14"]
    assert reply == Post(
        source="forum", external_id="15",
        url=server.url("/t/this-is-an-uncategorized-title/11/2"), author="johndoe",
        title=UNCATEGORIZED, text="holla bullhonky.",
        published_at=datetime(2020, 1, 25, 2, 10, 7, 971000, tzinfo=UTC),
        thread_id="11", parent_id="11", reach=0)
    assert reply.is_reply
    assert opening.text == "hi there. hi there. hi there."  # <p> gone, spaces squeezed
    assert opening.url == server.url("/t/this-is-an-uncategorized-title/11/1")
    assert opening.thread_id == "11" and not opening.is_reply  # its title is its own words
    assert by_id(fetch)["10"].title == "Welcome to Discourse"
    assert by_id(fetch)["2"].author == "system"
    assert all("<" not in p.text for p in fetch.posts)
    assert server.hits("/posts.json?before=1") == []  # max_posts reached: no further page


def test_pages_with_before_and_stops_at_the_cursor(
        server: LoopbackServer, http: HttpClient) -> None:
    # Page 1 is posts_latest.json cut to its newest post, so that the recorded
    # posts_before.json (every id <= 14) is exactly the page that must follow it.
    latest = loaded("posts_latest.json")
    first_page = json.dumps({"latest_posts": latest["latest_posts"][:1]}).encode()
    server.serve("/posts.json", body=first_page)
    server.serve("/posts.json?before=14", body=recorded("posts_before.json"))
    fetch = collect(server, http, cursor={"last_post_id": 2})
    assert sorted(by_id(fetch)) == ["10", "14", "15"]  # 2 is the cursor: not again
    assert fetch.cursor == {"last_post_id": 15}
    assert fetch.problems == ()
    assert server.hits("/posts.json?before=1") == []  # the cursor stopped the paging
    again = collect(server, http, cursor=fetch.cursor)
    assert again.posts == () and again.unchanged and again.cursor == {"last_post_id": 15}
    assert len(server.hits("/posts.json?before=14")) == 1  # the second pass read one page


def test_a_newer_post_is_all_a_later_pass_adds(server: LoopbackServer, http: HttpClient) -> None:
    # posts_before.json is the same forum before post 15 was written.
    server.serve("/posts.json", Route(recorded("posts_before.json")),
                 Route(recorded("posts_latest.json")))
    first = collect(server, http, max_posts=3)
    assert sorted(by_id(first)) == ["10", "14", "2"] and first.cursor == {"last_post_id": 14}
    second = collect(server, http, cursor=first.cursor)
    assert [p.external_id for p in second.posts] == ["15"]
    assert second.cursor == {"last_post_id": 15}


def test_too_many_new_posts_is_said(server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    fetch = collect(server, http, cursor={"last_post_id": 1}, max_posts=2)
    assert sorted(by_id(fetch)) == ["14", "15"] and fetch.cursor == {"last_post_id": 15}
    assert any("over 2 new posts since the last pass" in p for p in fetch.problems)


def test_max_posts_at_a_page_end_is_said_without_reading_on(
        server: LoopbackServer, http: HttpClient) -> None:
    latest = loaded("posts_latest.json")
    server.serve("/posts.json", body=json.dumps({"latest_posts": latest["latest_posts"][:1]})
                 .encode())
    fetch = collect(server, http, cursor={"last_post_id": 10}, max_posts=1)
    assert [p.external_id for p in fetch.posts] == ["15"]
    assert any("over 1 new posts" in p for p in fetch.problems)
    assert server.hits("/posts.json?before=14") == []


def test_a_server_ignoring_before_ends_the_paging(
        server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    server.serve("/posts.json?before=1", body=recorded("posts_latest.json"))
    fetch = collect(server, http)
    assert len(fetch.posts) == 4 and fetch.problems == ()
    assert len(server.requests) == 2


def test_the_backfill_window_bounds_the_first_pass(
        server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    fetch = collect(server, http, backfill="7d")  # the recordings are from 2020
    assert fetch.posts == () and fetch.cursor == {"last_post_id": 0}
    assert server.hits("/posts.json?before=1") == []


def test_deleted_hidden_and_broken_posts(server: LoopbackServer, http: HttpClient) -> None:
    # posts_latest.json with one post hidden, one withdrawn by its author, one undated.
    latest = loaded("posts_latest.json")
    posts = {p["id"]: p for p in latest["latest_posts"]}
    posts[15]["hidden"] = True
    posts[10]["user_deleted"] = True
    posts[2]["created_at"] = "yesterday-ish"
    server.serve("/posts.json", body=json.dumps(latest).encode())
    fetch = collect(server, http, max_posts=4)
    assert [p.external_id for p in fetch.posts] == ["14"]
    assert len(fetch.problems) == 1 and "skipped post 2" in fetch.problems[0]
    assert fetch.cursor == {"last_post_id": 15}  # skipped posts are not read again


# --- topics: a category, a long topic -------------------------------------------------------


def long_topic() -> bytes:
    """topic.json whose stream lists one more post than its first chunk holds (as a long
    topic's does); topic_posts.json answers for that post."""
    topic = loaded("topic.json")
    topic["post_stream"]["stream"].append(123456)
    return json.dumps(topic).encode()


@pytest.mark.parametrize(("category", "path", "listing"), [
    ("test2/2", "/c/test2/2/l/latest.json", "category_latest_topics.json"),
    ("2", "/c/2.json", "category_topics.json"),
])
def test_category_walks_bumped_topics_and_their_post_streams(
        server: LoopbackServer, http: HttpClient, category: str, path: str,
        listing: str) -> None:
    server.serve(path, body=recorded(listing))
    # The recordings come from different sites: topic 5 of the list answers with topic 57.
    server.serve("/t/5.json", body=long_topic())
    server.serve("/t/5/posts.json?post_ids[]=123456", body=recorded("topic_posts.json"))
    # Topic 4 is gone since it was listed: a problem, not a failed pass.
    fetch = collect(server, http, category=category)
    assert sorted(by_id(fetch), key=int) == ["83", "86", "226", "123456"]  # 84: a mod note
    assert len(fetch.problems) == 1 and "skipped topic 4" in fetch.problems[0]
    assert "HTTP 404" in fetch.problems[0]
    assert fetch.cursor == {"last_post_id": 123456, "bumped_at": "2014-04-17T17:35:01.102000+00:00"}
    posts = by_id(fetch)
    assert {p.title for p in fetch.posts} == {SANDBOX}
    slug = "/t/this-site-is-a-sandbox-it-is-reset-every-day/57/"
    assert posts["83"].url == server.url(slug + "1") and not posts["83"].is_reply
    assert posts["83"].published_at == datetime(2013, 2, 4, 20, 26, 26, 278000, tzinfo=UTC)
    assert posts["83"].author == "samsaffron" and posts["83"].reach == 1  # 1 reply, 0 likes
    assert posts["226"].parent_id == "83"  # reply_to_post_number 1 -> post 83
    assert posts["226"].thread_id == "57" and posts["226"].reach == 5  # 5 likes
    assert posts["226"].text.startswith("What? So I have to post this every day?")
    fetched = posts["123456"]
    assert fetched.text == "Some text." and fetched.author == "Some-username"
    assert fetched.url == server.url("/t/some-topic-slug/57/2") and fetched.reach == 3
    assert fetched.title == SANDBOX  # the topic's title, from /t/5.json

    again = collect(server, http, cursor=fetch.cursor, category=category)
    assert again.posts == () and again.problems == () and again.cursor == fetch.cursor
    assert len(server.hits("/t/5.json")) == 1 and len(server.hits("/t/4.json")) == 1


def test_a_bumped_topic_gives_only_its_new_posts(
        server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/c/2.json", body=recorded("category_topics.json"))
    server.serve("/t/5.json", body=long_topic())
    server.serve("/t/5/posts.json?post_ids[]=123456", body=recorded("topic_posts.json"))
    # The last pass saw posts up to 86, before topic 5 was bumped (topic 4 was older).
    cursor = {"last_post_id": 86, "bumped_at": "2014-04-16T20:00:00+00:00"}
    fetch = collect(server, http, cursor=cursor, category="2")
    assert sorted(by_id(fetch), key=int) == ["226", "123456"] and fetch.problems == ()
    assert server.hits("/t/4.json") == []  # bumped before the cursor: not opened
    assert fetch.cursor == {"last_post_id": 123456, "bumped_at": "2014-04-17T17:35:01.102000+00:00"}


@pytest.mark.parametrize(("more", "page_two"), [
    ("/c/test2/2/l/latest?page=1", "/c/test2/2/l/latest.json?page=1"),  # current Discourse
    ("/c/test2/2/l/latest.json?page=1", "/c/test2/2/l/latest.json?page=1"),
    ("https://elsewhere.example/c/test2/2/l/latest?page=1", None),  # never another site
])
def test_the_topic_list_pages_with_more_topics_url(
        server: LoopbackServer, http: HttpClient, more: str, page_two: str | None) -> None:
    # The recorded list split in two pages: topic 5 and a more_topics_url, then topic 4.
    first, second = loaded("category_latest_topics.json"), loaded("category_latest_topics.json")
    first["topic_list"]["topics"] = first["topic_list"]["topics"][:1]
    first["topic_list"]["more_topics_url"] = more
    second["topic_list"]["topics"] = second["topic_list"]["topics"][1:]
    server.serve("/c/test2/2/l/latest.json", body=json.dumps(first).encode())
    if page_two:
        server.serve(page_two, body=json.dumps(second).encode())
    server.serve("/t/5.json", body=recorded("topic.json"))
    server.serve("/t/4.json", body=long_topic())
    server.serve("/t/4/posts.json?post_ids[]=123456", body=recorded("topic_posts.json"))
    fetch = collect(server, http, category="test2/2")
    assert ("123456" in by_id(fetch)) == bool(page_two) and "83" in by_id(fetch)
    assert len(server.hits("/t/4.json")) == (1 if page_two else 0)
    assert all(hit.path.startswith(("/c/", "/t/")) for hit in server.requests)


def test_an_old_pinned_topic_does_not_end_the_walk(
        server: LoopbackServer, http: HttpClient) -> None:
    # category_topics.json with its pinned topic 5 last bumped long ago: it stays on top.
    listing = loaded("category_topics.json")
    listing["topic_list"]["topics"][0]["bumped_at"] = "2014-01-01T00:00:00.000-04:00"
    server.serve("/c/2.json", body=json.dumps(listing).encode())
    server.serve("/t/4.json", body=long_topic())
    server.serve("/t/4/posts.json?post_ids[]=123456", body=recorded("topic_posts.json"))
    cursor = {"last_post_id": 226, "bumped_at": "2014-04-16T12:00:00+00:00"}
    fetch = collect(server, http, cursor=cursor, category="2")
    assert [p.external_id for p in fetch.posts] == ["123456"] and fetch.problems == ()
    assert server.hits("/t/5.json") == []
    assert fetch.cursor == {"last_post_id": 123456, "bumped_at": "2014-04-16T18:31:37.371000+00:00"}


def test_a_long_topic_fetches_only_what_max_posts_takes(
        server: LoopbackServer, http: HttpClient) -> None:
    # topic.json as a longer topic shows it: a first chunk of two posts, the stream of all;
    # the chunk that follows is built from topic.json's post 226 and topic_posts.json's.
    topic = loaded("topic.json")
    rest = [p for p in topic["post_stream"]["posts"] if p["id"] == 226]
    topic["post_stream"]["posts"] = topic["post_stream"]["posts"][:2]
    topic["post_stream"]["stream"].append(123456)
    rest += loaded("topic_posts.json")["post_stream"]["posts"]
    server.serve("/c/2.json", body=recorded("category_topics.json"))
    server.serve("/t/5.json", body=json.dumps(topic).encode())
    chunk = "/t/5/posts.json?post_ids[]=226&post_ids[]=123456"
    server.serve(chunk, body=json.dumps({"post_stream": {"posts": rest}, "id": 57}).encode())
    cursor = {"last_post_id": 80, "bumped_at": "2014-04-16T20:00:00+00:00"}
    fetch = collect(server, http, cursor=cursor, category="2", max_posts=2)
    assert sorted(by_id(fetch), key=int) == ["226", "123456"]
    assert by_id(fetch)["226"].parent_id == "83"  # post 1 came in the first chunk
    assert len(server.hits(chunk)) == 1 and len(server.requests) == 3  # 86 never asked for
    assert any("over 2 new posts" in p for p in fetch.problems)


def test_topics_opened_are_bounded_too(server: LoopbackServer, http: HttpClient) -> None:
    # A cursor from the latest-posts way has no bumped_at: every listed topic looks bumped.
    server.serve("/c/2.json", body=recorded("category_topics.json"))
    server.serve("/t/5.json", body=recorded("topic.json"))
    fetch = collect(server, http, cursor={"last_post_id": 300}, category="2", max_posts=1)
    assert fetch.posts == () and server.hits("/t/4.json") == []
    assert any("over 1 new posts" in p for p in fetch.problems)


def test_a_failing_topic_fails_the_pass_when_retrying_may_help(
        server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/c/2.json", body=recorded("category_topics.json"))
    server.serve("/t/5.json", status=503, body=b"busy")
    with pytest.raises(SourceError, match="HTTP 503") as caught:
        collect(server, http, category="2")
    assert caught.value.retryable  # and no cursor was returned: the next pass retries


# --- search ---------------------------------------------------------------------------------


def test_old_format_search_is_a_problem(server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/search.json?q=sandbox+order%3Alatest", body=recorded("search.json"))
    fetch = collect(server, http, cursor={"last_post_id": 7}, search="sandbox")
    assert fetch.posts == () and fetch.cursor == {"last_post_id": 7}
    assert len(fetch.problems) == 1 and "old list format" in fetch.problems[0]


def test_modern_search_fetches_the_full_posts(server: LoopbackServer, http: HttpClient) -> None:
    # No modern search.json was recorded: this one is built from topic_posts.json's post
    # (as a hit: its blurb, no cooked) and topic.json's title, in the {posts, topics} shape.
    post = loaded("topic_posts.json")["post_stream"]["posts"][0]
    topic = loaded("topic.json")
    hit = {k: post[k] for k in ("id", "name", "username", "created_at", "post_number",
                                "topic_id")}
    answer = {"posts": [{**hit, "blurb": "Some text.", "like_count": 3}],
              "topics": [{k: topic[k] for k in ("id", "title", "fancy_title", "slug")}],
              "users": [], "categories": [],
              "grouped_search_result": {"more_posts": None, "more_full_page_results": None,
                                        "term": "some text", "post_ids": [post["id"]]}}
    server.serve("/search.json?q=some+text+order%3Alatest", body=json.dumps(answer).encode())
    server.serve("/t/57/posts.json?post_ids[]=123456", body=recorded("topic_posts.json"))
    fetch = collect(server, http, search="some text")
    assert fetch.problems == () and fetch.cursor == {"last_post_id": 123456}
    (found,) = fetch.posts
    assert found.text == "Some text." and found.title == SANDBOX
    assert found.thread_id == "57" and found.parent_id == "57" and found.reach == 3
    again = collect(server, http, cursor=fetch.cursor, search="some text")
    assert again.posts == () and again.unchanged
    assert len(server.hits("/t/57/posts.json?post_ids[]=123456")) == 1


# --- HTTP: keys, limits, failures -----------------------------------------------------------


def test_api_key_is_sent_and_never_shown(server: LoopbackServer, http: HttpClient,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    fetch = collect(server, http, max_posts=4, api_key=KEY, api_username="system")
    assert len(fetch.posts) == 4
    sent = headers_of(server.hits("/posts.json")[0])
    assert sent["api-key"] == KEY and sent["api-username"] == "system"

    server.serve("/posts.json", status=403, body=b'{"errors":["invalid api key"]}')
    with pytest.raises(SourceError, match="HTTP 403") as caught:
        collect(server, http, api_key=KEY, api_username="system")
    assert not caught.value.retryable
    assert KEY not in str(caught.value) and KEY not in caplog.text
    options = DiscourseOptions(url=server.base, api_key=KEY)
    assert KEY not in repr(options) and KEY not in str(options.model_dump())


def test_without_a_key_no_key_headers(server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    collect(server, http, max_posts=4)
    assert "api-key" not in headers_of(server.hits("/posts.json")[0])


def test_429_waits_as_told_then_reads(server: LoopbackServer) -> None:
    waits: list[float] = []
    server.serve("/posts.json",
                 Route(b'{"errors":["too many requests"]}', status=429,
                       headers={"Retry-After": "7"}),
                 Route(recorded("posts_latest.json")))
    with HttpClient("tests", retries=1, sleep=waits.append) as patient:
        fetch = collect(server, patient, max_posts=4)
    assert waits == [7.0] and len(fetch.posts) == 4
    assert len(server.hits("/posts.json")) == 2


def test_503_fails_the_source_retryably(server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", status=503, body=b"<h1>Service Unavailable</h1>")
    with pytest.raises(SourceError, match="HTTP 503") as caught:
        collect(server, http)
    assert caught.value.retryable and server.url("/posts.json") in str(caught.value)


def test_a_truncated_body_names_the_url(server: LoopbackServer, http: HttpClient) -> None:
    body = recorded("posts_latest.json")
    server.serve("/posts.json", body=body[:len(body) // 2])
    with pytest.raises(SourceError, match="not valid JSON") as caught:
        collect(server, http)
    assert server.url("/posts.json") in str(caught.value)


def test_an_answer_that_is_not_discourse(server: LoopbackServer, http: HttpClient) -> None:
    server.serve("/posts.json", body=recorded("topic_posts.json"))  # JSON, wrong endpoint
    with pytest.raises(SourceError, match="no latest_posts list") as caught:
        collect(server, http)
    assert not caught.value.retryable


# --- options and the whole pipeline ---------------------------------------------------------


def test_options_are_checked() -> None:
    assert DiscourseOptions(url="https://forum.example.com", backfill="7d").backfill == 604800
    for bad in ({"category": "x", "search": "y"}, {"api_username": "system"},
                {"category": "two words"}, {"max_posts": 0}, {"backfill": "soon"},
                {"url": "ftp://forum.example.com"}, {"mode": "topics"}):
        with pytest.raises(ValidationError):
            DiscourseOptions(**{"url": "https://forum.example.com", **bad})


def test_monitor_run_twice_adds_nothing_the_second_time(
        server: LoopbackServer, make_project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORUM_KEY", KEY)
    server.serve("/posts.json", body=recorded("posts_latest.json"))
    config: Path = make_project([{"name": "forum", "kind": "discourse", "url": server.base,
                                  "max_posts": 4, "api_key": "${FORUM_KEY}"}])
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "4 new posts" in first.output and KEY not in first.output
    second = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    assert second.exit_code == 0 and "0 new posts" in second.output
    exported = runner.invoke(main, ["export", "posts", "--config", str(config),
                                    "--format", "jsonl"], catch_exceptions=False)
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(r["external_id"] for r in rows) == ["10", "14", "15", "2"]
    assert headers_of(server.hits("/posts.json")[-1])["api-key"] == KEY
