"""On SQLite ``monitor run`` and ``monitor daemon`` take one lock: a run beside a daemon is
refused at once with a clear message (exit 1), and a daemon started while a run works waits for
it, so the two never write one database file at once nor poll every source twice."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import fixture_bytes
from daemons import start_daemon, wait_for
from loopback import LoopbackServer

from monitor.cli import main
from monitor.config import load
from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.passlock import daemon_lock, daemon_running, pass_lock

pytestmark = pytest.mark.chaos


def _project(server: LoopbackServer, make_project) -> Path:
    server.serve("/feed.xml", body=fixture_bytes("e2e/comments-v1.xml"))
    return make_project([{"name": "feed", "kind": "rss", "url": server.url("/feed.xml"),
                          "interval": "1h"}])


def _database(project: Path) -> str:
    store = Store(load(project).store_url)
    try:
        database = store.engine.url.database
    finally:
        store.close()
    assert database
    return database


def test_a_run_beside_a_running_daemon_is_refused_with_a_clear_message(
        server: LoopbackServer, make_project, tmp_path: Path) -> None:
    project = _project(server, make_project)
    database = _database(project)
    process = start_daemon(project, tmp_path / "daemon.log", "-v")
    try:
        wait_for(lambda: daemon_running(database) or process.poll() is not None,
                 what="the daemon's lock")
        assert process.poll() is None, (tmp_path / "daemon.log").read_text()
        result = CliRunner().invoke(main, ["run", "--wait", "30s", "--config", str(project)])
        assert result.exit_code == 1
        assert "a monitor daemon is running on" in result.output
        assert "stop it before `monitor run`" in result.output
    finally:
        process.terminate()
        process.wait(30)
    store = Store(load(project).store_url)
    try:
        with pass_lock(store.engine, 0):  # the daemon is gone: a run may work again
            assert not daemon_running(database)
    finally:
        store.close()


def test_a_daemon_started_during_a_run_waits_for_it(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    database = store.engine.url.database
    assert database
    got: list[object] = []
    try:
        with pass_lock(store.engine, 0):  # a `monitor run` at work
            starting = threading.Thread(target=lambda: got.append(daemon_lock(database)))
            starting.start()
            starting.join(1.0)
            assert starting.is_alive() and not got  # waiting for the run to end
        starting.join(10)
        held = got[0]
        assert held is not None
        try:
            assert daemon_running(database)
            try:
                with pass_lock(store.engine, 0):
                    raise AssertionError("a run got in beside the daemon")
            except StoreError as error:
                assert "a monitor daemon is running" in str(error)
            assert daemon_lock(database) is None  # a second daemon is refused
        finally:
            for handle in held:
                handle.close()
        with pass_lock(store.engine, 0):
            pass
    finally:
        store.close()


def test_a_second_daemon_process_is_still_refused(
        server: LoopbackServer, make_project, tmp_path: Path) -> None:
    project = _project(server, make_project)
    database = _database(project)
    first = start_daemon(project, tmp_path / "first.log")
    try:
        wait_for(lambda: daemon_running(database), what="the first daemon's lock")
        second = subprocess.run([sys.executable, "-m", "monitor.cli", "daemon", "--config",
                                 str(project)], capture_output=True, text=True,
                                cwd=project.parent, timeout=60)
        assert second.returncode != 0
        assert "another monitor daemon is running" in second.stdout + second.stderr
    finally:
        first.terminate()
        first.wait(30)
