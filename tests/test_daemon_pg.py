"""Two real ``monitor daemon`` processes on one PostgreSQL, polling the same 20 feeds on
127.0.0.1 every second: they share the work (each source polled by one of them at a time,
through its lease), and every post is stored once, the case made once, every notice sent once.
A lease whose holder died is taken over; a live one is left alone.

Each daemon has its own copy of the project with its own User-Agent, so the feed server can
tell who polled what and when; all flags are grouped by category, so every flagged post of
every source files into one case, which both daemons race to fill.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import fixture_bytes
from daemons import start_daemon, wait_for
from loopback import LoopbackServer, Route
from sqlalchemy import func, select

from monitor.store import Store
from monitor.store.schema import case_events, case_posts, cases, deliveries, flags, posts, sources

SOURCES = 20
RULES = """\
rules:
  - {id: disaster, severity: critical, category: backlash, when: {words: [disaster]}}
  - {id: hate-it, severity: high, category: backlash, when: {words: [hate it]}}
"""
# Polled again: comment-2 edited, comment-4 added (not flagged), comment-5 added (flagged)
COMMENT_5 = b"""\
  <item>
    <title>By: Sam</title>
    <link>/our-new-look/#comment-5</link>
    <guid isPermaLink="false">comment-5</guid>
    <dc:creator>Sam</dc:creator>
    <pubDate>Mon, 02 Nov 2026 12:00:00 GMT</pubDate>
    <description><![CDATA[<p>Still a disaster a day later.</p>]]></description>
  </item>
"""



class TimedServer(LoopbackServer):
    """The loopback feed server, also noting who asked (User-Agent) and from when to when."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[str, str, float, float]] = []

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        start = time.monotonic()
        super()._answer(handler)
        with self._lock:
            self.spans.append((handler.path, handler.headers.get("User-Agent", ""), start,
                               time.monotonic()))


