"""The monitor alerts about itself: a broken source pages the admins' receiver once and again
on recovery, a dead notification pages once, a gap with no pass pages once; alerts go through
routes and silences like any flag but never into the outreach queue; `run` and `status` say so
in their exit codes and in JSON.

Real servers on 127.0.0.1: the feed on the loopback server, the admins' webhook on a Hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from conftest import fixture_bytes
from hookserver import Hook
from loopback import LoopbackServer, Route
from sqlalchemy import update

from monitor.alarms import source_alarms, stall_alarm
from monitor.cli import main
from monitor.store import Store, runs
from monitor.store.passlock import PASS_SUFFIX, lock_beside

V1 = "e2e/comments-v1.xml"
RULES = """\
rules:
  - {id: disaster, severity: critical, category: backlash, when: {words: [disaster]}}
"""


def monitor(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(config: Path, *more: str) -> Result:
    return monitor("run", "--config", str(config), *more)


def alerts_sent(hook: Hook) -> list[str]:
    """The alert ids the admins' webhook received, in order."""
    return [p["external_id"] for hit in hook.hits for p in hit.json["posts"]]


def cases(config: Path) -> list[dict[str, Any]]:
    return json.loads(monitor("queue", "list", "--state", "all", "--json", "--config",
                              str(config)).stdout)


@pytest.fixture
def project(make_project, server: LoopbackServer, hook: Hook, sqlite_url: str):
    """The blog comments (one flagged post) and the admins' webhook ``ops``."""
    def make(feed: Route | list[Route] | None = None, **config: Any) -> Path:
        server.serve("/comments.xml", *([feed] if isinstance(feed, Route) else feed or [
            Route(body=fixture_bytes(V1))]))
        config.setdefault("store", sqlite_url)
        config.setdefault("receivers", {"ops": {"type": "webhook", "url": hook.url("/ops"),
                                                "timeout": 5}})
        config.setdefault("alerts", {"receivers": ["ops"], "after_failures": 2})
        return make_project([{"name": "blog", "kind": "rss",
                              "url": server.url("/comments.xml")}], RULES, **config)
    return make


def test_a_broken_source_pages_the_admins_once_and_again_when_it_recovers(
        project, hook: Hook) -> None:
    down = Route(body=b"upstream down", status=500)
    config = project([down, down, down, Route(body=fixture_bytes(V1))])
    first = run(config)
    assert first.exit_code == 1 and alerts_sent(hook) == []  # one failure is not broken yet
    second = run(config)
    assert second.exit_code == 1 and "alerts about the monitor itself: 1" in second.stdout
    broken, = alerts_sent(hook)
    assert broken == "source-broken:blog:never"
    posted = hook.hits[0].json["posts"][0]
    assert posted["severity"] == "high" and posted["category"] == "system"
    assert "blog (rss) failed 2 times in a row" in posted["text"] and "HTTP 500" in posted["text"]
    assert run(config).exit_code == 1 and len(hook.hits) == 1  # still broken: told once

    recovered = run(config)
    assert recovered.exit_code == 0, recovered.output
    assert alerts_sent(hook) == [broken, "source-recovered:blog:never"]
    assert run(config).exit_code == 0 and len(hook.hits) == 2
    assert all(c["source"] == "blog" for c in cases(config))  # alerts are never cases


def test_a_dead_notification_pages_once_and_the_dead_admins_receiver_does_not_loop(
        project, hook: Hook) -> None:
    hook.status, hook.body = 404, b"no such hook"  # the team's hook and the admins' both
    config = project(routing={"receivers": ["queue", "team"]},
                     receivers={"team": {"type": "webhook", "url": hook.url("/team"),
                                         "timeout": 5},
                                "ops": {"type": "webhook", "url": hook.url("/ops"),
                                        "timeout": 5}},
                     delivery={"max_attempts": 1})
    first = run(config)
    assert first.exit_code == 1  # a notification died in this pass
    assert [h.path for h in hook.hits] == ["/team", "/ops"]  # the alert tried at once
    assert hook.hits[1].json["posts"][0]["external_id"].startswith("delivery-dead:")
    assert ") after 1 attempt: " in hook.hits[1].json["posts"][0]["text"]  # not "attempts"
    again = run(config)  # the alert's own death is not alerted: no loop, nothing new
    assert again.exit_code == 0 and len(hook.hits) == 2, again.output


