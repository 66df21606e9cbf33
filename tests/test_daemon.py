"""The daemon as a real subprocess against sources on 127.0.0.1: it polls on schedule, keeps
going past a broken source, reloads on SIGHUP (refusing a broken config), stops on SIGTERM.

Faults: a source that hangs (ended by the HTTP timeouts while the others keep their
schedule), fails or sends garbage (broken, with a clear error); SIGTERM in the middle of a pass
(the fetches in flight finish, each source's posts and cursor are written together, nothing
queued starts, exit 0) and kill -9 in the middle of one (a restart stores, files and notifies
each post exactly once)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import fixture_bytes
from daemons import start_daemon, wait_for
from hookserver import Hook
from loopback import LoopbackServer, Route
from sqlalchemy import func, select

from monitor.cli import main
from monitor.config import load
from monitor.daemon import first_runs
from monitor.model import Fetch
from monitor.store import Store
from monitor.store.schema import case_posts, deliveries, posts

FEED = "e2e/comments-v1.xml"



@pytest.fixture
def project(server: LoopbackServer, make_project) -> Path:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve("/broken.xml", status=500)
    return make_project([
        {"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"},
        {"name": "broken", "kind": "rss", "url": server.url("/broken.xml"), "interval": "1s"},
    ])


def start(project: Path, log: Path) -> subprocess.Popen:
    return start_daemon(project, log, "-v")


@pytest.fixture
def daemon(project: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    log = tmp_path / "daemon.log"
    process = start(project, log)
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait(10)


def stored(project: Path) -> int:
    store = Store(load(project).store_url)
    try:
        return sum(1 for _ in store.export_posts())
    finally:
        store.close()


def test_polls_keeps_going_reloads_and_stops_cleanly(
        project: Path, daemon: tuple[subprocess.Popen, Path], server: LoopbackServer) -> None:
    process, log = daemon
    wait_for(lambda: stored(project) == 3)
    wait_for(lambda: len(server.hits("/feed.xml")) >= 3)  # polled again and again, 1 s apart
    assert process.poll() is None  # the broken source did not stop it
    assert "ERROR monitor.daemon: broken: FAILED after " in log.read_text()
    assert "HTTP 500" in log.read_text()
    config = project.parent / "config.yaml"
    good = config.read_text()
    config.write_text(good + "\ninterval: [not a duration]\n")
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in log.read_text())
    hits = len(server.hits("/feed.xml"))
    wait_for(lambda: len(server.hits("/feed.xml")) > hits)  # still polling with the old one
    config.write_text(good)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert "daemon stopped" in log.read_text()
    assert stored(project) == 3  # nothing duplicated


def test_each_source_first_runs_when_the_store_says_it_is_due(make_project) -> None:
    config = load(make_project([
        {"name": name, "kind": "rss", "url": f"http://127.0.0.1:9/{name}", "interval": every}
        for name, every in [("hourly", "1h"), ("late", "1h"), ("failing", "2m"), ("new", "1m")]]))
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    store = Store(config.store_url)
    try:
        store.save_fetch("hourly", "rss", Fetch((), None), now - timedelta(minutes=5))
        store.save_fetch("late", "rss", Fetch((), None), now - timedelta(hours=3))
        for _ in range(3):  # backing off: 2 min doubled three times, 16 min from the last try
            store.record_failure("failing", "rss", "HTTP 500", now - timedelta(minutes=10))
        first = first_runs(config.sources, store.source_health(), now)
    finally:
        store.close()
    assert first == {"hourly": now + timedelta(minutes=55), "late": now,
                     "failing": now + timedelta(minutes=6), "new": now}


def test_a_reload_or_a_restart_polls_a_source_when_it_is_due_not_at_once(
        server: LoopbackServer, make_project, spawn) -> None:
    server.serve("/hourly.xml", body=fixture_bytes(FEED))
    server.serve("/often.xml", body=fixture_bytes(FEED))
    project = make_project([
        {"name": "hourly", "kind": "rss", "url": server.url("/hourly.xml"), "interval": "1h"},
        {"name": "often", "kind": "rss", "url": server.url("/often.xml"), "interval": "1s"},
    ])

    def a_few_polls_later() -> None:  # of the 1 s source: the daemon's schedule is running
        seen = len(server.hits("/often.xml"))
        wait_for(lambda: len(server.hits("/often.xml")) >= seen + 3, seconds=30)

    process, log = spawn(project)
    wait_for(lambda: len(server.hits("/hourly.xml")) == 1, seconds=30)  # never tried: at once
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in log.read_text())
    a_few_polls_later()
    assert len(server.hits("/hourly.xml")) == 1  # due in an hour, reloaded or not
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    process, log = spawn(project)
    wait_for(lambda: "daemon started" in log.read_text(), seconds=30)
    a_few_polls_later()
    assert len(server.hits("/hourly.xml")) == 1  # nor after a restart
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0


def test_a_second_daemon_on_the_same_sqlite_file_refuses_to_start(
        project: Path, daemon: tuple[subprocess.Popen, Path], tmp_path: Path) -> None:
    process, _ = daemon
    wait_for(lambda: stored(project) == 3)
    second = subprocess.run([sys.executable, "-m", "monitor.cli", "daemon", "--config",
                             str(project)], capture_output=True, text=True, timeout=30,
                            env={**os.environ})
    assert second.returncode == 1
    assert "another monitor daemon is running on" in second.stderr
    assert process.poll() is None


# --- faults: a source that hangs, fails or sends garbage; SIGTERM and kill -9 mid-pass ------

NOISE = b"\xfe\x00" + random.Random(6).randbytes(4094)  # not XML, not JSON: no feed at all
LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>"
              b"<input name=user><input name=password type=password></form></body></html>")
RULES = """\
rules:
  - {id: disaster, severity: critical, category: backlash, when: {words: [disaster]}}
  - {id: hate-it, severity: high, category: backlash, when: {words: [hate it]}}
