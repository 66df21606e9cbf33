"""The daemon tells its admins of its own troubles: a source that breaks (once) and recovers
(once), and, from its watchdog, a stall while every job hangs. A real daemon subprocess,
sources on 127.0.0.1, the admins' receiver a `type: file` receiver read back line by line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import fixture_bytes
from daemons import start_daemon, wait_for
from loopback import LoopbackServer, Route

FEED = "e2e/comments-v1.xml"


def told(alerts: Path) -> list[str]:
    """The alert ids the admins' file receiver got, in order."""
    if not alerts.exists():
        return []
    return [p["external_id"] for line in alerts.read_text().splitlines()
            for p in json.loads(line)["posts"]]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def project(make_project, url: str, told_to: Path, **config: object) -> Path:
    return make_project([{"name": "feed", "kind": "rss", "url": url, "interval": "1s"}],
                        receivers={"admins": {"type": "file", "path": str(told_to)}},
                        routing={"group_wait": "1s"}, **config)


def test_a_source_that_breaks_and_recovers_is_told_once_each(
        server: LoopbackServer, make_project, tmp_path: Path,
        running: list[subprocess.Popen]) -> None:
    down = Route(status=500, body=b"down")
    server.serve("/feed.xml", down, down, Route(body=fixture_bytes(FEED)))
    alerts = tmp_path / "alerts.jsonl"
    config = project(make_project, server.url("/feed.xml"), alerts,
                     alerts={"receivers": ["admins"], "after_failures": 2})
    running.append(start_daemon(config, tmp_path / "daemon.log", "-v"))
    wait_for(lambda: len(told(alerts)) == 2, 40, "broken, then recovered")
    assert told(alerts) == ["source-broken:feed:never", "source-recovered:feed:never"]
    hits = len(server.hits("/feed.xml"))
    wait_for(lambda: len(server.hits("/feed.xml")) >= hits + 2)  # polled on, told no more
    assert len(told(alerts)) == 2


def test_the_watchdog_tells_of_a_stall_while_every_job_hangs(
        server: LoopbackServer, make_project, tmp_path: Path,
        running: list[subprocess.Popen]) -> None:
    server.serve("/feed.xml", Route(body=fixture_bytes(FEED)),
                 Route(body=fixture_bytes(FEED), delay=30))  # then every poll hangs
    alerts = tmp_path / "alerts.jsonl"
    config = project(make_project, server.url("/feed.xml"), alerts,
                     alerts={"receivers": ["admins"], "stalled_after": "3s"},
                     http={"read_timeout": 60, "total_timeout": 60})
    running.append(start_daemon(config, tmp_path / "daemon.log"))
    wait_for(lambda: told(alerts) != [], 30, "the stall alert")
    stalled, = told(alerts)
    assert stalled.startswith("stalled:")
    assert "Monitor stalled" in (tmp_path / "daemon.log").read_text()