def test_a_gap_with_no_pass_pages_once(project, hook: Hook, sqlite_url: str) -> None:
    config = project(interval="10m")
    assert run(config).exit_code == 0
    store = Store(sqlite_url)
    try:  # the last pass ended three hours ago: the cron line or the daemon stopped
        with store.transaction() as db:
            db.execute(update(runs).values(finished_at=datetime.now(UTC) - timedelta(hours=3)))
    finally:
        store.close()
    result = run(config)
    assert result.exit_code == 0 and "alerts about the monitor itself: 1" in result.stdout
    alert = hook.hits[0].json["posts"][0]
    assert alert["severity"] == "critical" and alert["external_id"].startswith("stalled:")
    assert "No pass ended between" in alert["text"] and "3 hours" in alert["text"]
    assert run(config).exit_code == 0 and len(hook.hits) == 1


def test_on_postgresql_a_pass_whose_process_is_gone_is_unfinished_at_once(
        make_project, pg_url: str) -> None:
    """PostgreSQL cannot tell whether a killed run held the pass lock (a daemon's polls take
    none), so status waited out the pass deadline (11 minutes) before saying UNFINISHED. A
    pass now notes who makes it: on its machine, a pass whose process is gone is unfinished
    at once; one whose process lives, or from another machine, may still be going."""
    config = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                          store=pg_url)
    began = subprocess.run([sys.executable, "-c", (
        "import sys; from datetime import UTC, datetime; from monitor.store import Store; "
        "Store(sys.argv[1]).begin_run(datetime.now(UTC))"), pg_url], timeout=60)
    assert began.returncode == 0  # that process has ended, as a killed run's has
    status = monitor("status", "--json", "--config", str(config))
    assert status.exit_code == 1 and json.loads(status.stdout)["unfinished_pass_at"]
    store = Store(pg_url)
    try:
        ended = datetime.now(UTC) - timedelta(minutes=20)
        store.record_run(ended, ended, {})  # a pass that ended, before the two below
        store.begin_run(datetime.now(UTC))  # this process lives: its pass may be going
        assert monitor("status", "--config", str(config)).exit_code == 0
        with store.engine.begin() as db:  # one from another machine: until its deadline
            db.execute(update(runs).where(~runs.c.ended).values(
                report={"by": {"host": "elsewhere.example", "pid": 1}}))
        assert monitor("status", "--config", str(config)).exit_code == 0
        with store.engine.begin() as db:
            db.execute(update(runs).where(~runs.c.ended).values(
                started_at=datetime.now(UTC) - timedelta(minutes=12)))
        late = monitor("status", "--config", str(config))
        assert late.exit_code == 1 and "UNFINISHED: the pass started " in late.stdout
    finally:
        store.close()


def test_stall_alarm_limits() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert stall_alarm(None, now, 600, set()) is None  # a first pass is no stall
    assert stall_alarm(now - timedelta(seconds=600), now, 600, set()) is None
    late = stall_alarm(now - timedelta(seconds=601), now, 600, set())
    assert late is not None and late.severity == "critical"
    assert stall_alarm(now - timedelta(seconds=601), now, 600, {late.key}) is None


def test_alert_texts_tell_times_in_the_configured_zone() -> None:
    """The people paged read their own zone's times, as in every other report (2:30 in
    Newfoundland, 12:00 UTC, the key unchanged)."""
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    zone = ZoneInfo("America/St_Johns")
    late = stall_alarm(now - timedelta(hours=3), now, 600, set(), zone)
    assert late is not None
    assert "between 2026-12-02 05:30 America/St_Johns and 2026-12-02 08:30 America/St_Johns" \
        in late.text
    assert late.key == f"stalled:{(now - timedelta(hours=3)).isoformat()}"
    row = {"name": "blog", "kind": "rss", "failures": 0, "last_error": None,
           "last_success_at": now}
    recovered, = source_alarms([row], {"source-broken:blog:never"}, 3, zone)
    assert "(last success: 2026-12-02 08:30 America/St_Johns)" in recovered.text
    broken, = source_alarms([{**row, "failures": 3, "last_error": "HTTP 503"}], set(), 3)
    assert "(last success: 2026-12-02 12:00 UTC)" in broken.text  # no zone configured


