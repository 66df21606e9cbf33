"""Cron mode: one pass per store at a time (SQLite and PostgreSQL), `--due-only`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import fixture_bytes
from loopback import LoopbackServer
from sqlalchemy import select

from monitor.cli import main
from monitor.config import load
from monitor.store import Store
from monitor.store.passlock import pass_lock
from monitor.store.schema import sources

FEED = "e2e/comments-v1.xml"


def monitor(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def project(request: pytest.FixtureRequest, server: LoopbackServer, make_project) -> Path:
    server.serve("/hourly.xml", body=fixture_bytes(FEED), etag='"a"')
    server.serve("/often.xml", body=fixture_bytes(FEED), etag='"b"')
    store = {} if request.param == "sqlite" else {"store": request.getfixturevalue("pg_url")}
    return make_project([
        {"name": "hourly", "kind": "rss", "url": server.url("/hourly.xml"), "interval": "1h"},
        {"name": "often", "kind": "rss", "url": server.url("/often.xml"), "interval": "1s"},
    ], **store)


def test_due_only_collects_the_sources_whose_interval_has_passed(project: Path) -> None:
    first = monitor("run", "--due-only", "--config", str(project))
    assert first.exit_code == 0 and "2 sources: 2 ok" in first.output  # never tried: both due
    time.sleep(1.1)
    again = monitor("run", "--due-only", "--config", str(project))
    assert again.exit_code == 0, again.output
    assert "1 sources: 1 ok" in again.output and "often " in again.output
    assert "hourly " not in again.output


def test_an_overlapping_pass_waits_then_says_so(project: Path) -> None:
    config = load(project)
    store = Store(config.store_url)
    try:
        with pass_lock(store.engine, 0):
            started = time.monotonic()
            blocked = monitor("run", "--wait", "0.5s", "--config", str(project))
            assert time.monotonic() - started >= 0.5
        assert blocked.exit_code == 1
        assert "another pass is still working on this store (waited 0.5s)" in blocked.output
        # released: a run gets the lock (PostgreSQL's advisory lock is one per database, so a
        # pass on another test's schema may hold it for a moment; a leaked one never frees)
        assert monitor("run", "--wait", "30s", "--config", str(project)).exit_code == 0
    finally:
        store.close()


def test_a_killed_pass_never_leaves_the_lock_behind(project: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from monitor.config import load\n"
         "from monitor.store import Store\n"
         "from monitor.store.passlock import pass_lock\n"
         f"store = Store(load({str(project)!r}).store_url)\n"
         "with pass_lock(store.engine, 5):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert monitor("run", "--wait", "0s", "--config", str(project)).exit_code == 1
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        result = monitor("run", "--wait", "30s", "--config", str(project))  # as above
        assert result.exit_code == 0, result.output
    finally:
        holder.kill()
        holder.wait(10)


def _attempted_earlier(project: Path, by: timedelta) -> None:
    """Each source's last attempt moved ``by`` into the past, as if that much time went by."""
    store = Store(load(project).store_url)
    try:
        with store.engine.begin() as db:
            for name, at in db.execute(select(sources.c.name, sources.c.last_attempt_at)).all():
                db.execute(sources.update().where(sources.c.name == name)
                           .values(last_attempt_at=at - by))
    finally:
        store.close()


def test_due_only_backs_off_a_failing_source(server: LoopbackServer, make_project) -> None:
    server.serve("/ok.xml", body=fixture_bytes(FEED))
    server.serve("/down.xml", status=500)
    project = make_project([
        {"name": "ok", "kind": "rss", "url": server.url("/ok.xml"), "interval": "1m"},
        {"name": "down", "kind": "rss", "url": server.url("/down.xml"), "interval": "1m"},
    ])
    assert monitor("run", "--due-only", "--config", str(project)).exit_code == 1
    # 61 s pass (in the store's clock): ok is due again (1 m); down waits 2 m after one failure
    # (a real wait of 1 s for intervals of 1 s left too little to spare on a busy machine)
    _attempted_earlier(project, timedelta(seconds=61))
    again = monitor("run", "--due-only", "--config", str(project))
    assert "1 sources: 1 ok" in again.output  # down is not tried, but not forgotten either:
    assert again.exit_code == 1 and "skipped while backing off after failures: down" in \
        again.output
    status = monitor("status", "--config", str(project))
    assert status.exit_code == 1 and "failed 1 time in a row" in status.output
    assert "backing off: next try" in status.output


def test_a_source_due_within_a_tenth_of_its_interval_is_not_left_for_the_next_run(
        make_project) -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.model import Fetch
    from monitor.pipeline import due_sources

    config = load(make_project([{"name": "a", "kind": "rss", "url": "http://127.0.0.1:9/a",
                                 "interval": "5m"}]))
    store = Store(config.store_url)
    try:
        ended = datetime(2026, 11, 23, 8, 0, 20, tzinfo=UTC)  # cron fired at 08:00, took 20 s
        store.save_fetch("a", "rss", Fetch((), None), ended)
        assert due_sources(config, store, ended + timedelta(seconds=280)) == ["a"]  # 08:05
        assert due_sources(config, store, ended + timedelta(seconds=200)) == []
    finally:
        store.close()
