"""Where requests may go: redirects stay on the source's host (or its ``allow_hosts``), never
from https to http, secrets never reach another origin, URLs found inside content are fetched
only on allowed hosts, and ``http.block_private`` refuses internal addresses.

Real servers on 127.0.0.1 throughout; two loopback servers are two origins (another port).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from conftest import fixture_bytes
from loopback import LoopbackServer, Route

from monitor.collectors.discourse import DiscourseCollector, DiscourseOptions
from monitor.collectors.http import (
    HttpClient,
    Refused,
    _egress_policy,
    _Policy,
    _Refusal,
    allowed_sites,
    site,
)
from monitor.collectors.rss import RssCollector, RssOptions
from monitor.errors import SourceError

pytestmark = pytest.mark.chaos

AGENT = "feedback-monitor-tests/1.0 (+https://example.invalid/tests)"


@pytest.fixture
def other() -> Iterator[LoopbackServer]:
    """A second server on 127.0.0.1: same host, another port, so another origin."""
    running = LoopbackServer()
    yield running
    running.close()


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient(AGENT, connect_timeout=2, read_timeout=2, retries=2,
                    sleep=lambda _: None) as made:
        yield made


def port_of(server: LoopbackServer) -> int:
    return server.httpd.server_address[1]


def test_redirect_to_another_port_is_refused(server: LoopbackServer, other: LoopbackServer,
                                             client: HttpClient) -> None:
    other.serve("/feed", body=b"internal")
    url = server.serve("/feed", status=302, headers={"Location": other.url("/feed")})
    with pytest.raises(Refused, match="another host than the source's") as caught:
        client.get(url)
    assert not caught.value.retryable
    assert other.hits("/feed") == []              # never asked
    assert len(server.hits("/feed")) == 1         # and not retried


def test_allow_hosts_lets_a_redirect_through_without_the_secrets(
        server: LoopbackServer, other: LoopbackServer, client: HttpClient) -> None:
    other.serve("/feed", body=b"moved")
    url = server.serve("/feed", status=302, headers={"Location": other.url("/feed")})
    secrets = {"Api-Key": "s3cret", "Api-Username": "system", "Authorization": "Bearer t0k"}
    response = client.get(url, headers=secrets, allow_hosts=[f"127.0.0.1:{port_of(other)}"])
    assert response.content == b"moved"
    assert set(server.hits("/feed")[0].headers) >= set(secrets)   # the home origin has them
    landed = other.hits("/feed")[0].headers
    assert not set(secrets) & set(landed)                          # another port: none


def test_secrets_stay_on_a_same_origin_redirect(server: LoopbackServer,
                                                client: HttpClient) -> None:
    server.serve("/old", status=301, headers={"Location": "/new"})
    server.serve("/new", body=b"ok")
    client.get(server.url("/old"), headers={"Api-Key": "s3cret"})
    assert server.hits("/new")[0].headers["Api-Key"] == "s3cret"


def request(url: str, home: str, secrets: tuple[str, ...] = (), **headers: str) -> httpx.Request:
    policy = _Policy(home, allowed_sites(home), secrets)
    return httpx.Request("GET", url, headers=headers, extensions={"monitor_egress": policy})


def test_https_to_http_is_refused() -> None:
    """No TLS server here: the rule the client applies to every request (redirects included),
    on requests as httpx builds them."""
    with pytest.raises(_Refusal, match="from https to http"):
        _egress_policy(request("http://example.com/feed", "https://example.com/feed"))
    with pytest.raises(_Refusal, match="from https to http"):
        _egress_policy(request("http://example.com:443/feed", "https://example.com/feed"))
    upgraded = request("https://www.example.com/feed", "http://example.com/feed", ("Api-Key",),
                       **{"Api-Key": "k", "Authorization": "Basic x", "Accept": "*/*"})
    _egress_policy(upgraded)  # http -> https on the same site is fine, but another origin:
    assert "Api-Key" not in upgraded.headers and "Authorization" not in upgraded.headers
    assert upgraded.headers["Accept"] == "*/*"


def test_sites() -> None:
    assert site("https://WWW.Example.com/feed") == site("http://example.com:80/") \
        == "example.com"
    assert site("http://127.0.0.1:8080/") == "127.0.0.1:8080" != site("http://127.0.0.1:9090")
    assert site("http://[::1]:8080/x") == "[::1]:8080"
    assert allowed_sites("https://a.example/feed", ["cdn.example", "b.example:8443"]) == \
        frozenset({"a.example", "cdn.example", "b.example:8443"})


def test_block_private_refuses_loopback(server: LoopbackServer) -> None:
    url = server.serve("/feed", body=b"internal")
    sleeps: list[float] = []
    with HttpClient(AGENT, retries=3, block_private=True, sleep=sleeps.append) as guarded:
        with pytest.raises(Refused, match="127.0.0.1 is 127.0.0.1, a private, loopback") as caught:
            guarded.get(url)
        with pytest.raises(Refused, match="private"):
            guarded.get(url.replace("127.0.0.1", "localhost"))  # refused after DNS, too
    assert not caught.value.retryable and sleeps == []
    assert server.hits("/feed") == []
    with HttpClient(AGENT) as default:  # off by default: the tests themselves use loopback
        assert default.get(url).content == b"internal"


COMMENTED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:wfw="http://wellformedweb.org/CommentAPI/">
<channel><title>blog</title><link>{home}/</link>
<item><title>A post</title><link>{home}/post/</link><guid>{home}/?p=1</guid>
<description>hello</description><wfw:commentRss>{comments}</wfw:commentRss></item>
</channel></rss>"""


