"""Memory stays bounded whatever a source sends: one large response at a time, and a 9.5 MB
entry parsed in seconds, cut, and said to be cut (bench/memory.py measures the daemon's peak)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from guards import finishes
from loopback import LoopbackServer

from monitor.collectors.http import LARGE_RESPONSE, DeadlineExceeded, HttpClient, deadline
from monitor.collectors.rss import MAX_ENTRIES, RssCollector, RssOptions
from monitor.collectors.text import CUT_MARK, MAX_TEXT

AGENT = "feedback-monitor-tests/1.0 (+https://example.invalid/tests)"
pytestmark = pytest.mark.chaos


def test_a_second_large_response_waits_for_the_first_source_to_finish(
        server: LoopbackServer) -> None:
    big = server.serve("/big", body=b"x" * (LARGE_RESPONSE + 1))
    small = server.serve("/small", body=b"x" * LARGE_RESPONSE)
    holding, release = threading.Event(), threading.Event()

    def first_source() -> None:
        with deadline(time.monotonic() + 30):
            client.get(big)
            holding.set()  # still "parsing": the slot stays taken
            release.wait(10)

    with HttpClient(AGENT, total_timeout=1.0, retries=0) as client:
        owner = threading.Thread(target=first_source)
        owner.start()
        assert holding.wait(10)
        with deadline(time.monotonic() + 30):
            assert len(client.get(small).content) == LARGE_RESPONSE  # small ones never wait
            with pytest.raises(DeadlineExceeded, match="waited for another source's large"):
                client.get(big)
        release.set()
        owner.join(10)
        with deadline(time.monotonic() + 30):  # the first source is done: the slot is free
            assert len(client.get(big).content) == LARGE_RESPONSE + 1
        assert len(client.get(big).content) == LARGE_RESPONSE + 1  # no source: no slot


def test_a_source_that_fails_gives_the_slot_back(server: LoopbackServer) -> None:
    over_cap = server.serve("/over", body=b"x" * (LARGE_RESPONSE * 2))
    large = server.serve("/large", body=b"y" * (LARGE_RESPONSE + 1))
    with HttpClient(AGENT, max_bytes=LARGE_RESPONSE + 10, total_timeout=2.0,
                    retries=0) as client:
        with deadline(time.monotonic() + 30), pytest.raises(Exception, match="byte cap"):
            client.get(over_cap)  # took the slot past 256 KiB, then failed
        got: list[int] = []

        def next_source() -> None:
            with deadline(time.monotonic() + 30):
                got.append(len(client.get(large).content))

        other = threading.Thread(target=next_source)
        other.start()
        other.join(10)
    assert got == [LARGE_RESPONSE + 1]


def test_a_huge_entry_is_collected_cut_and_marked(server: LoopbackServer) -> None:
    """The issue's 9.5 MB entry (escaped markup, the costly shape) took 188 s of CPU."""
    body = "&lt;p&gt;Angry about the redesign.&lt;/p&gt;" + "&lt;p&gt;word&lt;/p&gt;" * 430_000
    feed = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            '<item><guid>1</guid><title>Huge</title><link>http://127.0.0.1/1</link>'
            f'<description>{body}</description></item></channel></rss>').encode()
    assert len(feed) > 9_500_000
    url = server.serve("/huge.xml", body=feed, headers={"Content-Type": "application/rss+xml"})
    with HttpClient(AGENT, retries=0) as client:
        collector = RssCollector("huge", RssOptions(url=url), client)
        fetch = finishes(lambda: collector.collect(None))
    (post,) = fetch.posts
    assert post.text.startswith("Angry about the redesign.")
    assert post.text.endswith(CUT_MARK) and len(post.text) <= MAX_TEXT


@pytest.mark.parametrize("kind", ["rss", "json"])
def test_a_feed_of_too_many_entries_gives_its_newest(server: LoopbackServer, kind: str) -> None:
    total = MAX_ENTRIES + 5
    dates = [(i * 7919) % total for i in range(total)]  # shuffled: the dates decide, not order
    if kind == "rss":
        start = datetime(2026, 1, 1, tzinfo=UTC)
        items = "".join(f"<item><guid>{d}</guid><link>http://127.0.0.1/{d}</link><pubDate>"
                        f"{format_datetime(start + timedelta(minutes=d))}</pubDate>"
                        f"<description>post {d}</description></item>" for d in dates)
        body = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    else:
        items = ",".join(json.dumps({"id": str(d), "url": f"http://127.0.0.1/{d}",
                                     "date_published": "2026-01-01T00:00:00Z",
                                     "content_text": f"post {d}"}) for d in dates)
        body = '{"version": "https://jsonfeed.org/version/1.1", "items": [' + items + "]}"
    url = server.serve(f"/many.{kind}", body=body.encode())
    with HttpClient(AGENT, retries=0) as client:
        fetch = RssCollector("many", RssOptions(url=url), client).collect(None)
    assert len(fetch.posts) == MAX_ENTRIES
    assert fetch.problems == (f"feed holds {total} entries: the newest {MAX_ENTRIES} are read",)
    if kind == "rss":
        assert {int(p.url.rsplit("/", 1)[1]) for p in fetch.posts} == set(range(5, total))
