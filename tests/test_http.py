"""The shared HTTP client against a real HTTP server on 127.0.0.1 (tests/loopback.py).

No mocks: every test sends real requests. Sleeps between retries are recorded instead of
slept (``HttpClient(sleep=...)``), so the retry tests assert the waits and stay fast.
"""

from __future__ import annotations

import gzip
import socket
import time
from datetime import UTC, datetime

import pytest
from loopback import LoopbackServer, Route

from monitor.collectors.http import HttpClient, redact, retry_after_seconds
from monitor.errors import SourceError

MB = 1024 * 1024
AGENT = "feedback-monitor-tests/1.0 (+https://example.invalid/tests)"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(sleeps: list[float]):
    """An HttpClient with small timeouts whose retry waits land in ``sleeps``."""
    made: list[HttpClient] = []

    def make(**options: object) -> HttpClient:
        settings: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 2.0,
                                       "retries": 2, "backoff": 0.5, "sleep": sleeps.append}
        client = HttpClient(AGENT, **{**settings, **options})  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def closed_port() -> int:
    """A loopback port nobody listens on: bound, noted, closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- plain GET ---------------------------------------------------------------------------


def test_200_returns_body_and_headers(server: LoopbackServer, make_client) -> None:
    body = b"<rss version='2.0'><channel/></rss>"
    url = server.serve("/feed", body=body, headers={"Content-Type": "application/rss+xml",
                                                    "X-Extra": "yes"})
    response = make_client().get(url)
    assert response.status == 200
    assert response.content == body
    assert response.url == url
    assert response.headers["content-type"] == "application/rss+xml"
    assert response.headers["x-extra"] == "yes"
    assert not response.not_modified


def test_sends_user_agent_and_extra_headers(server: LoopbackServer, make_client) -> None:
    url = server.serve("/ua", body=b"ok")
    make_client().get(url, headers={"Accept": "application/rss+xml"})
    (seen,) = server.hits("/ua")
    assert seen.headers["User-Agent"] == AGENT
    assert seen.headers["Accept"] == "application/rss+xml"
    assert "If-None-Match" not in seen.headers
    assert "If-Modified-Since" not in seen.headers


def test_follows_redirects_and_reports_final_url(server: LoopbackServer, make_client) -> None:
    server.serve("/old", status=301, headers={"Location": "/new"})
    new = server.serve("/new", body=b"moved here")
    response = make_client().get(server.url("/old"))
    assert (response.status, response.content, response.url) == (200, b"moved here", new)


def test_redirect_loop_is_an_error(server: LoopbackServer, make_client, sleeps) -> None:
    url = server.serve("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(SourceError, match="too many redirects") as caught:
        make_client().get(url)
    assert not caught.value.retryable
    assert sleeps == []


def test_a_redirect_without_location_is_an_http_failure(server: LoopbackServer, make_client,
                                                         sleeps) -> None:
    """It was handed on as an empty answer: "not a readable feed (...; empty response)"."""
    url = server.serve("/nowhere", status=302)
    with pytest.raises(SourceError, match="HTTP 302 Found without a Location") as caught:
        make_client().get(url)
    assert not caught.value.retryable
    assert sleeps == []


# --- conditional GET ---------------------------------------------------------------------

STAMP = "Wed, 21 Oct 2015 07:28:00 GMT"


def test_if_none_match_gets_304(server: LoopbackServer, make_client) -> None:
    url = server.serve("/c", body=b"feed", etag='"v1"', last_modified=STAMP)
    client = make_client()
    first = client.get(url)
    assert first.headers["etag"] == '"v1"'
    assert first.headers["last-modified"] == STAMP
    again = client.get(url, etag='"v1"')
    assert again.not_modified and again.status == 304 and again.content == b""
    assert server.hits("/c")[1].headers["If-None-Match"] == '"v1"'


def test_if_modified_since_gets_304(server: LoopbackServer, make_client) -> None:
    url = server.serve("/c", body=b"feed", last_modified=STAMP)
    again = make_client().get(url, last_modified=STAMP)
    assert again.not_modified
    assert server.hits("/c")[0].headers["If-Modified-Since"] == STAMP


def test_stale_validator_gets_the_body(server: LoopbackServer, make_client) -> None:
    url = server.serve("/c", body=b"new feed", etag='"v2"')
    response = make_client().get(url, etag='"v1"', last_modified=STAMP)
    assert response.status == 200 and response.content == b"new feed"
    seen = server.hits("/c")[0].headers
    assert (seen["If-None-Match"], seen["If-Modified-Since"]) == ('"v1"', STAMP)


# --- retries -----------------------------------------------------------------------------


def test_500_then_200_retries_with_backoff(server: LoopbackServer, make_client, sleeps) -> None:
    url = server.serve("/flaky", Route(b"oops", status=500), Route(b"oops", status=502),
                       Route(b"finally"))
    response = make_client(retries=2, backoff=0.5).get(url)
    assert response.content == b"finally"
    assert sleeps == [0.5, 1.0]  # backoff * 2**attempt
    assert len(server.hits("/flaky")) == 3


def test_503_forever_gives_up_after_retries_plus_one(server: LoopbackServer, make_client,
                                                      sleeps) -> None:
    url = server.serve("/down", body=b"maintenance", status=503)
    with pytest.raises(SourceError) as caught:
        make_client(retries=2).get(url)
    message = str(caught.value)
    assert "HTTP 503" in message and "3 tries" in message and url in message
    assert caught.value.retryable
    assert len(server.hits("/down")) == 3
    assert sleeps == [0.5, 1.0]


def test_no_retries_gives_up_after_1_try(server: LoopbackServer, make_client,
                                         sleeps) -> None:
    url = server.serve("/down", body=b"maintenance", status=503)
    with pytest.raises(SourceError) as caught:
        make_client(retries=0).get(url)
    assert str(caught.value) == f"HTTP 503 from {url} (gave up after 1 try)"
    assert sleeps == []


def test_own_backoff_is_capped_not_mistaken_for_a_server_request(
        server: LoopbackServer, make_client, sleeps) -> None:
    url = server.serve("/down", status=500)
    with pytest.raises(SourceError) as caught:
        make_client(retries=3, backoff=40, max_retry_after=60).get(url)
    assert "4 tries" in str(caught.value)
    assert "asks to wait" not in str(caught.value)
    assert sleeps == [40, 60, 60]
    assert len(server.hits("/down")) == 4


def test_429_honours_retry_after_seconds(server: LoopbackServer, make_client, sleeps) -> None:
    url = server.serve("/limited", Route(b"slow down", status=429, headers={"Retry-After": "2"}),
                       Route(b"ok"))
    assert make_client().get(url).content == b"ok"
    assert sleeps == [2.0]
    assert len(server.hits("/limited")) == 2


def test_429_retry_after_as_http_date(server: LoopbackServer, make_client, sleeps) -> None:
    soon = datetime.fromtimestamp(time.time() + 5, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    url = server.serve("/limited", Route(status=429, headers={"Retry-After": soon}),
                       Route(b"ok"))
    assert make_client().get(url).content == b"ok"
    (waited,) = sleeps
    assert 2.0 <= waited <= 5.0


def test_429_asking_too_long_fails_at_once(server: LoopbackServer, make_client, sleeps) -> None:
    url = server.serve("/limited", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(SourceError) as caught:
        make_client(retries=3, max_retry_after=60).get(url)
    message = str(caught.value)
    assert "HTTP 429" in message and "3600s" in message and "60s" in message
    assert sleeps == []
    assert len(server.hits("/limited")) == 1


def test_retry_after_parsing() -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 7 ", now) == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30.0
    assert retry_after_seconds("Wednesday, 21-Oct-15 07:29:00 GMT", now) == 60.0  # RFC 850
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0  # in the past
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10", now) == 10.0  # no zone: UTC
    for junk in (None, "", "soon", "1.5", "-3", "Wed, 99 Oct 2015 07:28:00 GMT"):
        assert retry_after_seconds(junk, now) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_are_not_retried(server: LoopbackServer, make_client, sleeps,
                                       status: int) -> None:
    url = server.serve("/gone", body=b"no", status=status)
    with pytest.raises(SourceError, match=f"HTTP {status}") as caught:
        make_client(retries=3).get(url)
    assert not caught.value.retryable
    assert len(server.hits("/gone")) == 1
    assert sleeps == []


def test_404_message_names_the_url(server: LoopbackServer, make_client) -> None:
    with pytest.raises(SourceError, match="HTTP 404 Not Found") as caught:
        make_client().get(server.url("/nothing-here"))
    assert server.url("/nothing-here") in str(caught.value)


# --- network failures --------------------------------------------------------------------


def test_timeout(server: LoopbackServer, make_client) -> None:
    url = server.serve("/slow", body=b"late", delay=1.5)
    started = time.monotonic()
    with pytest.raises(SourceError, match="timed out") as caught:
        make_client(read_timeout=0.3, retries=0).get(url)
    assert time.monotonic() - started < 1.2
    assert caught.value.retryable


def test_connection_refused(make_client, sleeps) -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed"
    with pytest.raises(SourceError, match="cannot connect") as caught:
        make_client(retries=1).get(url)
    assert "2 tries" in str(caught.value)
    assert sleeps == [0.5]


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://127.0.0.1/feed", "not a usable URL"), ("javascript:alert(1)", "not a usable URL"),
    ("/relative/feed", "not a usable URL"), ("http://[broken/feed", "not a valid URL")])
def test_unusable_urls_fail_at_once(make_client, sleeps, url: str, reason: str) -> None:
    """Feeds name URLs (wfw:commentRss); a bad one is an error, never worth a retry."""
    with pytest.raises(SourceError, match=reason) as caught:
        make_client(retries=3).get(url)
    assert not caught.value.retryable
    assert sleeps == []


def test_redirect_to_another_scheme_fails_at_once(server: LoopbackServer, make_client,
                                                  sleeps) -> None:
    url = server.serve("/away", status=302, headers={"Location": "ftp://127.0.0.1/feed"})
    with pytest.raises(SourceError, match="not a usable URL"):
        make_client(retries=3).get(url)
    assert len(server.hits("/away")) == 1 and sleeps == []


# --- size cap ----------------------------------------------------------------------------


def test_declared_body_over_cap_is_refused(server: LoopbackServer, make_client) -> None:
    url = server.serve("/huge", body=b"x" * (50 * MB))
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        make_client(max_bytes=MB).get(url)
    message = str(caught.value)
    assert f"{50 * MB} bytes" in message and f"{MB}-byte cap" in message
    assert not caught.value.retryable
    assert time.monotonic() - started < 2.0
    assert len(server.hits("/huge")) == 1  # a cap is not worth a retry


def test_streamed_body_over_cap_stops_reading(server: LoopbackServer, make_client) -> None:
    # 100 GB with no Content-Length: only stopping early can finish in time.
    url = server.serve("/endless", stream_bytes=100 * 1024 * MB)
    started = time.monotonic()
    with pytest.raises(SourceError, match=f"over the {MB}-byte cap") as caught:
        make_client(max_bytes=MB).get(url)
    assert time.monotonic() - started < 5.0
    assert not caught.value.retryable


def test_cap_applies_to_decompressed_size(server: LoopbackServer, make_client) -> None:
    bomb = gzip.compress(b"\0" * (20 * MB))  # ~20 KB on the wire
    url = server.serve("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(SourceError, match=f"over the {MB}-byte cap"):
        make_client(max_bytes=MB).get(url)


def test_body_under_cap_is_whole(server: LoopbackServer, make_client) -> None:
    body = bytes(range(256)) * 4000  # ~1 MB, under a 2 MB cap
    url = server.serve("/fine", body=body)
    assert make_client(max_bytes=2 * MB).get(url).content == body


# --- secrets -----------------------------------------------------------------------------


def test_redact_hides_credentials() -> None:
    assert redact("https://user:hunter2@example.com:8443/feed?api_key=S3CR3T&page=2&token=T0K"
                  "#frag") == "https://example.com:8443/feed?api_key=***&page=2&token=***"
    assert redact("https://example.com/rss?access_token=a&client_secret=b&sig=c&q=angry") \
        == "https://example.com/rss?access_token=***&client_secret=***" \
        "&sig=***&q=angry"
    assert redact("http://[::1]:8080/feed?password=p") == "http://[::1]:8080/feed?password=***"
    assert redact("https://example.com/plain") == "https://example.com/plain"


@pytest.mark.parametrize("failure", ["404", "503", "timeout", "refused", "cap"])
def test_error_messages_never_carry_secrets(server: LoopbackServer, make_client,
                                            failure: str) -> None:
    path = "/feed?api_key=S3CR3TKEY&token=T0KEN&page=2"
    routes = {"404": Route(status=404), "503": Route(status=503),
              "timeout": Route(b"late", delay=1.0), "cap": Route(b"x" * (2 * MB))}
    if failure in routes:
        server.serve(path, routes[failure])
    port = closed_port() if failure == "refused" else server.httpd.server_address[1]
    url = f"http://reader:hunter2@127.0.0.1:{port}{path}"
    with pytest.raises(SourceError) as caught:
        make_client(retries=1, read_timeout=0.3, max_bytes=MB).get(url)
    message = str(caught.value)
    for secret in ("S3CR3TKEY", "T0KEN", "hunter2", "reader"):
        assert secret not in message
    assert f"127.0.0.1:{port}/feed?" in message and "page=2" in message


ROBOTS = b"""User-agent: *
Disallow: /private/
Crawl-delay: 2