def test_comment_feed_on_another_host_is_not_fetched(server: LoopbackServer,
                                                     other: LoopbackServer,
                                                     client: HttpClient) -> None:
    elsewhere = other.serve("/comments", body=fixture_bytes("e2e/comments-v1.xml"))
    url = server.serve("/feed", body=COMMENTED.format(home=server.base,
                                                      comments=elsewhere).encode())
    options = RssOptions(url=url, follow_comments=True)
    fetch = RssCollector("blog", options, client).collect(None)
    assert other.hits("/comments") == []
    assert [p for p in fetch.problems if "is on another host; not followed" in p]
    assert fetch.cursor["comments"] == {}
    allowed = RssOptions(url=url, follow_comments=True,
                         allow_hosts=[f"127.0.0.1:{port_of(other)}"])
    again = RssCollector("blog", allowed, client).collect(None)
    assert len(other.hits("/comments")) == 1 and list(again.cursor["comments"]) == [elsewhere]


def test_discourse_api_key_never_reaches_another_port(server: LoopbackServer,
                                                      other: LoopbackServer,
                                                      client: HttpClient) -> None:
    other.serve("/posts.json", body=json.dumps({"latest_posts": []}).encode())
    server.serve("/posts.json", status=307, headers={"Location": other.url("/posts.json")})
    options = DiscourseOptions(url=server.base, api_key="k3y", api_username="system")
    with pytest.raises(SourceError, match="refused"):
        DiscourseCollector("forum", options, client).collect(None)
    assert other.hits("/posts.json") == []
    allowed = DiscourseOptions(url=server.base, api_key="k3y", api_username="system",
                               allow_hosts=[f"127.0.0.1:{port_of(other)}"])
    DiscourseCollector("forum", allowed, client).collect(None)
    (landed,) = other.hits("/posts.json")
    assert "Api-Key" not in landed.headers and "Api-Username" not in landed.headers
    assert server.hits("/posts.json")[-1].headers["Api-Key"] == "k3y"


def test_forum_next_page_on_another_port_is_not_followed(
        server: LoopbackServer, other: LoopbackServer, client: HttpClient) -> None:
    from monitor.collectors.forum import ForumCollector, ForumOptions

    page = ("<html><body><div class='post' id='p1'><span class='who'>Ann</span>"
            "<div class='body'>first</div></div>"
            f"<a rel='next' href='{other.url('/thread?page=2')}'>next</a></body></html>")
    other.serve("/thread?page=2", body=b"<html><body>elsewhere</body></html>")
    url = server.serve("/thread", Route(page.encode(), headers={"Content-Type": "text/html"}))
    options = ForumOptions(url=url, selectors={"post": "div.post", "body": "div.body",
                                               "author": ".who", "next": "a[rel=next]"},
                           robots=False, delay=0)
    fetch = ForumCollector("forum", options, client).collect(None)
    assert [p.text for p in fetch.posts] == ["first"]
    assert other.requests == []
    assert any("is on another host; not followed" in p for p in fetch.problems)


def test_reddit_token_request_follows_no_redirect(other: LoopbackServer) -> None:
    """The token POST carries the app's id and secret (HTTP Basic); a redirect from the token
    endpoint is a failure, never a second request somewhere else."""
    from test_reddit import CLIENT_ID, SECRET, Answer, Replay

    from monitor.collectors.reddit import RedditCollector, RedditOptions

    reddit = Replay()
    try:
        reddit.reset()
        reddit.on("POST", "/api/v1/access_token",
                  Answer(307, b"", {"Location": other.url("/api/v1/access_token")}))
        options = RedditOptions(subreddits=["test"], client_id=CLIENT_ID, client_secret=SECRET,
                                api_url=reddit.base, auth_url=reddit.base, timeout=2)
        with HttpClient(AGENT, retries=0) as http, pytest.raises(SourceError) as caught:
            RedditCollector("reddit", options, http).collect(None)
        assert "307" in str(caught.value) and SECRET not in str(caught.value)
        assert other.requests == []
        assert "Authorization" in reddit.posts_to("/api/v1/access_token")[0].headers
    finally:
        reddit.httpd.shutdown()
        reddit.httpd.server_close()
