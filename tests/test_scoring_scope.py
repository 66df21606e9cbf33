"""What a pass scores: a daemon's poll scores exactly the posts it saved (its cost does not
grow with the store), a sweep scores what a killed pass left, and a rescore judged in worker
processes stores what one process stores. The blog comment feed is a recorded one
(tests/fixtures/e2e, see its README)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import fixture_bytes
from loopback import LoopbackServer
from sqlalchemy import func, select

import monitor.pipeline as pipeline
from monitor.config import load
from monitor.model import Fetch, Post
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.schema import flags, posts, scores

FEED = "e2e/comments-v1.xml"


@pytest.fixture
def project(server: LoopbackServer, make_project, store_url: str) -> Path:
    server.serve("/comments.xml", body=fixture_bytes(FEED), etag='"c1"',
                 headers={"Content-Type": "application/rss+xml"})
    return make_project([{"name": "blog", "kind": "rss", "url": server.url("/comments.xml")}],
                        store=store_url)


def left_unscored(store: Store, count: int) -> None:
    """Posts saved by a pass killed before it scored them."""
    now = datetime.now(UTC)
    store.save_fetch("old-blog", "rss", Fetch(tuple(
        Post("old-blog", f"left-{n}", f"https://x.test/{n}", "someone", None,
             "Since the update nothing works, I want the old editor back!", now)
        for n in range(count)), None), now)


def scored(store: Store) -> int:
    with store.engine.connect() as db:
        return db.execute(select(func.count()).select_from(scores)).scalar_one()


def test_a_poll_scores_what_it_saved_and_a_sweep_the_rest(project: Path) -> None:
    config = load(project)
    store = Store(config.store_url)
    try:
        left_unscored(store, 3)
        report = pipeline.run_once(config, store, deliver=False, sweep=False)
        fresh = sum(s.new for s in report.sources)
        assert fresh > 0 and report.scored == fresh == scored(store)  # the 3 left alone
        again = pipeline.run_once(config, store, deliver=False, sweep=False)  # a 304
        assert again.scored == 0
        total, _ = pipeline.score_pending(store, Runtime.of(config))  # the daemon's sweep
        assert total == 3 and scored(store) == fresh + 3
    finally:
        store.close()


def test_a_cron_pass_sweeps_as_it_goes(project: Path) -> None:
    config = load(project)
    store = Store(config.store_url)
    try:
        left_unscored(store, 2)
        report = pipeline.run_once(config, store, deliver=False)
        assert report.scored == sum(s.new for s in report.sources) + 2 == scored(store)
    finally:
        store.close()


def test_the_daemon_schedules_a_sweep(project: Path) -> None:
    from monitor.daemon import SWEEP_EVERY, Daemon

    daemon = Daemon(project)
    try:
        daemon._schedule(daemon.config)
        job = daemon.scheduler.get_job("sweep")
        assert job is not None and job.trigger.interval.total_seconds() == SWEEP_EVERY
        left_unscored(daemon.store, 2)
        daemon._sweep()
        assert scored(daemon.store) == 2
    finally:
        daemon.store.close()


def test_a_rescore_in_worker_processes_stores_what_one_process_stores(project: Path) -> None:
    config = load(project)
    store = Store(config.store_url)
    try:
        left_unscored(store, 7)
        pipeline.run_once(config, store, deliver=False)
        runtime = Runtime.of(config)

        def stored() -> list[tuple]:
            with store.engine.connect() as db:
                return sorted(db.execute(
                    select(posts.c.external_id, scores.c.compound, scores.c.complaint,
                           flags.c.rules).join(scores, scores.c.post_id == posts.c.id)
                    .outerjoin(flags, flags.c.post_id == posts.c.id)).all(), key=str)

        alone = stored()
        with store.engine.begin() as db:
            db.execute(flags.delete())
            db.execute(scores.delete())
        total, _ = pipeline.score_pending(store, runtime, rescore=True, batch=3, jobs=2)
        assert total == len(alone) and stored() == alone
    finally:
        store.close()
