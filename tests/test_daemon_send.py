"""The daemon's send job with a slow receiver: SIGTERM ends it between two notices (exit 0 in
about the time of the one being sent, not the whole backlog), the notices it claimed and did
not send are let go for the next start, which sends each of them once; and a send that runs
longer than its interval is not a WARNING each time its job comes round again."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemons import running_daemon, terminated, wait_for
from filing import save_scores
from hookserver import Hook
from sqlalchemy import func, select

from monitor import daemon as daemons
from monitor import logs
from monitor.config import load
from monitor.model import Fetch, Flag, Post, Routing, Score
from monitor.store import Store
from monitor.store.schema import deliveries

FLAG = Flag("high", ("r",), ("r: angry",), "backlash")
SCORE = Score(-0.8, 0.0, 0.5, 0.5, anger=0.7, angry=True)


def project_with_backlog(make_project, hook: Hook, notices: int) -> Path:
    """A project whose outbox holds ``notices`` due notices for the webhook ``hook``."""
    config = make_project([], None, routing={"receivers": ["queue", "hook"]},
                          receivers={"hook": {"type": "webhook", "url": hook.url(),
                                              "timeout": 10}})
    now = datetime.now(UTC)
    with Store(load(config).store_url) as store:
        posts = tuple(Post("blog", f"p{i}", f"https://x.test/{i}", "ann", "Title", "text",
                           now - timedelta(hours=1), thread_id=f"t{i}")
                      for i in range(notices))
        store.save_fetch("blog", "rss", Fetch(posts, None), now)
        stored = store.posts_to_score()
        save_scores(store, [(s, SCORE, FLAG) for s in stored], now, routes={
            s.id: Routing(("hook",), f"thread:blog:{s.post.thread_id}") for s in stored})
    return config


def outbox(config: Path) -> dict[str, int]:
    """Rows by state, and how many are claimed."""
    with Store(load(config).store_url) as store, store.engine.connect() as db:
        found = dict(db.execute(select(deliveries.c.state, func.count())
                                .group_by(deliveries.c.state)).all())
        found["claimed"] = db.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.claimed_until.is_not(None))).scalar_one()
    return found


def test_sigterm_stops_a_long_send_between_notices_and_the_next_start_sends_the_rest(
        make_project, hook: Hook, tmp_path: Path) -> None:
    config = project_with_backlog(make_project, hook, 30)
    hook.delay = 1.0  # 30 s of sending: SIGTERM must not wait for it (systemd kills at 90 s)
    with running_daemon(config, tmp_path / "first.log", "-v") as process:
        wait_for(lambda: len(hook.hits) >= 2, 60, "the send under way")
        assert terminated(process, 8) == 0  # the notice being sent (1 s), then out
    sent = len(hook.accepted())
    assert outbox(config) == {"sent": sent, "pending": 30 - sent, "claimed": 0}  # let go
    log = (tmp_path / "first.log").read_text()
    assert "not sent, let go for the next send" in log and "Traceback" not in log

    hook.delay = 0.0
    with running_daemon(config, tmp_path / "second.log", "-v") as process:
        wait_for(lambda: outbox(config).get("sent") == 30, 60, "the rest sent")
        assert terminated(process) == 0
    keys = Counter(h.key for h in hook.accepted())
    assert len(keys) == 30 and set(keys.values()) == {1}  # nothing lost, nothing twice


def test_a_send_longer_than_its_interval_is_no_warning(
        make_project, hook: Hook, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler says "skipped: maximum number of running instances reached" each time the
    send job comes round while it still runs: expected with slow receivers, so at DEBUG (was
    a WARNING every 10 s, while WARNING means a problem)."""
    config = project_with_backlog(make_project, hook, 6)
    hook.delay = 0.3  # about 2 s of sending, the job due every 0.2 s
    monkeypatch.setattr(daemons, "SEND_EVERY", 0.2)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # stopped below, not by a signal
    quiet = logging.getLogger(logs.PASS_SOURCES).level  # run() sets it for the daemon's life
    caplog.set_level(logging.DEBUG, logger="apscheduler")
    daemon = daemons.Daemon(config)

    def stop_when_sent() -> None:
        wait_for(lambda: len(hook.accepted()) == 6, 60, "every notice sent")
        daemon._stop(signal.SIGTERM, None)

    stopper = threading.Thread(target=stop_when_sent)
    stopper.start()
    try:
        daemon.run()
    finally:
        stopper.join()
        logging.getLogger(logs.PASS_SOURCES).setLevel(quiet)
    skips = [r for r in caplog.records if "maximum number of running instances" in r.message]
    assert skips and {r.levelno for r in skips} == {logging.DEBUG}, \
        [(r.levelname, r.message) for r in skips]
    assert daemon._quiet_send_skips not in logging.getLogger("apscheduler.scheduler").filters


def test_a_send_job_running_far_too_long_still_warns(make_project, hook: Hook) -> None:
    """Only a send within its bounds is quiet; one past ``SEND_STUCK`` has hung (and another
    job's skips are other problems): those stay WARNINGs."""
    config = project_with_backlog(make_project, hook, 0)
    daemon = daemons.Daemon(config)
    try:
        daemon._schedule(daemon.config)

        def skipped(job_id: str) -> logging.LogRecord:
            record = logging.LogRecord(
                "apscheduler.scheduler", logging.WARNING, __file__, 1,
                'Execution of job "%s" skipped: maximum number of running instances reached '
                "(%d)", (daemon.scheduler.get_job(job_id), 1), None)
            daemon._quiet_send_skips(record)
            return record

        daemon.sending_since = time.monotonic()
        assert skipped("send").levelno == logging.DEBUG
        assert skipped("sweep").levelno == logging.WARNING
        daemon.sending_since = time.monotonic() - daemons.SEND_STUCK - 1
        assert skipped("send").levelno == logging.WARNING
    finally:
        daemon.store.close()
