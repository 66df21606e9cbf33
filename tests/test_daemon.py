"""The daemon as a real subprocess against sources on 127.0.0.1: it polls on schedule, keeps
going past a broken source, reloads on SIGHUP (refusing a broken config), stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import fixture_bytes
from loopback import LoopbackServer

from monitor.config import load
from monitor.store import Store

FEED = "e2e/comments-v1.xml"


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


@pytest.fixture
def project(server: LoopbackServer, make_project) -> Path:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve("/broken.xml", status=500)
    return make_project([
        {"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"},
        {"name": "broken", "kind": "rss", "url": server.url("/broken.xml"), "interval": "1s"},
    ])


def start(project: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", "-v", "daemon", "--config",
                             str(project)], stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), cwd=project.parent)


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
    assert "broken: fetched 0" in log.read_text() and "FAILED: HTTP 500" in log.read_text()
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