User-agent: {agent}
Disallow: /members/
"""


def test_robots_txt_disallow_is_refused_and_read_once(server: LoopbackServer,
                                                       make_client) -> None:
    server.serve("/robots.txt", body=ROBOTS.replace(b"{agent}", AGENT.split("/")[0].encode()))
    server.serve("/members/list", body=b"secret")
    server.serve("/public/thread", body=b"ok")
    client = make_client()
    with pytest.raises(SourceError, match="robots.txt disallows") as caught:
        client.get(server.url("/members/list"), robots=True)
    assert not caught.value.retryable
    assert client.get(server.url("/public/thread"), robots=True).content == b"ok"
    assert server.hits("/members/list") == []          # never requested
    assert len(server.hits("/robots.txt")) == 1        # cached for the client's life
    assert client.get(server.url("/members/list")).content == b"secret"  # APIs: opt-in only


def test_missing_robots_allows_and_broken_robots_disallows(server: LoopbackServer,
                                                            make_client) -> None:
    server.serve("/page", body=b"ok")
    assert make_client().get(server.url("/page"), robots=True).content == b"ok"  # 404
    server.serve("/robots.txt", status=503)
    with pytest.raises(SourceError, match="robots.txt disallows"):
        make_client(retries=0).get(server.url("/page"), robots=True)


def test_requests_to_one_host_are_spaced(server: LoopbackServer, make_client, sleeps) -> None:
    server.serve("/robots.txt", body=b"User-agent: *\nCrawl-delay: 3\n")
    server.serve("/a", body=b"a")
    client = make_client()
    for _ in range(3):
        client.get(server.url("/a"), delay=0.5)
    # The injected sleep does not wait, so each slot is 0.5 s after the one before.
    assert sleeps == pytest.approx([0.5, 1.0], abs=0.1)
    sleeps.clear()
    for _ in range(2):
        client.get(server.url("/a"), robots=True)   # robots' Crawl-delay asks for more
    assert sleeps[1] - sleeps[0] == pytest.approx(3.0, abs=0.1)


def test_own_headers_never_follow_a_redirect_to_another_host(server: LoopbackServer,
                                                              make_client) -> None:
    port = server.base.rsplit(":", 1)[1]
    server.serve("/same", status=302, headers={"Location": "/landing"})
    server.serve("/away", status=302, headers={"Location": f"http://localhost:{port}/landing"})
    server.serve("/landing", body=b"ok")
    client = make_client()
    client.get(server.url("/same"), headers={"Api-Key": "s3cret"})
    assert server.hits("/landing")[-1].headers.get("Api-Key") == "s3cret"  # same host: kept
    client.get(server.url("/away"), headers={"Api-Key": "s3cret"},
               allow_hosts=[f"localhost:{port}"])
    landed = server.hits("/landing")[-1].headers
    assert landed.get("Host", "").startswith("localhost") and "Api-Key" not in landed
