"""The queries behind `queue list`, `status`, `export --since` and the digest read through
their indexes, on SQLite and on PostgreSQL (issue 19: at a million posts, a query that walks
a whole table takes seconds).

How it is checked, honestly: the store's own methods run while every SELECT they send is
captured (SQLAlchemy's ``before_cursor_execute``), then each captured statement is EXPLAINed
with its own parameters, so what is checked is what the commands send. The store is filled
in the shape of a real one (posts over 60 days, ids growing with ``first_seen_at``, a few
percent flagged, most cases closed) and, on PostgreSQL, ANALYZEd as autovacuum would have.

- A *selective* read (a day of posts or flags, the open cases, the last pass, the dead
  deliveries) must use its index with the planner left alone: there an index is what any
  sane plan takes, at any size.
- A *broad* one (the digest's 14 days of posts, `export --since 7d`: a quarter and a tenth of
  60 days) is a cost choice a planner may make either way on a small table (a sequential
  read of 20,000 rows is cheaper than 5,000 index probes), so for those PostgreSQL is only
  asked whether the index *can* serve the query: ``enable_seqscan = off`` there proves the
  query is written so an index applies (no function around the column, no OR across tables),
  nothing more. On the 1M-post store of ``bench/bigstore.py`` the planner picks the index
  for both by itself (see issue 19's notes).

SQLite is never ANALYZEd by the monitor and is not here either; its planner prefers an
index whenever one applies, so every check there is the strict one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from monitor.reports.digest import day_bounds
from monitor.store import Store
from monitor.store.schema import cases, deliveries, flags, posts, runs, scores, sources

NOW = datetime.now(UTC).replace(microsecond=0)
POSTS = 20_000
DAYS = 60


def _fill(store: Store) -> None:
    """POSTS posts over DAYS days (ids in the order first seen), each scored; one in seven
    flagged and filed as its own case, 5 % of them still open; a run per hour; an outbox row
    per flag, sent."""
    rng = random.Random(7)
    start = NOW - timedelta(days=DAYS)
    step = DAYS * 86400 / POSTS
    post_rows, score_rows, flag_rows, case_rows, sent = [], [], [], [], []
    for n in range(1, POSTS + 1):
        seen = start + timedelta(seconds=n * step)
        source = f"src-{n % 20}"
        post_rows.append({
            "id": n, "source": source, "external_id": f"e{n}", "url": f"https://x.test/{n}",
            "author": f"a{n % 500}", "title": None, "text": f"post {n}", "published_at": seen,
            "first_seen_at": seen, "changed_at": seen, "content_hash": f"{n:064x}",
            "version": 1, "thread_id": f"t{n}", "parent_id": None, "reach": n % 50})
        score_rows.append({
            "post_id": n, "content_hash": f"{n:064x}", "compound": rng.uniform(-1, 1),
            "pos": 0.1, "neu": 0.8, "neg": 0.1, "truncated": False, "scored_at": seen,
            "anger": 0.1, "change": 0.0, "churn": 0.0, "angry": False, "language": "en",
            "complaint": 0.2})
        if n % 7 == 0:
            flag_rows.append({"post_id": n, "severity": "high", "category": "bug",
                              "rules": ["r"], "reasons": ["r: x"], "tags": [],
                              "flagged_at": seen, "updated_at": seen})
            state = "new" if rng.random() < 0.05 else "resolved"
            case_rows.append({
                "id": n // 7, "post_id": n, "state": state, "severity": "high",
                "opened_at": seen, "updated_at": seen, "group_key": f"thread:{source}:t{n}",
                "category": "bug", "priority": rng.uniform(1, 8), "assignee": None,
                "due_at": seen + timedelta(hours=8), "first_response_at": None,
                "resolved_at": None if state == "new" else seen + timedelta(hours=3)})
            sent.append({"key": f"flag:{n}:slack", "receiver": "slack", "post_id": n,
                         "group_key": f"thread:{source}:t{n}", "state": "sent", "attempts": 1,
                         "next_attempt_at": seen, "created_at": seen, "sent_at": seen})
    with store.engine.begin() as db:
        db.execute(sources.insert(), [{"name": f"src-{n}", "kind": "rss", "failures": 0}
                                      for n in range(20)])
        for table, rows in ((posts, post_rows), (scores, score_rows), (flags, flag_rows),
                            (cases, case_rows), (deliveries, sent)):
            for at in range(0, len(rows), 5000):
                db.execute(table.insert(), rows[at:at + 5000])
        db.execute(runs.insert(), [{"started_at": NOW - timedelta(hours=h),
                                    "finished_at": NOW - timedelta(hours=h), "report": {},
                                    "ended": True} for h in range(24 * 30)])
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.execute(text("ANALYZE"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        ) -> Iterator[Store]:
    """One filled store per database for the module (filling is the slow part)."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'monitor.db'}")
        _fill(store)
        yield store
        store.close()
        return
    from conftest import pg_schema

    with pg_schema() as url:  # skips, saying why, when PostgreSQL is unreachable
        store = Store(url)
        _fill(store)
        yield store
        store.close()


