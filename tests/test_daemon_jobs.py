"""The daemon's own jobs, as a real subprocess: the digest at ``digest.at`` (made at start when
the daemon was down at that time, unless ``digest.catch_up`` is off) and the look for backlash
storms."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemons import start_daemon, wait_for
from smtp import Mailbox, smtp_server
from sqlalchemy import select

from monitor.config import load
from monitor.model import Fetch, Post
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.schema import flags, posts

CATCH_UP_AFTER = 3  # seconds after start that the daemon makes a missed digest


def start(config: Path, log: Path) -> subprocess.Popen:
    return start_daemon(config, log, "-v")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(20)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


def test_a_missed_digest_is_made_and_sent_at_start(
        make_project, smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp
    config = digest_project(make_project, port)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    process = start(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: len(mailbox.received()) == 1, 30)
        report = config.parent / "reports" / f"{yesterday.isoformat()}.html"
        assert report.exists() and "Nothing needs you" in report.read_text()
        [(recipient, message)] = mailbox.received()
        assert recipient == "ana@acme.test"
        assert f"{yesterday.day} {yesterday:%b}" in message["Subject"]
    finally:
        assert stop(process) == 0
    text = (tmp_path / "daemon.log").read_text()
    assert f"digest {yesterday} missed while the daemon was down: making it now" in text
    assert f"digest {yesterday}: " in text  # made and sent


def test_with_catch_up_off_a_missed_digest_is_left_to_monitor_digest(
        make_project, smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp
    config = digest_project(make_project, port, catch_up=False)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    log = tmp_path / "daemon.log"
    process = start(config, log)
    try:
        wait_for(lambda: f"digest {yesterday} missed while the daemon was down; not made"
                 in log.read_text(), 30)
        time.sleep(CATCH_UP_AFTER + 2)  # when a catch-up would have been made and sent
    finally:
        assert stop(process) == 0
    assert list((config.parent / "reports").glob("*")) == []
    assert mailbox.received() == []


def digest_project(make_project, port: int, **digest: object) -> Path:
    """A project whose digest is due at midnight (so always missed) and goes to ana."""
    return make_project(
        [], None, digest={"at": "00:00", "to": ["ana@acme.test"], **digest},
        receivers={"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                            "security": "none", "timeout": 5, "sender": "monitor@acme.test",
                            "to": ["ops@acme.test"]}})


def test_the_daemon_files_a_storm(make_project, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    config_path = make_project([], None, events=[{
        "name": "New editor", "date": (now - timedelta(days=1)).isoformat(),
        "keywords": ["new editor"]}])
    config = load(config_path)
    store = Store(config.store_url)
    hour = now.replace(minute=0, second=0, microsecond=0)
    angry = tuple(Post("forum", f"p{i}", f"https://forum.example/t/{i}", f"user{i}", None,
                       "I hate the new editor, it is awful", hour + (now - hour) * i / 20)
                  for i in range(20))
    store.save_fetch("forum", "rss", Fetch(angry, None), now)
    score_pending(store, Runtime.of(config))

    def storms() -> list:
        with store.engine.connect() as db:
            return db.execute(select(posts.c.title, flags.c.severity)
                              .join(flags, flags.c.post_id == posts.c.id)
                              .where(posts.c.source == "event:New editor")).all()

    process = start(config_path, tmp_path / "daemon.log")
    try:
        wait_for(lambda: storms() != [], 30)
        assert [tuple(r) for r in storms()] == [("Backlash storm: New editor", "critical")]
    finally:
        assert stop(process) == 0
        store.close()


def test_an_edited_source_file_is_picked_up_without_a_signal(
        make_project, server, tmp_path: Path) -> None:
    from conftest import fixture_bytes

    server.serve("/watched.xml", body=fixture_bytes("e2e/comments-v1.xml"))
    config = make_project([])
    log = tmp_path / "daemon.log"
    process = start(config, log)
    try:
        wait_for(lambda: "daemon started: 0 sources" in log.read_text(), 30)
        (config.parent / "sources" / "more.yaml").write_text(
            f"sources:\n  - {{name: watched, kind: rss, url: '{server.url('/watched.xml')}', "
            "interval: 1s}\n")
        wait_for(lambda: len(server.hits("/watched.xml")) >= 1, 30)
        assert "config files changed: reloading" in log.read_text()
        (config.parent / "sources" / "more.yaml").write_text("sources: [oops\n")
        wait_for(lambda: "reload refused" in log.read_text(), 30)
        hits = len(server.hits("/watched.xml"))
        wait_for(lambda: len(server.hits("/watched.xml")) > hits, 30)  # the old one goes on
    finally:
        assert stop(process) == 0
