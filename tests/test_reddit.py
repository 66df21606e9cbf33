"""The Reddit collector: praw itself talking to a loopback server that replays praw's own
recorded Reddit answers (tests/fixtures/reddit/, see its README).

Oracles come from the recordings, read here with plain ``json``: counts of children, their
fields, their order. Where an answer is derived from a recording (slices of a page, a body cut
in half, a 429 no cassette holds) the test says so.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from monitor.cli import main
from monitor.collectors.http import HttpClient
from monitor.collectors.reddit import WEB, RedditCollector, RedditOptions
from monitor.errors import SourceError
from monitor.model import Fetch, Post

CASSETTES = FIXTURES / "reddit"
NEW = "TestSubredditListings.test_new.json"
COMMENTS = "TestSubredditListings.test_comments.json"
COMMENTS_2023 = "TestSubredditStreams.test_comments__with_continue_after_id.json"
SEARCH = "TestSubreddit.test_search.json"
NOT_FOUND = "TestSubreddit.test_traffic__not_public.json"
FORBIDDEN = "TestRedditorListings.test_downvoted__other_user.json"
EMPTY = "TestListingGenerator.test_no_items.json"
THREAD = "TestMore.test_comments.json"
UNAUTHORIZED = "TestAuthImplicit.test_implicit__with_invalid_token.json"
CLIENT_ID, SECRET = "test-client-id", "s3cret-never-logged"
KEPT_HEADERS = ("content-type", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")


# --- the recordings, read without the code under test -------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def interactions(name: str) -> list[dict]:
    return json.loads((CASSETTES / name).read_text("utf-8"))["interactions"]


def recorded(name: str, index: int = -1) -> Answer:
    """One recorded response: its status, body and the headers praw reads (content type and
    Reddit's rate-limit headers, which ask for no wait in these recordings)."""
    response = interactions(name)[index]["response"]
    headers = {k: v[0] for k, v in response["headers"].items() if k.lower() in KEPT_HEADERS}
    return Answer(response["status"]["code"], response["body"]["string"].encode("utf-8"),
                  headers)


def listing(name: str, index: int = -1) -> dict:
    return json.loads(recorded(name, index).body)


def children(name: str) -> list[dict]:
    return listing(name)["data"]["children"]


def page_of(envelope: dict, items: list[dict], after: str | None,
            headers: dict[str, str]) -> Answer:
    """A recorded listing ``envelope`` holding only ``items`` (real children) and ``after``."""
    page = copy.deepcopy(envelope)
    page["data"].update(children=items, after=after)
    return Answer(200, json.dumps(page).encode(), headers)


def thread_page() -> dict:
    """The comment listing of the recorded thread page (/comments/3hahrw/: [post, comments])."""
    return json.loads(recorded(THREAD, 2).body)[1]


def thread_comments() -> list[dict]:
    """Every comment of the recorded thread, newest first, as /r/{sub}/comments lists them."""
    found: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("kind") == "t1":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(thread_page())
    return sorted(found, key=lambda c: (c["data"]["created_utc"], int(c["data"]["id"], 36)),
                  reverse=True)


def is_gone(data: dict) -> bool:
    return data["author"] == "[deleted]" or data.get("body") in ("[deleted]", "[removed]")


def when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- Reddit, replayed ---------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str


class Replay:
    """A real HTTP server on 127.0.0.1 answering as Reddit did.

    Answers are keyed by method, path (as Reddit: any case, trailing slash or not) and the
    ``after`` page key, and served in turn, the last one repeating; other query parameters are
    logged, not matched.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str, str | None], list[Answer]] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                replay.answer(self, "")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                replay.answer(self, self.rfile.read(length).decode("utf-8", "replace"))

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.answers.clear()
            self.seen.clear()
        self.on("POST", "/api/v1/access_token", recorded(NEW, 0))  # the recorded token

    def on(self, method: str, path: str, *answers: Answer, after: str | None = None) -> None:
        with self.lock:
            self.answers[(method, path.rstrip("/").lower(), after)] = list(answers)

    def listing(self, path: str, name: str, items: list[dict], sizes: list[int],
                last_after: str | None = None, envelope: dict | None = None) -> None:
        """Serve ``items`` (real children of recording ``name``) as pages of ``sizes``; the
        last page names ``last_after`` (served as the recorded empty listing)."""
        envelope = envelope or listing(name)
        headers = recorded(name).headers
        after, start = None, 0
        for number, size in enumerate(sizes):
            chunk = items[start:start + size]
            start += size
            is_last = number == len(sizes) - 1
            next_after = last_after if is_last else chunk[-1]["data"]["name"]
            self.on("GET", path, page_of(envelope, chunk, next_after, headers), after=after)
            after = next_after
        if last_after:
            self.on("GET", path, recorded(EMPTY), after=last_after)

    def gets(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET" and s.path == path.rstrip("/").lower()]

    def posts_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == path]

    def answer(self, handler: BaseHTTPRequestHandler, body: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/").lower()
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self.lock:
            self.seen.append(Seen(handler.command, path, query, dict(handler.headers.items()),
                                  body))
            queue = self.answers.get((handler.command, path, query.get("after")))
            answer = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        if answer is None:
            answer = Answer(599, b"no recording for this request")
        try:
            handler.send_response(answer.status)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(answer.body)))
            # A new connection per request: a kept-alive one that the server drops while the
            # client reuses it makes prawcore retry after a pause, which made timings flaky.
            handler.send_header("Connection", "close")
            handler.close_connection = True
            handler.end_headers()
            handler.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def _running_replay() -> Iterator[Replay]:
    running = Replay()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


@pytest.fixture
def reddit(_running_replay: Replay) -> Replay:
    _running_replay.reset()
    return _running_replay


@pytest.fixture(scope="module")
def http() -> Iterator[HttpClient]:
    with HttpClient("feedback-monitor-tests/1.0 (reddit)", retries=1, backoff=0.01,
                    max_retry_after=5) as client:
        yield client


def collector(replay: Replay, http: HttpClient, **options: object) -> RedditCollector:
    settings: dict[str, object] = {
        "client_id": CLIENT_ID, "client_secret": SECRET, "api_url": replay.base,
        "auth_url": replay.base, "timeout": 3, "backfill": "10000d", "comments": False,
        **options}
    return RedditCollector("reddit-test", RedditOptions(**settings), http)


def collect(replay: Replay, http: HttpClient, cursor: dict | None = None,
            **options: object) -> Fetch:
    return collector(replay, http, **options).collect(cursor)


def serve_new(replay: Replay, sub: str = "askreddit") -> list[dict]:
    """The recorded /r/askreddit/new page, then (its recorded ``after``) an empty page."""
    items = children(NEW)
    replay.listing(f"/r/{sub}/new", NEW, items, [len(items)], listing(NEW)["data"]["after"])
    return items


def assert_clean(post: Post) -> None:
    assert post.source == "reddit-test" and post.external_id[:3] in ("t1_", "t3_")
    assert post.published_at.utcoffset().total_seconds() == 0
    assert post.url.startswith(WEB + "/r/") and post.author and post.author != "[deleted]"
    assert post.text not in ("[deleted]", "[removed]")


# --- posts, cursor, paging ----------------------------------------------------------------


def test_first_pass_reads_new_posts_as_praw_asks_for_them(reddit: Replay,
                                                          http: HttpClient) -> None:
    items = serve_new(reddit)
    fetch = collect(reddit, http, subreddits=["r/AskReddit"])
    assert fetch.problems == ()
    expected = [c["data"] for c in items if not is_gone(c["data"])]
    assert [p.external_id for p in fetch.posts] == [d["name"] for d in expected]
    assert len(fetch.posts) == 100
    for post, data in zip(fetch.posts, expected, strict=True):
        assert_clean(post)
        assert post.url == WEB + data["permalink"] and post.author == data["author"]
        assert post.title == data["title"]  # as typed: "... live? & What was ..." included
        assert post.published_at == when(data["created_utc"])
        assert post.thread_id == post.external_id and post.parent_id is None
        assert not post.is_reply
        assert post.reach == max(0, data["score"] + data["num_comments"])
    assert [p.text for p in fetch.posts if p.text] == ["."]  # r/askreddit's only self text
    assert next(p for p in fetch.posts if p.text).external_id == "t3_48fax4"
    newest = max(expected, key=lambda d: (d["created_utc"], int(d["id"], 36)))
    assert fetch.cursor == {"listings": {"r/askreddit/new": {
        "fullname": newest["name"], "created": newest["created_utc"]}}}
    # What went over the wire: one app-only token, then the listing pages with the bearer.
    token = reddit.posts_to("/api/v1/access_token")
    assert len(token) == 1 and "grant_type=client_credentials" in token[0].body
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert token[0].headers["Authorization"] == f"Basic {basic}"
    pages = reddit.gets("/r/AskReddit/new")
    assert [p.query.get("after") for p in pages] == [None, listing(NEW)["data"]["after"]]
    assert pages[0].query["raw_json"] == "1" and pages[0].query["limit"] == "100"
    assert pages[0].headers["Authorization"] == "bearer <ACCESS_TOKEN>"
    assert pages[0].headers["User-Agent"].startswith(http.user_agent)


def test_second_pass_gets_only_what_is_new_and_stops_at_the_cursor(reddit: Replay,
                                                                  http: HttpClient) -> None:
    items = children(NEW)
    # The listing as it was a little earlier: the same real page without its 5 newest posts.
    reddit.listing("/r/askreddit/new", NEW, items[5:], [95])
    first = collect(reddit, http, subreddits=["askreddit"])
    assert len(first.posts) == 95
    reddit.reset()
    reddit.listing("/r/askreddit/new", NEW, items, [100])
    second = collect(reddit, http, first.cursor, subreddits=["askreddit"])
    assert [p.external_id for p in second.posts] == [c["data"]["name"] for c in items[:5]]
    assert len(reddit.gets("/r/askreddit/new")) == 1  # met the cursor on the first page
    reddit.reset()
    reddit.listing("/r/askreddit/new", NEW, items, [100])
    third = collect(reddit, http, second.cursor, subreddits=["askreddit"])
    assert third.posts == () and third.problems == () and third.cursor == second.cursor
    assert len(reddit.gets("/r/askreddit/new")) == 1


def test_paging_follows_after_to_the_end(reddit: Replay, http: HttpClient) -> None:
    items = children(NEW)
    reddit.listing("/r/askreddit/new", NEW, items, [40, 40, 20])  # slices of the real page
    fetch = collect(reddit, http, subreddits=["askreddit"])
    assert [p.external_id for p in fetch.posts] == [c["data"]["name"] for c in items]
    pages = reddit.gets("/r/askreddit/new")
    assert [p.query.get("after") for p in pages] == [
        None, items[39]["data"]["name"], items[79]["data"]["name"]]


def test_max_items_bounds_a_pass(reddit: Replay, http: HttpClient) -> None:
    items = serve_new(reddit)
    fetch = collect(reddit, http, subreddits=["askreddit"], max_items=30)
    assert [p.external_id for p in fetch.posts] == [c["data"]["name"] for c in items[:30]]
    pages = reddit.gets("/r/askreddit/new")
    assert len(pages) == 1 and pages[0].query["limit"] == "30"
    # A later pass that cannot reach its cursor within max_items says so.
    old = {"listings": {"r/askreddit/new": {"fullname": items[-1]["data"]["name"],
                                            "created": items[-1]["data"]["created_utc"]}}}
    later = collect(reddit, http, old, subreddits=["askreddit"], max_items=30)
    assert len(later.posts) == 30 and "max_items (30)" in later.problems[0]


def test_first_pass_reads_back_only_the_backfill_window(reddit: Replay,
                                                        http: HttpClient) -> None:
    items = serve_new(reddit)
    times = sorted({c["data"]["created_utc"] for c in items})
    cutoff = times[len(times) // 2] - 0.5  # between two recorded seconds
    expected = [c["data"]["name"] for c in items if c["data"]["created_utc"] >= cutoff]
    fetch = collect(reddit, http, subreddits=["askreddit"], backfill=time.time() - cutoff)
    assert 0 < len(expected) < 100
    assert [p.external_id for p in fetch.posts] == expected
    assert len(reddit.gets("/r/askreddit/new")) == 1


# --- comments --------------------------------------------------------------------------


def test_comments_keep_their_thread(reddit: Replay, http: HttpClient) -> None:
    reddit.on("GET", "/r/askreddit/new", recorded(EMPTY))
    items = children(COMMENTS)
    reddit.listing("/r/askreddit/comments", COMMENTS, items, [100],
                   listing(COMMENTS)["data"]["after"])
    fetch = collect(reddit, http, subreddits=["askreddit"], comments=True)
    assert fetch.problems == ()
    assert len(fetch.posts) == sum(1 for c in items if not is_gone(c["data"])) == 100
    for post, child in zip(fetch.posts, items, strict=True):
        data = child["data"]
        assert_clean(post)
        assert post.is_reply and post.external_id == data["name"]
        assert post.title == data["link_title"].strip() and post.thread_id == data["link_id"]
        assert post.parent_id == data["parent_id"]
        assert post.url == f"{WEB}/r/{data['subreddit']}/comments/{data['link_id'][3:]}/_/" \
                           f"{data['id']}/"  # 2016 listings carry no permalink
        assert post.reach == max(0, data["score"])  # /comments lists no replies
    text = {p.external_id: p.text for p in fetch.posts}  # markdown links become their text
    assert text["t1_d4y8abp"] == "Comic from The Oatmeal"
    assert text["t1_d4y8ax4"] == ("Or use a placeholder that both makes your seatbelt reminder "
                                  "not go off, *and* lets you open bottles.")
    assert "You can resubmit your post here without the textbox.\n\n*I am a bot" in \
        text["t1_d4y8b1f"]  # a link whose URL holds spaces
    assert set(fetch.cursor["listings"]) == {"r/askreddit/comments"}  # /new was empty
    assert len(reddit.gets("/r/askreddit/new")) == 1


def test_modern_comments_use_their_permalink(reddit: Replay, http: HttpClient) -> None:
    reddit.on("GET", "/r/testsub/new", recorded(EMPTY))
    items = children(COMMENTS_2023)
    assert listing(COMMENTS_2023)["data"]["after"] is None  # the last recorded page
    first = listing(COMMENTS_2023, 1)
    reddit.listing("/r/testsub/comments", COMMENTS_2023, first["data"]["children"], [100],
                   first["data"]["after"])
    fetch = collect(reddit, http, subreddits=["testsub"], comments=True)
    datas = [c["data"] for c in first["data"]["children"]]
    assert [p.url for p in fetch.posts] == [WEB + d["permalink"] for d in datas]
    assert all(p.title == d["link_title"] for p, d in zip(fetch.posts, datas, strict=True))
    assert "&shy;" in {p.title for p in fetch.posts}  # a title is shown as typed
    book = next(p for p in fetch.posts if p.external_id == "t1_k3woe15")
    assert book.text.startswith("**The Fifth Season (The Broken Earth #1) by N.K. Jemisin** "
                                "^((Matching 100% ☑️))\n\n^(468 pages")  # &#40; is "("
    assert len(items) == 95  # the other recorded page exists too, and is not needed


def test_comments_sharing_a_second_with_the_cursor(reddit: Replay, http: HttpClient) -> None:
    """r/askreddit gets several comments a second: the cursor's second is split by id, even
    when the cursor's own comment has since gone from the listing."""
    reddit.on("GET", "/r/askreddit/new", recorded(EMPTY))
    items = children(COMMENTS)
    created = [c["data"]["created_utc"] for c in items]
    k = next(k for k in range(1, 99) if created[k - 1] == created[k] == created[k + 1])
    reddit.listing("/r/askreddit/comments", COMMENTS, items[k:], [100 - k])
    first = collect(reddit, http, subreddits=["askreddit"], comments=True)
    assert first.cursor["listings"]["r/askreddit/comments"]["fullname"] == items[k]["data"]["name"]
    reddit.reset()
    reddit.on("GET", "/r/askreddit/new", recorded(EMPTY))
    reddit.listing("/r/askreddit/comments", COMMENTS, items[:k] + items[k + 1:], [99])
    second = collect(reddit, http, first.cursor, subreddits=["askreddit"], comments=True)
    assert [p.external_id for p in second.posts] == [c["data"]["name"] for c in items[:k]]


def test_deleted_and_removed_items_are_not_stored(reddit: Replay, http: HttpClient) -> None:
    reddit.on("GET", "/r/funny/new", recorded(EMPTY))
    comments = thread_comments()
    gone = [c["data"]["name"] for c in comments if is_gone(c["data"])]
    assert len(comments) == 476 and len(gone) == 16
    reddit.listing("/r/funny/comments", THREAD, comments, [100, 100, 100, 100, 76],
                   envelope=thread_page())
    fetch = collect(reddit, http, subreddits=["funny"], comments=True, max_items=1000)
    assert len(fetch.posts) == 460 and fetch.problems == ()
    assert not {p.external_id for p in fetch.posts} & set(gone)
    for post in fetch.posts:
        assert_clean(post)
    # Thread pages do carry replies: reach counts the direct ones.
    with_replies = next(c["data"] for c in comments
                        if isinstance(c["data"]["replies"], dict) and not is_gone(c["data"]))
    direct = sum(1 for r in with_replies["replies"]["data"]["children"] if r["kind"] == "t1")
    post = next(p for p in fetch.posts if p.external_id == with_replies["name"])
    assert direct > 0 and post.reach == max(0, with_replies["score"] + direct)
    # The newest comment was deleted; the cursor still starts from it.
    newest = comments[0]["data"]
    assert fetch.cursor["listings"]["r/funny/comments"]["fullname"] == newest["name"]


# --- search -------------------------------------------------------------------------------


def test_search_reads_reddit_wide_newest_first(reddit: Replay, http: HttpClient) -> None:
    # Recorded with sort=relevance (praw's own test); served here for our sort=new request.
    reddit.on("GET", "/r/all/search", recorded(SEARCH))
    fetch = collect(reddit, http, search=["praw oauth search"])
    items = children(SEARCH)
    assert [p.external_id for p in fetch.posts] == [c["data"]["name"] for c in items]
    text = next(p.text for p in fetch.posts if p.external_id == "t3_4at068")
    assert "\n* [reddit change] 'Users online' text adjusted; value fuzzed for low values; " \
           "added to JSON API : changelog\n" in text
    asked = reddit.gets("/r/all/search")[0].query
    assert asked["q"] == "praw oauth search" and asked["sort"] == "new" and asked["t"] == "all"
    newest = max(items, key=lambda c: c["data"]["created_utc"])["data"]
    assert fetch.cursor == {"listings": {"search:praw oauth search": {
        "fullname": newest["name"], "created": newest["created_utc"]}}}
    again = collect(reddit, http, fetch.cursor, search=["praw oauth search"])
    assert again.posts == ()


# --- rate limits and failures ---------------------------------------------------------------


TOO_MANY = b'{"message": "Too Many Requests", "error": 429}'


def test_429_with_retry_after_is_waited_out(reddit: Replay, http: HttpClient) -> None:
    # No cassette holds a 429: this one answer is made up, then the real page follows.
    page = recorded(NEW)
    reddit.on("GET", "/r/askreddit/new", Answer(429, TOO_MANY, {"Retry-After": "1"}), page)
    reddit.on("GET", "/r/askreddit/new", recorded(EMPTY), after=listing(NEW)["data"]["after"])
    started = time.monotonic()
    fetch = collect(reddit, http, subreddits=["askreddit"])
    assert time.monotonic() - started >= 1.0
    assert len(fetch.posts) == 100 and fetch.problems == ()
    assert [p.query.get("after") for p in reddit.gets("/r/askreddit/new")] == [
        None, None, listing(NEW)["data"]["after"]]


def test_429_asking_for_too_long_is_a_problem_not_a_wait(reddit: Replay,
                                                         http: HttpClient) -> None:
    serve_new(reddit)
    reddit.on("GET", "/r/all/search", Answer(429, TOO_MANY, {"Retry-After": "3600"}))
    started = time.monotonic()
    fetch = collect(reddit, http, subreddits=["askreddit"], search=["acme"])
    assert time.monotonic() - started < 1.0
    assert len(fetch.posts) == 100
    assert fetch.problems == ("search:acme: HTTP 429 rate limited; Reddit asks to wait 3600s",)
    assert set(fetch.cursor["listings"]) == {"r/askreddit/new"}


def test_503_is_retried_by_praw(reddit: Replay, http: HttpClient) -> None:
    unavailable = Answer(503, b"<html><body>all our servers are busy</body></html>",
                         {"Content-Type": "text/html"})
    reddit.on("GET", "/r/askreddit/new", unavailable, recorded(NEW))
    reddit.on("GET", "/r/askreddit/new", recorded(EMPTY), after=listing(NEW)["data"]["after"])
    fetch = collect(reddit, http, subreddits=["askreddit"])
    assert len(fetch.posts) == 100 and fetch.problems == ()
    assert len(reddit.gets("/r/askreddit/new")) == 3


def test_truncated_json_is_a_problem(reddit: Replay, http: HttpClient) -> None:
    serve_new(reddit)
    whole = recorded(COMMENTS)
    reddit.on("GET", "/r/askreddit/comments",
              Answer(200, whole.body[:len(whole.body) // 2], whole.headers))
    fetch = collect(reddit, http, subreddits=["askreddit"], comments=True)
    assert len(fetch.posts) == 100
    assert fetch.problems == ("r/askreddit/comments: HTTP 200 with a body that is not valid "
                              "JSON",)
    assert set(fetch.cursor["listings"]) == {"r/askreddit/new"}


def test_failing_page_keeps_earlier_pages_but_not_the_cursor(reddit: Replay,
                                                             http: HttpClient) -> None:
    items = children(NEW)
    reddit.listing("/r/askreddit/new", NEW, items, [50, 50])
    reddit.on("GET", "/r/askreddit/new", recorded(NOT_FOUND), after=items[49]["data"]["name"])
    old = {"listings": {"r/askreddit/new": {"fullname": "t3_1", "created": 1.0}}}
    fetch = collect(reddit, http, old, subreddits=["askreddit"])
    assert len(fetch.posts) == 50 and "HTTP 404" in fetch.problems[0]
    assert fetch.cursor == old  # the gap is read again next pass


def test_private_and_missing_subreddits_are_problems(reddit: Replay, http: HttpClient) -> None:
    serve_new(reddit)
    reddit.on("GET", "/r/private_one/new", recorded(FORBIDDEN))
    reddit.on("GET", "/r/gone_one/new", recorded(NOT_FOUND))
    fetch = collect(reddit, http, subreddits=["private_one", "askreddit", "gone_one"])
    assert len(fetch.posts) == 100
    assert fetch.problems == (
        "r/private_one/new: HTTP 403: a private or quarantined subreddit",
        "r/gone_one/new: HTTP 404: no such subreddit, or it is banned")


def test_every_listing_failing_fails_the_source(reddit: Replay, http: HttpClient) -> None:
    reddit.on("GET", "/r/private_one/new", recorded(FORBIDDEN))
    reddit.on("GET", "/r/gone_one/new", recorded(NOT_FOUND))
    with pytest.raises(SourceError) as failed:
        collect(reddit, http, subreddits=["private_one", "gone_one"])
    assert str(failed.value).startswith("reddit: every listing failed: r/private_one/new: "
                                        "HTTP 403")
    assert "r/gone_one/new: HTTP 404" in str(failed.value) and not failed.value.retryable


def test_missing_credentials_fail_that_source_only(reddit: Replay, http: HttpClient) -> None:
    for options in ({"client_id": None, "client_secret": None},
                    {"client_id": "", "client_secret": ""},
                    {"client_secret": None}):
        with pytest.raises(SourceError) as failed:
            collect(reddit, http, subreddits=["askreddit"], **options)
        assert "no client_id/client_secret: set REDDIT_CLIENT_ID" in str(failed.value)
        assert not failed.value.retryable
    assert reddit.seen == []


def test_refused_credentials_stop_the_source_without_showing_the_secret(
        reddit: Replay, http: HttpClient) -> None:
    # A recorded 401 from Reddit's API, served at the token endpoint.
    reddit.on("POST", "/api/v1/access_token", recorded(UNAUTHORIZED))
    serve_new(reddit)
    with pytest.raises(SourceError) as failed:
        collect(reddit, http, subreddits=["askreddit", "other"], search=["acme"])
    assert str(failed.value) == ("reddit: credentials refused (HTTP 401 from the token "
                                 "endpoint); check client_id/client_secret")
    assert SECRET not in str(failed.value) and not failed.value.retryable
    assert [s.method for s in reddit.seen] == ["POST"]  # not once per listing


def test_unknown_praw_site(reddit: Replay, http: HttpClient) -> None:
    with pytest.raises(SourceError, match="praw cannot start with praw.ini site 'no-such-site'"):
        collect(reddit, http, subreddits=["askreddit"], client_id=None, client_secret=None,
                praw_site="no-such-site")


# --- options and the whole pass -------------------------------------------------------------


def test_options_validate_and_normalise() -> None:
    options = RedditOptions(subreddits=["r/AskReddit", "/r/python/", "AskReddit"],
                            search=[" acme.com "], backfill="2h", client_id="",
                            client_secret=SECRET)
    assert options.subreddits == ["AskReddit", "python"] and options.search == ["acme.com"]
    assert options.backfill == 7200 and options.client_id is None
    assert SECRET not in repr(options) and options.comments is True
    assert RedditOptions(search=["x"]).backfill == 7 * 86400
    for bad, message in (({}, "give subreddits, search, or both"),
                         ({"subreddits": ["not a sub!"]}, "not a subreddit name"),
                         ({"search": ["  "]}, "query is empty"),
                         ({"search": ["x"], "backfill": "soon"}, "not a duration"),
                         ({"search": ["x"], "max_items": 0}, "greater than or equal to 1"),
                         ({"search": ["x"], "api_url": "not a url"}, "URL"),
                         ({"search": ["x"], "password": "p"}, "Extra inputs")):
        with pytest.raises(ValueError, match=message):
            RedditOptions(**bad)


def test_a_monitor_run_stores_reddit_posts_once(reddit: Replay, make_project,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    serve_new(reddit)
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", SECRET)
    config = make_project([{
        "name": "reddit-askreddit", "kind": "reddit", "subreddits": ["askreddit"],
        "comments": False, "backfill": "10000d", "timeout": 3,
        "client_id": "${REDDIT_CLIENT_ID}", "client_secret": "${REDDIT_CLIENT_SECRET}",
        "api_url": reddit.base, "auth_url": reddit.base}])
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "100 new posts" in first.output and SECRET not in first.output
    second = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    assert second.exit_code == 0 and "0 new posts" in second.output
    exported = runner.invoke(main, ["export", "posts", "--config", str(config), "--format",
                                    "jsonl"], catch_exceptions=False)
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(r["external_id"] for r in rows) == sorted(c["data"]["name"]
                                                            for c in children(NEW))