@contextmanager
def _captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT sent while inside, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def _plans(store: Store, call: Callable[[], Any], *settings: str) -> list[str]:
    """The plan of each SELECT ``call`` sends (PostgreSQL ``EXPLAIN`` text, or SQLite's
    ``EXPLAIN QUERY PLAN`` details), under ``settings`` (PostgreSQL SET statements)."""
    with _captured(store.engine) as seen:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    assert seen, "the call sent no SELECT"
    found = []
    with store.engine.connect() as db:
        postgresql = db.dialect.name == "postgresql"
        for setting in settings if postgresql else ():
            db.exec_driver_sql(setting)
        for statement, parameters in seen:
            if postgresql:
                rows = db.exec_driver_sql("EXPLAIN " + statement, parameters).all()
                found.append("\n".join(r[0] for r in rows))
            else:
                rows = db.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                          parameters).all()
                found.append("\n".join(r[-1] for r in rows))
        db.rollback()
    return found


def _uses(plans: list[str], index: str, table: str) -> None:
    """Some statement reads ``table`` through ``index``, and none reads all of ``table``."""
    everything = "\n".join(plans)
    assert index in everything, everything
    for line in everything.splitlines():
        line = line.strip().removeprefix("->").strip()
        assert not line.startswith((f"Seq Scan on {table} ", f"SCAN {table}")), everything


DAY = (NOW - timedelta(days=1)).date()


def _windows(days: int) -> list[tuple[datetime, datetime]]:
    zone = ZoneInfo("UTC")
    return [day_bounds(DAY - timedelta(days=n), zone) for n in range(days - 1, -1, -1)]


# --- selective reads: the index, with the planner left alone --------------------------------

@pytest.mark.parametrize(("name", "call", "index", "table"), [
    ("export --since 1d", lambda s: s.export_posts(NOW - timedelta(days=1)),
     "ix_posts_first_seen_at", "posts"),
    ("export cases --since 1d", lambda s: s.export_cases(NOW - timedelta(days=1)),
     "ix_cases_opened_at", "cases"),
    ("digest: the day's flags", lambda s: s.flagged_between(*_windows(1)[0]),
     "ix_flags_flagged_at", "flags"),
    ("digest: the day's languages", lambda s: s.languages_between(*_windows(1)[0]),
     "ix_posts_first_seen_at", "posts"),
    ("digest: cases opened", lambda s: s.cases_opened(*_windows(1)[0]),
     "ix_cases_opened_at", "cases"),
    ("digest: the chart's flags", lambda s: s.flag_labels_between(
        _windows(14)[0][0], _windows(14)[-1][1]), "ix_flags_flagged_at", "flags"),
    ("queue list: the count", lambda s: s.count_listed(now=NOW), "ix_cases_", "cases"),
    ("queue list: a page", lambda s: s.list_cases(now=NOW, limit=50), "ix_cases_", "cases"),
    ("status: overdue", lambda s: s.count_listed(now=NOW, overdue=True), "ix_cases_",
     "cases"),
    ("status: the last pass", lambda s: s.last_pass_at(), "ix_runs_finished_at", "runs"),
    ("status: alerts", lambda s: s.recent_alerts(NOW - timedelta(days=1)),
     "ix_flags_flagged_at", "flags"),
    ("status: dead deliveries", lambda s: s.dead_deliveries(limit=5), "ix_deliveries_state",
     "deliveries"),
])
def test_a_selective_read_uses_its_index(big: Store, name: str,
                                         call: Callable[[Store], Any], index: str,
                                         table: str) -> None:
    _uses(_plans(big, lambda: call(big)), index, table)


# --- broad reads: the index can serve them ---------------------------------------------------

@pytest.mark.parametrize(("name", "call"), [
    ("export --since 7d", lambda s: s.export_posts(NOW - timedelta(days=7))),
    ("digest: the chart's posts", lambda s: s.post_counts(_windows(14))),
])
def test_a_broad_read_can_use_the_first_seen_index(big: Store, name: str,
                                                   call: Callable[[Store], Any]) -> None:
    _uses(_plans(big, lambda: call(big), "SET enable_seqscan = off"),
          "ix_posts_first_seen_at", "posts")


def test_export_since_needs_no_sort_on_sqlite(big: Store) -> None:
    """The first_seen_at index ends with the rowid: the range comes in export order."""
    if big.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan only (PostgreSQL sorts equal times incrementally)")
    [plan] = _plans(big, lambda: big.export_posts(NOW - timedelta(days=7)))
    assert "TEMP B-TREE" not in plan, plan