def test_alerts_follow_routes_and_silences(project, hook: Hook) -> None:
    config = project([Route(body=b"down", status=503), Route(body=fixture_bytes(V1))],
                     alerts={"receivers": [], "after_failures": 1},
                     routing={"receivers": ["queue"], "routes": [
                         {"match": {"category": "system"}, "receivers": ["queue", "ops"]}]})
    assert run(config).exit_code == 1
    assert alerts_sent(hook) == ["source-broken:blog:never"]  # by the route, not the queue
    muted = monitor("silence", "add", "--match", "category=system", "--for", "1h",
                    "--reason", "known outage", "--config", str(config))
    assert muted.exit_code == 0, muted.output
    assert run(config).exit_code == 0 and len(hook.hits) == 1  # filed; the silence holds it
    status = json.loads(monitor("status", "--json", "--config", str(config)).stdout)
    assert [a["external_id"] for a in status["alerts"]] == ["source-recovered:blog:never",
                                                            "source-broken:blog:never"]
    assert cases(config) == [c for c in cases(config) if c["source"] == "blog"]


def test_without_admins_the_root_route_gets_no_alerts(project, hook: Hook) -> None:
    config = project(Route(body=b"down", status=503), alerts={"after_failures": 1},
                     routing={"receivers": ["queue", "ops"]})  # the team's root route
    assert run(config).exit_code == 1
    assert hook.hits == [] and cases(config) == []


def test_run_and_status_json(project, hook: Hook) -> None:
    config = project(Route(body=b"down", status=503), alerts={"after_failures": 1})
    result = run(config, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["exit_code"] == 1 and report["alerts"] == 1
    assert report["sources"][0]["name"] == "blog" and "HTTP 503" in report["sources"][0]["error"]
    datetime.fromisoformat(report["started_at"])

    status = monitor("status", "--json", "--config", str(config))
    assert status.exit_code == 1
    found = json.loads(status.stdout)
    blog, = found["sources"]
    assert blog["state"] == "broken" and blog["failures"] == 1
    assert found["exit_code"] == 1 and found["stalled"] is False
    assert found["cases"] == {"open": 0, "overdue": 0}
    assert found["alerts"][0]["severity"] == "high"


def test_due_only_exits_1_while_a_source_backs_off(project) -> None:
    config = project(Route(body=b"down", status=503))
    assert run(config).exit_code == 1
    skipped = run(config, "--due-only")  # in back-off: not tried, but not forgotten either
    assert skipped.exit_code == 1
    assert "skipped while backing off after failures: blog" in skipped.stdout


def test_status_tells_of_a_pass_that_never_ended(project, sqlite_url: str) -> None:
    """A killed run (or one whose store failed) leaves its start: status exits 1 saying so;
    a pass still holding the lock is left alone, and the next pass that ends clears it."""
    config = project()
    assert run(config).exit_code == 0
    store = Store(sqlite_url)
    store.begin_run(datetime.now(UTC))  # the run that was killed -9 mid-pass
    status = monitor("status", "--json", "--config", str(config))
    assert status.exit_code == 1
    assert json.loads(status.stdout)["unfinished_pass_at"] is not None
    assert "UNFINISHED: the pass started " in monitor("status", "--config", str(config)).stdout
    with lock_beside(store.engine.url.database, PASS_SUFFIX):  # a pass at work holds the lock
        assert monitor("status", "--config", str(config)).exit_code == 0
    assert run(config).exit_code == 0
    status = monitor("status", "--json", "--config", str(config))
    assert status.exit_code == 0 and json.loads(status.stdout)["unfinished_pass_at"] is None
    store.close()