class Hook:
    """A webhook endpoint that records the body of every POST and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/in"

    def posts(self) -> list[tuple[str, str]]:
        return [(p["source"], p["external_id"]) for body in self.bodies for p in body["posts"]]


@pytest.fixture
def feeds() -> Iterator[TimedServer]:
    server = TimedServer()
    yield server
    server.close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    endpoint = Hook()
    yield endpoint
    endpoint.httpd.shutdown()
    endpoint.httpd.server_close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[[Path, str], subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(config: Path, name: str, *flags: str) -> subprocess.Popen:
        process = start_daemon(config, tmp_path / f"{name}.log", *flags)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def serve_feeds(feeds: TimedServer, *versions: bytes) -> None:
    """Each feed answers with ``versions`` in turn (the last one from then on), a little slowly,
    so two daemons polling one feed at once would be seen overlapping."""
    for i in range(SOURCES):
        feeds.serve(f"/feed-{i:02d}.xml", *(Route(body, delay=0.3, headers={
            "Content-Type": "application/rss+xml"}) for body in versions))


def copy_as(project: Path, folder: Path, user_agent: str) -> Path:
    """The same project in ``folder`` with its own User-Agent (same store, same sources)."""
    shutil.copytree(project.parent, folder)
    settings = yaml.safe_load((folder / "config.yaml").read_text())
    settings["http"]["user_agent"] = user_agent
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    return folder / "config.yaml"


def count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as db:
        return db.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_two_daemons_share_the_sources_and_make_everything_once(
        pg_url: str, make_project, feeds: TimedServer, hook: Hook, daemons,
        tmp_path: Path) -> None:
    # first version: comment-1 (critical) and -3 (high) flagged; once every source has it
    # stored: comment-2 edited, -4 new, -5 new and flagged (switched by what is stored, not by
    # a count of requests: a response a loaded machine lost on its way must not skip a version)
    serve_feeds(feeds, fixture_bytes("e2e/comments-v1.xml"))
    project = make_project(
        [{"name": f"blog-{i:02d}", "kind": "rss", "url": feeds.url(f"/feed-{i:02d}.xml"),
          "interval": "1s"} for i in range(SOURCES)], RULES, store=pg_url,
        routing={"receivers": ["queue", "hook"], "group_by": ["category"], "group_wait": "0s"},
        receivers={"hook": {"type": "webhook", "url": hook.url(), "timeout": 5}},
        # passes 2 s apart (twice the shortest interval, the default limit) are a stall on a
        # loaded machine: an alert's own post, notice and ERROR line, not what this tests
        alerts={"stalled_after": "10m"})
    configs = {ua: copy_as(project, tmp_path / ua, ua) for ua in ("daemon-a", "daemon-b")}
    running = [daemons(config, ua, "-v") for ua, config in configs.items()]
    store = Store(pg_url)
    logs = [tmp_path / f"{ua}.log" for ua in configs]
    try:
        wait_for(lambda: count(store, posts) == 3 * SOURCES, 60, "the first version stored",
                 logs)
        serve_feeds(feeds, fixture_bytes("e2e/comments-v2.xml").replace(
            b"</channel>", COMMENT_5 + b"</channel>"))
        wait_for(lambda: count(store, posts) == 5 * SOURCES
                 and count(store, posts, posts.c.version == 2) == SOURCES
                 and count(store, flags) == 3 * SOURCES, 60, "both versions stored and flagged",
                 logs)
        wait_for(lambda: count(store, deliveries, deliveries.c.state == "sent") == 3 * SOURCES,
                 60, "all sent (the outbox goes every 10 s)", logs)
        for process in running:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(15) for process in running] == [0, 0]

        # every post stored (a second copy the unique key would refuse) and its edit noticed
        # once (no version 3); every flagged post in the one case once; the case opened once
        assert count(store, posts) == 5 * SOURCES
        assert count(store, posts, posts.c.version == 2) == SOURCES
        assert count(store, flags) == 3 * SOURCES
        assert count(store, cases) == 1
        assert count(store, case_events, case_events.c.action == "opened") == 1
        assert count(store, case_posts) == 3 * SOURCES
        assert count(store, case_events, case_events.c.action == "post added") \
            == 3 * SOURCES - 1
        # every notice sent once, and every flagged post in exactly one notice
        assert count(store, deliveries) == 3 * SOURCES
        assert count(store, deliveries, deliveries.c.state == "sent",
                     deliveries.c.attempts == 1) == 3 * SOURCES
        keys = [body["key"] for body in hook.bodies]
        assert len(keys) == len(set(keys))
        sent = Counter(hook.posts())
        assert len(sent) == 3 * SOURCES and set(sent.values()) == {1}
        assert {e for _, e in sent} == {"comment-1", "comment-3", "comment-5"}
        # the work was shared, and no feed was ever polled by both daemons at once
        by_daemon = {ua: {path for path, agent, _, _ in feeds.spans if agent == ua}
                     for ua in configs}
        assert all(len(paths) >= 3 for paths in by_daemon.values()), by_daemon
        assert set().union(*by_daemon.values()) == {f"/feed-{i:02d}.xml" for i in range(SOURCES)}
        assert not overlapping(feeds.spans)
        with store.engine.connect() as db:  # leases released on the way out
            assert db.execute(select(func.count()).select_from(sources)
                              .where(sources.c.leased_by.is_not(None))).scalar_one() == 0
    finally:
        store.close()
    for ua in configs:
        log = (tmp_path / f"{ua}.log").read_text()
        assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def overlapping(spans: list[tuple[str, str, float, float]]) -> list[tuple[str, str, str]]:
    """Requests for one feed from two daemons whose times overlap."""
    found = []
    by_path: dict[str, list[tuple[float, float, str]]] = {}
    for path, agent, start, end in spans:
        by_path.setdefault(path, []).append((start, end, agent))
    for path, seen in by_path.items():
        seen.sort()
        for (_, end, agent), (start, _, other) in zip(seen, seen[1:], strict=False):
            if start < end and agent != other:
                found.append((path, agent, other))
    return found


def test_a_dead_holders_lease_is_taken_over_and_a_live_one_is_left_alone(
        pg_url: str, make_project, feeds: TimedServer, daemons, tmp_path: Path) -> None:
    serve_feeds(feeds, fixture_bytes("e2e/comments-v1.xml"))
    project = make_project(
        [{"name": name, "kind": "rss", "url": feeds.url(f"/feed-{i:02d}.xml"),
          "interval": "1s"} for i, name in enumerate(["orphaned", "busy", "free"])],
        RULES, store=pg_url)
    store = Store(pg_url)
    now = datetime.now(UTC)
    with store.engine.begin() as db:
        db.execute(sources.insert(), [
            {"name": "orphaned", "kind": "rss", "failures": 0, "leased_by": "gone:1:dead",
             "leased_until": now - timedelta(seconds=5)},
            {"name": "busy", "kind": "rss", "failures": 0, "leased_by": "elsewhere:2:live",
             "leased_until": now + timedelta(minutes=10)}])
    process = daemons(project, "daemon", "-vv")
    try:
        wait_for(lambda: len({p for p, _, _, _ in feeds.spans}) >= 2
                 and count(store, posts, posts.c.source == "orphaned") == 3, 20,
                 "the orphaned and the free source polled")
        time.sleep(1.5)  # a few more rounds: the busy one stays untouched
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert {p for p, _, _, _ in feeds.spans} == {"/feed-00.xml", "/feed-02.xml"}
        assert count(store, posts, posts.c.source == "busy") == 0
        with store.engine.connect() as db:
            leases = dict(db.execute(select(sources.c.name, sources.c.leased_by)).all())
        assert leases == {"orphaned": None, "busy": "elsewhere:2:live", "free": None}
    finally:
        store.close()
    log = (tmp_path / "daemon.log").read_text()
    assert "orphaned: took over the lapsed lease of gone:1:dead" in log
    assert "busy: leased by another daemon (polling it, or just did), skipped" in log
