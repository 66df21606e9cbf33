"""The HTML forum collector against a real HTTP server serving real saved thread pages.

Oracles that do not come from the code under test: post ids, authors and times read out of
the saved pages with regular expressions (tests/fixtures/forums/, see its README), and
hand-written expectations for URLs and dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup
from conftest import FIXTURES
from loopback import LoopbackServer, Route
from pydantic import ValidationError

from monitor.collectors.forum import ForumCollector, ForumOptions
from monitor.collectors.forum_page import text_time
from monitor.collectors.forum_urls import clean_url, thread_url
from monitor.collectors.http import HttpClient
from monitor.config import load
from monitor.errors import ConfigError, SourceError
from monitor.model import Fetch

FORUMS = FIXTURES / "forums"
MYOOS = FORUMS / "phpbb" / "foren.myoos.de.html"
FORUMOTION = FORUMS / "phpbb" / "wolfsrebellen-netz.forumieren.com.regeln.html"
KATZEN = FORUMS / "xenforo" / "katzen-forum.net-Pepe.html"
VILLAGERS = FORUMS / "xenforo" / "villagersandheroes.com.forums.patchnotes.html"
POCKETPC = FORUMS / "vbulletin" / "pocketpc.ch.auslieferung.html"

VB_THREAD = "/windows-phone-7-allgemein/122760-microsoft-beginnt-auslieferung-vorbereitungsupdate"
PAGE34, PAGE35, PAGE36 = (f"{VB_THREAD}-{n}.html" for n in (34, 35, 36))
TAG = re.compile(r"<\s*/?\s*(a|b|blockquote|br|div|img|p|script|span|strong|font)\b[^>]*>", re.I)


@pytest.fixture
def waits() -> list[float]:
    """What the client would have slept (per-host spacing, retry backoff, Retry-After)."""
    return []


@pytest.fixture
def http(waits: list[float]) -> Iterator[HttpClient]:
    """A fresh client per test: robots.txt is cached per client, and so is host spacing."""
    with HttpClient("feedback-monitor-tests/1.0", connect_timeout=2, read_timeout=2,
                    retries=1, backoff=0.25, sleep=waits.append) as client:
        yield client


def collect(http: HttpClient, url: str, cursor: dict | None = None, **options: object) -> Fetch:
    options.setdefault("delay", 0)
    return ForumCollector("forum", ForumOptions(url=url, **options), http).collect(cursor)


def text(path: Path) -> str:
    data = path.read_bytes()
    return data.decode("cp1252") if path == POCKETPC else data.decode("utf-8")


def xenforo_oracle(path: Path) -> list[tuple[str, str, datetime]]:
    """(data-content id, data-author, data-time) of each post, by regex over the page."""
    posts = []
    for chunk in text(path).split('<article class="message message--post')[1:]:
        posts.append((re.search(r'data-content="([^"]+)"', chunk)[1],
                      re.search(r'data-author="([^"]+)"', chunk)[1],
                      datetime.fromtimestamp(int(re.search(r'data-time="(\d+)"', chunk)[1]),
                                             UTC)))
    return posts


def pocketpc_oracle() -> list[tuple[str, str, datetime]]:
    """(id, author, time) of each vBulletin postbit; its dates are dd.mm.yyyy, hh:mm."""
    posts = []
    for chunk in text(POCKETPC).split('<li class="postbit')[1:]:
        when = re.search(r"<dd>\s*(\d\d\.\d\d\.\d{4},)&nbsp;(\d\d:\d\d)", chunk)
        posts.append((re.match(r'[^>]*id="(post_\d+)"', chunk)[1],
                      re.search(r'<a class="username [^"]*"[^>]*>\s*<strong>([^<]+)', chunk)[1],
                      datetime.strptime(when[1] + when[2], "%d.%m.%Y,%H:%M")
                      .replace(tzinfo=UTC)))
    return posts


def pocketpc_page(server: LoopbackServer, renumber: bool = False, next_to: str | None = None
                  ) -> bytes:
    """The vBulletin page with its <base href> (and so its absolute links) on loopback.

    ``renumber`` makes it a different page of the same thread (other post ids, canonical
    ``-35``); ``next_to`` sets where its rel="next" links point (None: drops them).
    """
    data = POCKETPC.read_bytes().replace(b"https://www.pocketpc.ch/", server.base.encode() + b"/")
    if renumber:
        data = re.sub(rb"post(_message_|_|count|)949(\d\d\d)", rb"post\g<1>959\2", data)
        data = data.replace(b"-34.html", b"-35.html")
    else:
        data = data.replace(b"-35.html", b"-3X.html")  # only the next links name page 35
    nexts = re.compile(rb'(rel="next" href=")[^"]*-3[5X]\.html[^"]*"')
    if next_to is None:
        return nexts.sub(b'rel="prev" href="/elsewhere"', data)
    return nexts.sub(rb"\g<1>" + next_to.encode() + b'"', data)


# --- one page of each engine, checked against the page itself ---------------------------


def test_phpbb_prosilver_single_post(server: LoopbackServer, http: HttpClient) -> None:
    html = text(MYOOS)
    ids = re.findall(r'<div id="(p\d+)" class="post ', html)
    written = re.search(r"&raquo; </span>(\d\d\.\d\d\.\d{4}, \d\d:\d\d)", html)[1]
    url = server.serve("/viewtopic.php?t=167", body=MYOOS.read_bytes())
    fetch = collect(http, url, engine="phpbb", timezone="Europe/Berlin")
    assert [p.external_id for p in fetch.posts] == ids == ["p453"]
    post = fetch.posts[0]
    assert post.author == "r23"
    berlin = datetime.strptime(written, "%d.%m.%Y, %H:%M").replace(tzinfo=ZoneInfo("Europe/Berlin"))
    assert post.published_at == berlin.astimezone(UTC)
    assert post.published_at.tzinfo == UTC and post.published_at.hour == 4  # 05:42 CET
    assert post.title == "Was ist Freie Software"
    assert post.thread_id == "https://foren.myoos.de/viewtopic.php?t=167"  # canonical link
    assert post.url == server.url("/viewtopic.php?p=453#p453")  # sid= dropped
    assert not post.is_reply and post.parent_id is None  # the opening post
    assert post.text.startswith("Was ist Freie Software und warum ist sie wichtig?\n\nvon Georg")
    assert not TAG.search(post.text)
    assert fetch.problems == ()


def test_forumotion_broken_markup_and_sponsored_placeholder(server: LoopbackServer,
                                                            http: HttpClient) -> None:
    html = text(FORUMOTION)
    containers = re.findall(r'<div id="(p\d+)" class="post ', html)
    sponsored = re.findall(r'<p class="author">[^<]*<img[^>]*>&nbsp;von&nbsp;Gesponserte Inhalte',
                           html)
    dates = re.findall(r" am (\d\d/\d\d/\d\d, \d\d:\d\d [ap]m)</p>", html)
    assert len(containers) == 4 and len(sponsored) == 1 and len(dates) == 3
    url = server.serve("/t7-forums-regeln", body=FORUMOTION.read_bytes())
    fetch = collect(http, url, engine="phpbb")
    assert [p.external_id for p in fetch.posts] == containers[:3] == ["p7", "p655", "p702"]
    assert [p.published_at for p in fetch.posts] == [
        datetime.strptime(d, "%d/%m/%y, %I:%M %p").replace(tzinfo=UTC) for d in dates]
    assert {p.author for p in fetch.posts} == {"lupa"}
    # The first post's container is closed early by the parser; its parts are found after it.
    assert fetch.posts[0].text.startswith("Forums - Regeln\n\nWir pflegen hier")
    assert [p.url for p in fetch.posts] == [server.url(f"/t7-forums-regeln#{n}")
                                            for n in (7, 655, 702)]
    assert [p.is_reply for p in fetch.posts] == [False, True, True]
    assert {p.thread_id for p in fetch.posts} == {
        "https://wolfsrebellen-netz.forumieren.com/t7-forums-regeln"}
    assert fetch.problems == ()


@pytest.mark.parametrize("page", [KATZEN, VILLAGERS], ids=["katzen", "villagers"])
def test_xenforo_posts_authors_and_times(server: LoopbackServer, http: HttpClient,
                                         page: Path) -> None:
    expected = xenforo_oracle(page)
    url = server.serve("/threads/x.1/", body=page.read_bytes())
    fetch = collect(http, url, engine="xenforo")
    assert [(p.external_id, p.author, p.published_at) for p in fetch.posts] == expected
    assert len(expected) == (18 if page == KATZEN else 9)
    assert all(p.published_at.tzinfo == UTC for p in fetch.posts)
    assert all(p.text and not TAG.search(p.text) for p in fetch.posts)
    h1 = re.search(r'<h1 class="p-title-value">(.*?)</h1>', text(page), re.S)[1]
    assert {p.title for p in fetch.posts} == {" ".join(unescape(re.sub(r"<[^>]+>", " ", h1))
                                                       .split())}
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', text(page))[1]
    assert {p.thread_id for p in fetch.posts} == {canonical}
    assert [p.parent_id for p in fetch.posts] == [None] + [canonical] * (len(expected) - 1)
    assert fetch.posts[1].url == server.url(
        re.search(r'<a href="([^"]+/post-\d+)"', text(page).split(expected[1][0], 1)[1])[1])
    assert fetch.problems == ()


def test_xenforo_counts_and_quotes(server: LoopbackServer, http: HttpClient) -> None:
    html = text(KATZEN)
    authors = {author for _, author, _ in xenforo_oracle(KATZEN)}
    assert len(authors) == 7  # (an 8th data-author on the page is a "similar thread" link)
    assert html.count("Zum Vergrößern anklicken") == 2 and html.count("hat gesagt.:") == 2
    fetch = collect(http, server.serve("/t/", body=KATZEN.read_bytes()), engine="xenforo")
    assert len(fetch.posts) == 18 and {p.author for p in fetch.posts} == authors
    # Quotes of other posts are theirs (and scored there): not part of the reply's text.
    assert not any("Zum Vergrößern" in p.text or "hat gesagt" in p.text for p in fetch.posts)
    reply = next(p for p in fetch.posts if p.external_id == "post-6331617")
    assert reply.text.startswith("Dann hat er wohl keine Milben")
    assert "total sauber" not in reply.text  # the quoted words


def test_vbulletin_page_latin1_base_href_and_session_ids(server: LoopbackServer,
                                                         http: HttpClient) -> None:
    expected = pocketpc_oracle()
    assert len(expected) == 20 and len({a for _, a, _ in expected}) == 9
    url = server.serve(PAGE34, body=pocketpc_page(server),
                       headers={"Content-Type": "text/html; charset=ISO-8859-1"})
    fetch = collect(http, url, engine="vbulletin")
    assert [(p.external_id, p.author, p.published_at) for p in fetch.posts] == expected
    assert {p.thread_id for p in fetch.posts} == {f"{server.base}{VB_THREAD}.html"}
    assert all(p.parent_id == p.thread_id for p in fetch.posts)  # page 34: no opening post
    assert {p.title for p in fetch.posts} == {
        "Microsoft beginnt mit der Auslieferung des Vorbereitungsupdate!"}
    first = fetch.posts[0]
    # Resolved against <base href>, with vBulletin's s=<session> dropped.
    assert first.url == server.url(f"{VB_THREAD}-post949757.html#post949757")
    assert "s=22c0" not in repr(fetch.posts) + repr(fetch.cursor)
    assert first.text.startswith("Das war noch nicht das Update, sondern nur die Vorbereitung.")
    assert "Zitat von" not in first.text and "PocketPC.ch App" not in first.text
    assert not any(TAG.search(p.text) for p in fetch.posts)
    assert any("ö" in p.text or "ä" in p.text for p in fetch.posts)  # ISO-8859-1 decoded
    assert fetch.problems == ()  # the next page is not served here: dropped by pocketpc_page


def test_off_host_next_link_is_not_followed(server: LoopbackServer, http: HttpClient) -> None:
    url = server.serve(PAGE34, body=POCKETPC.read_bytes())  # links still on www.pocketpc.ch
    fetch = collect(http, url, engine="vbulletin")
    assert len(fetch.posts) == 20
    assert len(fetch.problems) == 1 and "is on another host; not followed" in fetch.problems[0]
    assert [r.path for r in server.requests] == ["/robots.txt", PAGE34]


# --- paging, limits and incremental passes --------------------------------------------------


def serve_two_pages(server: LoopbackServer, third: str | None = None) -> str:
    server.serve(PAGE35, body=pocketpc_page(server, renumber=True, next_to=third))
    return server.serve(PAGE34, body=pocketpc_page(server, next_to=server.url(PAGE35)),
                        etag='"p34"')


def test_next_page_is_followed_up_to_max_pages(server: LoopbackServer, http: HttpClient) -> None:
    url = serve_two_pages(server, third=PAGE36)
    fetch = collect(http, url, engine="vbulletin", max_pages=2)
    assert len(fetch.posts) == 40 and len({p.external_id for p in fetch.posts}) == 40
    assert fetch.posts[20].external_id == "post_959757"
    assert {p.thread_id for p in fetch.posts} == {f"{server.base}{VB_THREAD}.html"}
    assert server.hits(PAGE35) and not server.hits(PAGE36)  # max_pages=2
    assert fetch.cursor["threads"][url]["pending"] is True


def test_max_pages_one_then_the_next_pass_continues(server: LoopbackServer,
                                                    http: HttpClient) -> None:
    url = serve_two_pages(server)
    first = collect(http, url, engine="vbulletin", max_pages=1)
    assert len(first.posts) == 20 and not server.hits(PAGE35)
    second = collect(http, url, first.cursor, engine="vbulletin", max_pages=1)
    assert server.hits(PAGE34)[-1].headers.get("If-None-Match") == '"p34"'  # answered 304
    assert [p.external_id for p in second.posts] == [
        i.replace("949", "959") for i, _, _ in pocketpc_oracle()]
    third = collect(http, url, second.cursor, engine="vbulletin", max_pages=1)
    assert third.posts == () and third.unchanged
    assert [r.path for r in server.requests].count(PAGE34) == 2  # pass 3 starts at page 35


def test_second_pass_adds_nothing_with_304_and_with_same_body(server: LoopbackServer,
                                                              http: HttpClient) -> None:
    tagged = server.serve("/etag/", body=KATZEN.read_bytes(), etag='"v1"')
    plain = server.serve("/plain/", body=KATZEN.read_bytes())
    for url in (tagged, plain):
        first = collect(http, url, engine="xenforo")
        assert len(first.posts) == 18 and not first.unchanged
        again = collect(http, url, first.cursor, engine="xenforo")
        assert again.posts == () and again.unchanged and again.problems == ()
    assert server.hits("/etag/")[-1].headers.get("If-None-Match") == '"v1"'
    assert len(server.hits("/plain/")) == 2  # read again, same SHA-256: not parsed


def test_only_new_posts_come_back(server: LoopbackServer, http: HttpClient) -> None:
    soup = BeautifulSoup(KATZEN.read_bytes(), "html.parser")
    soup.select("article.message--post")[-1].decompose()
    server.serve("/t/", Route(body=str(soup).encode()), Route(body=KATZEN.read_bytes()))
    first = collect(http, server.url("/t/"), engine="xenforo")
    assert len(first.posts) == 17
    second = collect(http, server.url("/t/"), first.cursor, engine="xenforo")
    assert [p.external_id for p in second.posts] == [xenforo_oracle(KATZEN)[-1][0]]


def test_thread_list_page_follows_thread_links(server: LoopbackServer, http: HttpClient) -> None:
    listing = (b'<html><body><h1>Allgemein</h1><ul>'
               b'<li><a class="topictitle" href="./viewtopic.php?t=167&amp;'
               b'sid=c613f07a94d24ae130f878df2f758925">Was ist Freie Software</a></li>'
               b'<li><a class="topictitle" href="/t7-forums-regeln">Forums-Regeln</a></li>'
               b'<li><a class="topictitle" href="https://elsewhere.invalid/t1">Fremd</a></li>'
               b"</ul></body></html>")
    url = server.serve("/viewforum.php?f=4", Route(body=listing, etag='"list"'),
                       Route(body=listing, etag='"list"'), Route(body=listing, etag='"list"'),
                       Route(body=listing.replace(b"Allgemein", b"General"), etag='"l2"'))
    server.serve("/viewtopic.php?t=167", body=MYOOS.read_bytes(), etag='"t167"')
    server.serve("/t7-forums-regeln", body=FORUMOTION.read_bytes())
    one = collect(http, url, engine="phpbb", max_threads=1)
    assert [p.external_id for p in one.posts] == ["p453"] and not server.hits("/t7-forums-regeln")
    both = collect(http, url, engine="phpbb")
    assert [p.external_id for p in both.posts] == ["p453", "p7", "p655", "p702"]
    assert both.cursor["mode"] == "list"
    requests = len(server.requests)
    again = collect(http, url, both.cursor, engine="phpbb")
    assert again.posts == () and again.unchanged
    assert len(server.requests) == requests + 1  # only the list page, answered 304
    changed = collect(http, url, again.cursor, engine="phpbb")  # someone posted somewhere
    assert changed.posts == () and changed.problems == ()
    assert server.hits("/viewtopic.php?t=167")[-1].headers.get("If-None-Match") == '"t167"'
    # The same cursor on another URL: that page is looked at afresh (a thread, this time),
    # and its posts, seen from the list, are still known.
    other = collect(http, server.url("/t7-forums-regeln"), changed.cursor, engine="phpbb")
    assert other.posts == () and other.problems == () and other.cursor["mode"] == "thread"


# --- politeness: robots.txt and per-host delay ---------------------------------------------


def test_robots_disallowed_start_page_fails_the_source(server: LoopbackServer,
                                                       http: HttpClient) -> None:
    server.serve("/robots.txt", body=b"User-agent: *\nDisallow: /viewtopic.php\n")
    url = server.serve("/viewtopic.php?t=167", body=MYOOS.read_bytes())
    with pytest.raises(SourceError, match="robots.txt disallows .*/viewtopic.php") as caught:
        collect(http, url, engine="phpbb")
    assert not caught.value.retryable and not server.hits("/viewtopic.php?t=167")
    assert len(collect(http, url, engine="phpbb", robots=False).posts) == 1


def test_robots_disallowed_next_page_is_skipped_with_a_problem(server: LoopbackServer,
                                                               http: HttpClient) -> None:
    server.serve("/robots.txt", body=f"User-agent: *\nDisallow: {PAGE35}\n".encode())
    url = serve_two_pages(server)
    fetch = collect(http, url, engine="vbulletin")
    assert len(fetch.posts) == 20 and not server.hits(PAGE35)
    assert len(fetch.problems) == 1 and "robots.txt disallows" in fetch.problems[0]


def test_per_host_delay_spaces_requests(server: LoopbackServer, http: HttpClient,
                                        waits: list[float]) -> None:
    url = serve_two_pages(server)
    # the client records its sleeps instead of sleeping, so a long delay costs nothing, and
    # page 34 (a 6,000-line page to parse) cannot outlast it on a busy machine (0.5 s could)
    fetch = collect(http, url, engine="vbulletin", delay=60, robots=False)
    assert len(fetch.posts) == 40
    # one wait, before page 35 (page 34 went first), and never longer than the delay (how
    # much of the delay is left depends on how long page 34 took)
    assert len(waits) == 1 and 50 < waits[0] <= 60


# --- failures -------------------------------------------------------------------------------


def test_layout_change_fails_with_a_clear_message(server: LoopbackServer,
                                                  http: HttpClient) -> None:
    url = server.serve("/t/", Route(body=KATZEN.read_bytes()), Route(body=MYOOS.read_bytes()))
    cursor = collect(http, url, engine="xenforo").cursor
    with pytest.raises(SourceError) as caught:
        collect(http, url, cursor, engine="xenforo")
    assert str(caught.value) == (
        "forum layout changed: selector 'article.message--post, ol.messageList > li.message' "
        f"matched nothing on {url}; check `engine`/`selectors`")
    assert not caught.value.retryable
    # A first pass on a page of another engine: neither posts nor thread links.
    with pytest.raises(SourceError, match=r"forum layout changed: selector 'article\.message--post"
                                          r".*' matched nothing \(nor thread_links '.*'\) on "):
        collect(http, server.serve("/x/", body=MYOOS.read_bytes()), engine="xenforo")


def test_empty_page_is_a_problem_not_a_layout_change(server: LoopbackServer,
                                                     http: HttpClient) -> None:
    fetch = collect(http, server.serve("/t/", body=b"<html><body> </body></html>"),
                    engine="phpbb")
    assert fetch.posts == () and fetch.problems == (f"empty page at {server.url('/t/')}",)


def test_malformed_post_is_a_problem(server: LoopbackServer, http: HttpClient) -> None:
    broken = KATZEN.read_bytes().replace(b'class="bbWrapper"', b'class="gone"', 1)
    fetch = collect(http, server.serve("/t/", body=broken), engine="xenforo")
    assert len(fetch.posts) == 17
    assert len(fetch.problems) == 1 and "no body" in fetch.problems[0]
    assert "post-6331411" in fetch.problems[0]


def test_unreadable_times_use_the_fetch_time_and_say_so_once(server: LoopbackServer,
                                                             http: HttpClient) -> None:
    before = datetime.now(UTC)
    fetch = collect(http, server.serve("/t/", body=KATZEN.read_bytes()), engine="xenforo",
                    selectors={"time": "span.no-such-thing"})
    assert len(fetch.posts) == 18 and all(p.published_at >= before for p in fetch.posts)
    assert fetch.problems == ("18 post(s) had no readable time; used the fetch time (check "
                              "selectors.time / timezone)",)


def test_503_and_429_are_retried(server: LoopbackServer, http: HttpClient,
                                 waits: list[float]) -> None:
    page = MYOOS.read_bytes()
    server.serve("/a", Route(status=503), Route(body=page))
    server.serve("/b", Route(status=429, headers={"Retry-After": "3"}), Route(body=page))
    assert len(collect(http, server.url("/a"), engine="phpbb").posts) == 1
    assert len(collect(http, server.url("/b"), engine="phpbb").posts) == 1
    assert waits == [0.25, 3.0]  # the client's backoff, then the server's Retry-After
    server.serve("/c", status=503)
    with pytest.raises(SourceError, match="HTTP 503 from .*/c .gave up after 2 tries") as caught:
        collect(http, server.url("/c"), engine="phpbb")
    assert caught.value.retryable


def test_failing_next_page_keeps_the_first_and_is_retried_next_pass(server: LoopbackServer,
                                                                    http: HttpClient) -> None:
    url = serve_two_pages(server)
    server.serve(PAGE35, Route(status=503), Route(status=503),
                 Route(body=pocketpc_page(server, renumber=True)))
    first = collect(http, url, engine="vbulletin")
    assert len(first.posts) == 20
    assert len(first.problems) == 1 and "page not read: HTTP 503" in first.problems[0]
    second = collect(http, url, first.cursor, engine="vbulletin")
    assert len(second.posts) == 20 and second.posts[0].external_id == "post_959757"


# --- options, presets and helpers -----------------------------------------------------------


def test_selectors_override_the_preset(server: LoopbackServer, http: HttpClient) -> None:
    url = server.serve("/t/", body=KATZEN.read_bytes())
    titled = collect(http, url, engine="xenforo", selectors={"author": "h5.userTitle"})
    user_titles = re.findall(r'<h5 class="userTitle message-userTitle"[^>]*>([^<]+)</h5>',
                             text(KATZEN))
    assert [p.author for p in titled.posts] == user_titles and len(user_titles) == 18
    custom = collect(http, url, engine="custom",
                     selectors={"post": "article.message--post", "body": ".bbWrapper",
                                "author": ".message-name"})
    assert [(p.external_id, p.author, p.published_at) for p in custom.posts] == \
        xenforo_oracle(KATZEN)


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="needs selectors.post and selectors.body"):
        ForumOptions(url="https://f.example/t/1")
    with pytest.raises(ValidationError, match="not a usable CSS selector"):
        ForumOptions(url="https://f.example/t/1", engine="phpbb", selectors={"post": "div["})
    with pytest.raises(ValidationError, match="unknown time zone"):
        ForumOptions(url="https://f.example/t/1", engine="phpbb", timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        ForumOptions(url="https://f.example/t/1", engine="phpbb", selectors={"posts": "x"})
    with pytest.raises(ValidationError):
        ForumOptions(url="https://f.example/t/1", engine="ipb")
    with pytest.raises(ValidationError):
        ForumOptions(url="https://f.example/t/1", engine="phpbb", max_pages=0)


def test_config_file_reaches_the_options(make_project) -> None:
    good = {"name": "f", "kind": "forum", "url": "https://f.example/viewtopic.php?t=1",
            "engine": "phpbb", "max_pages": 2, "selectors": {"author": "p.author a"}}
    source = load(make_project([good])).sources[0]
    assert isinstance(source.options, ForumOptions)
    assert source.options.resolved()["author"] == "p.author a"
    assert source.options.resolved()["post"] == "div.post"
    with pytest.raises(ConfigError, match=r"sources\[0\]\.selectors\.next: not a usable CSS"):
        load(make_project([{**good, "selectors": {"next": "a[rel="}}]))


def test_urls_lose_session_ids_and_page_numbers() -> None:
    sid = "c613f07a94d24ae130f878df2f758925"
    assert clean_url(f"https://f.example/viewtopic.php?t=1&sid={sid}") == \
        "https://f.example/viewtopic.php?t=1"
    assert clean_url("https://f.example/search.php?s=cats") == \
        "https://f.example/search.php?s=cats"  # a search word is no session id
    assert clean_url("https://f.example/a?q=a%20b") == "https://f.example/a?q=a%20b"
    assert thread_url(f"https://f.example/viewtopic.php?t=1&start=20&sid={sid}#p9") == \
        "https://f.example/viewtopic.php?t=1"
    assert thread_url("https://x.example/threads/slug.230143/page-3") == \
        "https://x.example/threads/slug.230143/"
    assert thread_url("https://v.example/threads/123-title/page2") == \
        "https://v.example/threads/123-title"
    assert thread_url("https://v.example/f/122760-title-34.html") == \
        "https://v.example/f/122760-title.html"
    assert thread_url("https://w.forumieren.com/t7p15-forums-regeln") == \
        "https://w.forumieren.com/t7-forums-regeln"


@pytest.mark.parametrize(("written", "dayfirst", "zone", "expected"), [
    ("Beitrag von r23 » 21.01.2009, 05:42", True, "UTC", datetime(2009, 1, 21, 5, 42)),
    ("03.04.2011, 14:17", True, "Europe/Berlin", datetime(2011, 4, 3, 12, 17)),
    ("03/04/2011 2:17 pm", False, "UTC", datetime(2011, 3, 4, 14, 17)),
    ("Sep 18, 2020 at 8:56 AM", False, "America/Los_Angeles", datetime(2020, 9, 18, 15, 56)),
    ("von lupa am 26/10/13, 03:48 pm", True, "UTC", datetime(2013, 10, 26, 15, 48)),
    ("27. September 2018", True, "UTC", datetime(2018, 9, 27)),
    ("Heute, 10:00", True, "UTC", None),  # relative words are not guessed
    ("Gestern um 22:13", True, "UTC", None),
    ("21. März 2009", True, "UTC", None),  # month names dateutil does not know
])
def test_text_dates(written: str, dayfirst: bool, zone: str,
                    expected: datetime | None) -> None:
    when = text_time(written, dayfirst, ZoneInfo(zone))
    assert when == (expected.replace(tzinfo=UTC) if expected else None)


# --- end to end -----------------------------------------------------------------------------


def test_monitor_run_stores_forum_posts_once(server: LoopbackServer, make_project) -> None:
    from click.testing import CliRunner

    from monitor.cli import main

    server.serve("/threads/pepe.230143/", body=KATZEN.read_bytes(), etag='"k1"')
    server.serve("/viewtopic.php?t=167", body=KATZEN.read_bytes())  # not a phpBB page
    config = make_project([
        {"name": "katzen", "kind": "forum", "url": server.url("/threads/pepe.230143/"),
         "engine": "xenforo", "delay": 0},
        {"name": "myoos", "kind": "forum", "url": server.url("/viewtopic.php?t=167"),
         "engine": "phpbb", "delay": 0},
    ])
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    assert "18 new posts" in first.output and "forum layout changed" in first.output
    again = runner.invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    assert "0 new posts" in again.output
    assert server.hits("/threads/pepe.230143/")[-1].headers.get("If-None-Match") == '"k1"'
