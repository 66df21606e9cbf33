"""Source health: ok, quiet and broken are told apart, in `monitor status` and the digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from conftest import fixture_bytes
from loopback import LoopbackServer
from pydantic import BaseModel

from monitor.cli import main
from monitor.config import Source, load
from monitor.health import Health, assess
from monitor.model import Fetch, Post
from monitor.store import Store

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


class NoOptions(BaseModel):
    pass


def source(name: str, quiet_after: float = 86400.0) -> Source:
    return Source(name, "rss", 900.0, (), NoOptions(), "sources/x.yaml", quiet_after)


def post(name: str) -> Post:
    return Post(name, "1", "https://x.test/1", None, None, "hi", NOW)


def test_ok_quiet_broken_and_never_run(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.save_fetch("fresh", "rss", Fetch((post("fresh"),), None), NOW - timedelta(hours=2))
    store.save_fetch("stale", "rss", Fetch((post("stale"),), None), NOW - timedelta(days=3))
    store.save_fetch("stale", "rss", Fetch((), None, unchanged=True), NOW)
    store.save_fetch("empty", "rss", Fetch((), None), NOW)
    store.save_fetch("failing", "rss", Fetch((post("failing"),), None), NOW)
    store.record_failure("failing", "rss", "HTTP 500 from https://x.test/feed", NOW)
    store.record_failure("failing", "rss", "HTTP 500 from https://x.test/feed", NOW)
    found = {h.name: h for h in assess(
        [source(n) for n in ("fresh", "stale", "empty", "failing", "new")],
        store.source_health(), NOW)}
    assert {n: h.state for n, h in found.items()} == {
        "fresh": "ok", "stale": "quiet", "empty": "quiet", "failing": "broken",
        "new": "never run"}
    assert found["stale"].detail == "nothing new for 3 days"
    assert found["failing"].detail == ("failed 2 times in a row: HTTP 500 from "
                                       "https://x.test/feed; backing off: next try in 60 minutes")
    assert found["failing"].next_at == NOW + timedelta(hours=1)  # 15 min doubled twice
    assert found["fresh"].next_at == NOW - timedelta(hours=2) + timedelta(minutes=15)
    assert found["new"].next_at is None
    # A longer quiet_after makes the same silence normal.
    relaxed = assess([source("stale", quiet_after=7 * 86400)], store.source_health(), NOW)
    assert relaxed[0].state == "ok"
    store.close()


def test_status_and_digest_show_broken_and_quiet(server: LoopbackServer, make_project) -> None:
    server.serve("/good.rss", body=fixture_bytes("feeds/rss-parser/gulp-atom.atom"))
    server.serve("/gone.rss", status=410)
    config = make_project([
        {"name": "good", "kind": "rss", "url": server.url("/good.rss")},
        {"name": "gone", "kind": "rss", "url": server.url("/gone.rss")},
        {"name": "later", "kind": "rss", "url": server.url("/good.rss")},
    ])
    runner = CliRunner()
    runner.invoke(main, ["run", "--config", str(config), "--source", "good", "--source", "gone"])
    status = runner.invoke(main, ["status", "--config", str(config)])
    assert status.exit_code == 1
    lines = {line.split()[0]: line for line in status.output.splitlines()[1:4]}
    assert "broken" in lines["gone"] and "HTTP 410" in lines["gone"]
    assert "backing off: next try in 30 minutes" in lines["gone"]
    assert " ok " in lines["good"] and "never run" in lines["later"]
    assert status.output.splitlines()[4].startswith(
        "3 sources: 1 ok, 0 quiet, 1 broken, 1 never run")
    assert "cases: 0 open, 0 overdue" in status.output.splitlines()
    digest = runner.invoke(main, ["digest", "--config", str(config)])
    html = Path(digest.output.split()[0]).read_text()
    assert "Sources that need a look" in html and "gone (rss): failed 1 time in a row" in html
    assert "good (rss)" not in html


def test_the_next_try_is_said_from_the_time_asked_not_from_the_failure(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.save_fetch("fresh", "rss", Fetch((post("fresh"),), None), NOW)
    for _ in range(2):  # 15 min doubled twice: next try at NOW + 1 h
        store.record_failure("failing", "rss", "HTTP 500", NOW)

    def asked(later: timedelta) -> dict[str, Health]:
        return {h.name: h for h in assess([source("fresh"), source("failing"), source("new")],
                                          store.source_health(), NOW + later)}

    soon, due, late = asked(timedelta(minutes=50)), asked(timedelta(minutes=61)), \
        asked(timedelta(hours=3))
    store.close()
    assert soon["failing"].detail.endswith("; backing off: next try in 10 minutes")
    assert due["failing"].detail.endswith("; backing off: next try now")
    assert late["failing"].detail.endswith("; backing off: next try overdue by 2 hours")
    assert [h.overdue for h in (soon["failing"], due["failing"], late["failing"])] == \
        [False, False, True]
    # A healthy source is due an interval after it was read, and "now" until its schedule's
    # next run should have taken it; then overdue (is the daemon running?).
    assert soon["fresh"].next_try == "overdue by 35 minutes" and soon["fresh"].overdue
    assert asked(timedelta(minutes=20))["fresh"].next_try == "now"
    assert asked(timedelta(minutes=1))["fresh"].next_try == "in 14 minutes"
    assert asked(timedelta(minutes=14, seconds=40))["fresh"].next_try == "in 20 seconds"
    assert late["new"].next_try == "now" and not late["new"].overdue  # never tried: due


def test_status_says_when_each_source_is_tried_next(make_project) -> None:
    config = make_project([{"name": n, "kind": "rss", "url": f"http://127.0.0.1:9/{n}"}
                           for n in ("backing", "stopped", "new")])  # 15 min intervals
    store = Store(load(config).store_url)
    now = datetime.now(UTC)
    store.record_failure("backing", "rss", "HTTP 500", now - timedelta(minutes=10))
    store.save_fetch("stopped", "rss", Fetch((post("stopped"),), None), now - timedelta(hours=5))
    store.close()
    status = CliRunner().invoke(main, ["status", "--config", str(config)])
    rows = {line.split()[0]: line for line in status.output.splitlines()[1:4]}
    assert "backing off: next try in 20 minutes" in rows["backing"]
    shown = datetime.strptime(" ".join(rows["backing"].split()[4:6]), "%Y-%m-%d %H:%M")
    assert abs(shown.replace(tzinfo=UTC) - (now + timedelta(minutes=20))) < timedelta(minutes=1)
    assert rows["stopped"].split()[5] == "overdue"  # due at 15 min: nothing has polled it
    assert rows["new"].split()[4:6] == ["never", "now"]


def test_a_failing_source_backs_off_exponentially_up_to_a_cap() -> None:
    from monitor.health import MAX_BACKOFF, retry_interval

    assert [retry_interval(900, n) for n in range(6)] == [900, 1800, 3600, 7200, 14400, 21600]
    assert retry_interval(900, 100) == MAX_BACKOFF == 6 * 3600
    assert retry_interval(86400, 3) == 86400  # a daily source never waits less than a day
