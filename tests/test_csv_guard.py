"""``monitor export --format csv`` guards every text cell a post wrote, as the digest's CSV
does: a spreadsheet must show ``=HYPERLINK(...)`` as text, never run it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from filing import save_scores

from monitor import csvsafe, export
from monitor.model import Fetch, Flag, Post, Routing, Score
from monitor.store import Store

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
HOSTILE = {"author": "=HYPERLINK(\"http://evil.test\",\"click\")", "title": "+SUM(A1:A9)",
           "text": "=cmd|' /C calc'!A0", "url": "@SUM(1+1)*cmd|' /C calc'!A0"}


def test_cell_guards_every_formula_start() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert csvsafe.cell(start + "1+1") == "'" + start + "1+1"
    assert csvsafe.cell("a = b") == "a = b" and csvsafe.cell("") == ""


def _store_hostile(url: str) -> Store:
    store = Store(url)
    post = Post("blog", "x1", HOSTILE["url"], HOSTILE["author"], HOSTILE["title"],
                HOSTILE["text"], NOW - timedelta(hours=1), thread_id="t1")
    store.save_fetch("blog", "rss", Fetch((post,), None), NOW)
    flag = Flag("high", ("r",), ("=1+1 reason",), "backlash", ("-tag",))
    routes = {s.id: Routing(("queue",), "thread:blog:t1", 0.0) for s in store.posts_to_score()}
    save_scores(store, [(s, Score(-0.8, 0.0, 0.5, 0.5), flag) for s in store.posts_to_score()],
                NOW, routes=routes)
    return store


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_posts_and_cases_csv_guard_formulas(sqlite_url: str) -> None:
    store = _store_hostile(sqlite_url)
    try:
        posts, cases = io.StringIO(), io.StringIO()
        assert export.write(export.post_records(store), "csv", posts) == 1
        assert export.write(export.case_records(store), "csv", cases) == 1
    finally:
        store.close()
    post, = _rows(posts.getvalue())
    for field, value in HOSTILE.items():
        assert post[field] == "'" + value
    assert post["reasons"] == "'=1+1 reason" and post["tags"] == "'-tag"
    assert float(post["compound"]) == -0.8  # numbers are numbers, not guarded text
    case, = _rows(cases.getvalue())
    assert case["post_text"] == "'" + HOSTILE["text"]
    assert case["post_author"] == "'" + HOSTILE["author"]
    assert case["reasons"] == "'=1+1 reason"


def test_jsonl_export_keeps_text_as_written(sqlite_url: str) -> None:
    store = _store_hostile(sqlite_url)
    try:
        record, = export.post_records(store)
    finally:
        store.close()
    assert record["text"] == HOSTILE["text"]
