"""A pass of many feeds parses them in worker processes (``ParsePool``): the posts stored are
the ones an inline pass stores, no worker outlives the pass, and a document that kills or
hangs its parser fails only its own source."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import monitor.collectors.rss as rss
import monitor.pipeline as pipeline
from monitor.config import load
from monitor.store import Store, posts

FEEDS = 55  # over pipeline.POOL_FROM
CRASH, HANG = b"<!-- crash the parser -->", b"<!-- hang the parser -->"


def crash_or_hang(response: Any, *args: Any) -> Any:
    """read_feed, but a marked document kills its worker or never finishes (run in workers:
    a module function, found there by name)."""
    if CRASH in response.content:
        os._exit(3)
    if HANG in response.content:
        time.sleep(120)
    return rss.read_feed(response, *args)


def feed(index: int, entries: int = 4, marker: bytes = b"") -> bytes:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>Board {index} post {n} &amp; more</title>"
        f"<link>https://forum.example.com/{index}/{n}</link><guid>b{index}-{n}</guid>"
        f"<pubDate>{format_datetime(start - timedelta(hours=n))}</pubDate>"
        f"<author>a{n}@example.com (Person {n})</author>"
        f"<description><![CDATA[<p>The <b>redesign</b> is bad &eacute; {n}</p>"
        f"<script>alert(1)</script><p>second</p>]]></description></item>"
        for n in range(entries))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Board {index}</title>{items}</channel></rss>").encode() + marker


def project(make_project: Any, server: Any, markers: dict[int, bytes] | None = None,
            **http: object) -> Path:
    markers = markers or {}
    sources = []
    for i in range(FEEDS):
        url = server.serve(f"/pool/{i}.xml", body=feed(i, marker=markers.get(i, b"")),
                           headers={"Content-Type": "application/rss+xml"})
        sources.append({"name": f"board-{i:02d}", "kind": "rss", "url": url})
    return make_project(sources, concurrency=8, http=http)


def stored(config_path: Path) -> set[tuple[Any, ...]]:
    with Store(load(config_path).store_url) as store, store.engine.connect() as db:
        rows = db.execute(select(posts.c.source, posts.c.external_id, posts.c.url,
                                 posts.c.author, posts.c.title, posts.c.text,
                                 posts.c.published_at))
        return {tuple(row) for row in rows}


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The worker processes of every pool the pass ends, to look at them afterwards."""
    seen: list[Any] = []
    original = rss._end

    def spy(pool: Any) -> None:
        seen.extend((getattr(pool, "_processes", None) or {}).values())
        original(pool)

    monkeypatch.setattr(rss, "_end", spy)
    return seen


def run(config_path: Path) -> pipeline.RunReport:
    config = load(config_path)
    with Store(config.store_url) as store:
        return pipeline.run_once(config, store, deliver=False)


def test_a_large_pass_parses_in_processes_and_stores_what_inline_does(
        make_project: Any, server: Any, workers: list[Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setattr(pipeline, "cores", lambda: 2)
    calls: list[int] = []
    original_run = rss.ParsePool.run

    def counted(self: rss.ParsePool, *args: Any) -> Any:
        calls.append(1)
        return original_run(self, *args)

    monkeypatch.setattr(rss.ParsePool, "run", counted)
    pooled = project(make_project, server)
    report = run(pooled)
    assert not report.failed and len(calls) == FEEDS
    assert workers and not any(p.is_alive() for p in workers)  # none outlives the pass
    with_pool = stored(pooled)

    monkeypatch.setattr(pipeline, "POOL_FROM", 10**9)
    calls.clear()
    for made in (tmp_path / "project").glob("monitor.db*"):  # the store, its WAL
        made.unlink()
    report = run(pooled)
    assert not report.failed and not calls
    assert stored(pooled) == with_pool and len(with_pool) == FEEDS * 4
    text = next(row[5] for row in with_pool if row[1].endswith("b3-1"))
    assert text == "The redesign is bad \u00e9 1\n\nsecond"  # the script dropped, é decoded


def test_a_document_that_kills_its_parser_fails_only_its_source(
        make_project: Any, server: Any, workers: list[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "cores", lambda: 2)
    monkeypatch.setattr(rss, "read_feed", crash_or_hang)
    report = run(project(make_project, server, {7: CRASH}))
    failed = {s.name: s.error for s in report.failed}
    assert list(failed) == ["board-07"], failed
    assert "parser process died" in (failed["board-07"] or "")
    assert sum(s.new for s in report.sources) == (FEEDS - 1) * 4
    assert workers and not any(p.is_alive() for p in workers)


def test_a_parse_past_the_source_deadline_fails_only_its_source(
        make_project: Any, server: Any, workers: list[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "cores", lambda: 2)
    monkeypatch.setattr(rss, "read_feed", crash_or_hang)
    started = time.monotonic()
    report = run(project(make_project, server, {3: HANG}, source_deadline=5))
    assert time.monotonic() - started < 60
    failed = {s.name: s.error for s in report.failed}
    assert list(failed) == ["board-03"], failed
    assert "deadline exceeded" in (failed["board-03"] or "")
    assert sum(s.new for s in report.sources) == (FEEDS - 1) * 4
    assert workers and not any(p.is_alive() for p in workers)  # the stuck one was stopped