"""
FLAGGED = {"comment-1", "comment-3"}  # of the three comments in FEED


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[Path], tuple[subprocess.Popen, Path]]]:
    """Start daemons (each logging to its own file); any still running at the end is killed."""
    started: list[subprocess.Popen] = []

    def spawn(project: Path) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"daemon-{len(started)}.log"
        started.append(start(project, log))
        return started[-1], log

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def sources_table(project: Path) -> dict[str, dict[str, Any]]:
    store = Store(load(project).store_url)
    try:
        return {row["name"]: row for row in store.source_health()}
    finally:
        store.close()


def posts_by_source(project: Path) -> dict[str, list[dict[str, Any]]]:
    store = Store(load(project).store_url)
    try:
        found: dict[str, list[dict[str, Any]]] = {}
        for post in store.export_posts():
            found.setdefault(post["source"], []).append(post)
        return found
    finally:
        store.close()


def assert_whole(project: Path, body: bytes) -> dict[str, list[dict[str, Any]]]:
    """Each source's posts and cursor were written together: a source with a cursor has all
    the posts of ``body`` (the feed it was sent) once each and scored; one without has none."""
    rows, stored = sources_table(project), posts_by_source(project)
    for name, mine in stored.items():
        assert sorted(p["external_id"] for p in mine) == ["comment-1", "comment-2",
                                                          "comment-3"], name
        assert all(p["compound"] is not None for p in mine), f"{name}: not all scored"
    for name, row in rows.items():
        if row["cursor"] is not None:
            assert row["cursor"]["feed"]["sha256"] == hashlib.sha256(body).hexdigest(), name
            assert name in stored, f"{name}: a cursor saved without its posts"
    assert set(stored) <= {n for n, r in rows.items() if r["cursor"] is not None}, \
        "posts saved without their cursor"
    return stored


def test_a_hanging_source_times_out_while_the_others_keep_polling_on_schedule(
        server: LoopbackServer, make_project, spawn) -> None:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve("/hang.xml", Route(fixture_bytes(FEED)), Route(fixture_bytes(FEED)),
                 Route(fixture_bytes(FEED), delay=60))  # from its third poll on: far too slow
    project = make_project([
        {"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"},
        {"name": "hang", "kind": "rss", "url": server.url("/hang.xml"), "interval": "1s"},
    ], http={"read_timeout": 4, "total_timeout": 6})
    process, _ = spawn(project)
    wait_for(lambda: len(server.hits("/hang.xml")) == 3, seconds=30)  # past the startup
    hung_at, polls, ended = time.monotonic(), [], 0.0  # when the feed was polled meanwhile
    seen = len(server.hits("/feed.xml"))
    while not ended or time.monotonic() < hung_at + ended + 1:  # the hang, then 1 s more
        now = time.monotonic()
        assert now - hung_at < 10, "the hung fetch was not ended by its timeout"
        if not ended and sources_table(project).get("hang", {}).get("failures"):
            ended = now - hung_at
        if len(server.hits("/feed.xml")) > seen:
            seen = len(server.hits("/feed.xml"))
            polls.append(now)
        time.sleep(0.02)
    assert 3.5 < ended < 7.5  # the 4 s read timeout ended it, not the server's 60 s
    assert "timed out" in sources_table(project)["hang"]["last_error"]
    # Meanwhile the feed kept its 1 s schedule. It would wait out the hang if jobs queued
    # behind a slow one, and it would be polled about every 2 s if a healthy source were
    # skipped as "not due" whenever its run came a little early.
    window = time.monotonic() - hung_at
    gaps = [b - a for a, b in zip([hung_at, *polls], [*polls, hung_at + window], strict=True)]
    assert max(gaps) < 3.0 and len(polls) >= 0.75 * window, (window, gaps)
    assert sources_table(project)["feed"]["failures"] == 0 and process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_sources_that_fail_or_send_garbage_are_broken_and_the_good_one_keeps_polling(
        server: LoopbackServer, make_project, spawn) -> None:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve("/500.xml", status=500)
    server.serve("/noise.xml", body=NOISE, headers={"Content-Type": "application/rss+xml"})
    server.serve("/login", body=LOGIN_PAGE, headers={"Content-Type": "text/html"})
    project = make_project([
        {"name": name, "kind": "rss", "url": server.url(path), "interval": "1s"}
        for name, path in [("feed", "/feed.xml"), ("fails", "/500.xml"),
                           ("noise", "/noise.xml"), ("login", "/login")]])
    process, _ = spawn(project)
    broken = {"fails": "HTTP 500 from http://127.0.0.1:",
              "noise": "not a readable feed (application/rss+xml; SAXParseException",
              "login": "not a readable feed (text/html; "}
    wait_for(lambda: all(sources_table(project).get(n, {}).get("failures") for n in broken),
             seconds=30)
    polled = len(server.hits("/feed.xml"))
    wait_for(lambda: len(server.hits("/feed.xml")) >= polled + 2)  # still on its schedule
    assert process.poll() is None
    rows = sources_table(project)
    for name, error in broken.items():
        assert rows[name]["last_error"].startswith(error), rows[name]["last_error"]
        assert rows[name]["last_success_at"] is None and rows[name]["cursor"] is None
    assert set(posts_by_source(project)) == {"feed"}
    assert rows["feed"]["failures"] == 0 and len(posts_by_source(project)["feed"]) == 3
    status = CliRunner().invoke(main, ["status", "--config", str(project)])
    assert status.exit_code == 1  # broken sources: an alert
    states = {line.split()[0]: line.split()[2] for line in status.output.splitlines()[1:5]}
    assert states == {"fails": "broken", "feed": "ok", "login": "broken", "noise": "broken"}
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_a_feed_cut_short_loses_and_doubles_nothing_once_it_is_whole(
        server: LoopbackServer, make_project, spawn) -> None:
    """Its whole entries are kept; the broken-off one must not become a post of its own."""
    whole = fixture_bytes(FEED)
    cut = whole[:whole.index(b"<item>", whole.index(b"comment-2")) + 20]  # in comment-3
    server.serve("/cut.xml", Route(cut), Route(whole))  # once cut short, then whole
    project = make_project([{"name": "cut", "kind": "rss", "url": server.url("/cut.xml"),
                             "interval": "1s"}])
    process, _ = spawn(project)
    wait_for(lambda: len(server.hits("/cut.xml")) >= 2 and "cut" in posts_by_source(project),
             seconds=30)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert sources_table(project)["cut"]["failures"] == 0  # whole now
    assert_whole(project, whole)  # its three comments once each, and nothing else


def test_sigterm_mid_pass_finishes_the_running_fetches_and_exits_0(
        server: LoopbackServer, make_project, spawn) -> None:
    body = fixture_bytes(FEED)
    server.serve("/feed.xml", body=body)
    server.serve("/slow.xml", body=body, delay=2)
    slow = [f"slow-{i:02d}" for i in range(20)]  # twice the scheduler's threads
    project = make_project(
        [{"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"}]
        + [{"name": name, "kind": "rss", "url": server.url("/slow.xml"), "interval": "1s"}
           for name in slow], http={"read_timeout": 5, "total_timeout": 8})
    process, log = spawn(project)
    wait_for(lambda: len(server.hits("/slow.xml")) >= 2, seconds=30)
    fetching = 0
    while fetching != len(server.hits("/slow.xml")):  # every worker busy, the rest queued
        fetching = len(server.hits("/slow.xml"))
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    clock = time.monotonic()
    assert process.wait(15) == 0
    assert time.monotonic() - clock < 10  # the 2 s fetches in flight, then out
    # The jobs running at SIGTERM finished (a busy machine may start a fetch just after it);
    # the ones queued for a thread never started.
    fetched = len(server.hits("/slow.xml"))
    assert fetching <= fetched < len(slow)
    assert log.read_text().rstrip().endswith("daemon stopped")  # after the last job's line
    stored = assert_whole(project, body)
    assert len(stored) == 1 + fetched  # the feed, and each slow source fetched

    server.serve("/slow.xml", body=body)  # fast now: a restart finishes the work
    process, _ = spawn(project)
    wait_for(lambda: len(posts_by_source(project)) == 1 + len(slow), seconds=30)
    assert_whole(project, body)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_kill_9_mid_pass_then_a_restart_loses_and_duplicates_nothing(
        server: LoopbackServer, make_project, spawn) -> None:
    body = fixture_bytes(FEED)
    server.serve("/feed.xml", body=body)
    server.serve("/slow.xml", body=body, delay=30)  # in flight whenever the kill comes
    hook = Hook()
    try:
        fast, slow = [f"fast-{i}" for i in range(4)], [f"slow-{i}" for i in range(4)]
        project = make_project(
            [{"name": n, "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"}
             for n in fast]
            + [{"name": n, "kind": "rss", "url": server.url("/slow.xml"), "interval": "1s"}
               for n in slow], RULES, http={"read_timeout": 40, "total_timeout": 60},
            routing={"receivers": ["queue", "hook"], "group_wait": "0s"},
            receivers={"hook": {"type": "webhook", "url": hook.url(), "timeout": 5}})
        process, _ = spawn(project)
        # Killed once the fast sources' posts are flagged (their notices sent, or waiting for
        # the next send: none is being sent, no row is claimed), while every slow source is
        # being fetched.
        wait_for(lambda: sum(outbox(project).values()) == len(fast) * len(FLAGGED)
                 and not claimed(project) and len(server.hits("/slow.xml")) == len(slow),
                 seconds=30)
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        assert sorted(assert_whole(project, body)) == fast
        assert len(hook.accepted()) == outbox(project).get("sent", 0) // len(FLAGGED)

        server.serve("/slow.xml", body=body)
        process, _ = spawn(project)
        wait_for(lambda: len(posts_by_source(project)) == len(fast) + len(slow)
                 and outbox(project) == {"sent": (len(fast) + len(slow)) * len(FLAGGED)},
                 seconds=30)
        stored = assert_whole(project, body)
        flagged = {(p["source"], p["external_id"]) for mine in stored.values() for p in mine
                   if p["severity"] is not None}
        assert flagged == {(s, c) for s in fast + slow for c in FLAGGED}
        assert filed(project) == flagged  # each flagged post in a case (a post has one at most)
        accepted = hook.accepted()
        assert Counter(h.key for h in accepted) == {h.key: 1 for h in accepted}
        delivered = Counter((p["source"], p["external_id"]) for h in accepted
                            for p in h.json["posts"])
        assert delivered == dict.fromkeys(flagged, 1)  # each flagged post notified once
        assert len(hook.hits) == len(accepted)  # and nothing was sent twice or refused
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        hook.release()
        hook.httpd.shutdown()
        hook.httpd.server_close()


def outbox(project: Path) -> dict[str, int]:
    store = Store(load(project).store_url)
    try:
        return store.delivery_counts()
    finally:
        store.close()


def claimed(project: Path) -> int:
    """Outbox rows a sender holds right now (it is between claiming and marking them)."""
    store = Store(load(project).store_url)
    try:
        with store.engine.connect() as db:
            return db.execute(select(func.count()).select_from(deliveries).where(
                deliveries.c.state == "pending",
                deliveries.c.claimed_until > datetime.now(UTC))).scalar_one()
    finally:
        store.close()


def filed(project: Path) -> set[tuple[str, str]]:
    """(source, external id) of every post in a case."""
    store = Store(load(project).store_url)
    try:
        with store.engine.connect() as db:
            return {(r.source, r.external_id) for r in db.execute(
                select(posts.c.source, posts.c.external_id)
                .join(case_posts, case_posts.c.post_id == posts.c.id))}
    finally:
        store.close()
