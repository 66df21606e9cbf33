"""`monitor run` killed with SIGKILL at random moments, again and again, then left to finish:
every post stored once, every flag in exactly one case, every notice delivered, and a notice
sent twice (killed between the receiver's answer and the mark) only ever under the same key."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import fixture_bytes
from hookserver import Hook
from loopback import LoopbackServer
from sqlalchemy import func, select, update

from monitor.store import Store
from monitor.store.schema import case_posts, deliveries, flags, posts

pytestmark = pytest.mark.chaos

EVERYTHING = r"""rules:
  - {id: every-post, severity: low, category: test, when: {regex: '\w'}}
"""


def run(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config",
                             str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_at_random_moments_loses_and_doubles_nothing(
        server: LoopbackServer, make_project, hook: Hook, sqlite_url: str) -> None:
    server.serve("/guardian.rss", body=fixture_bytes("feeds/rss-parser/guardian.rss"))
    server.serve("/comments.xml", body=fixture_bytes("e2e/comments-v1.xml"))
    hook.delay = 0.02  # sending takes a while: kills land there too
    config = make_project(
        [{"name": "guardian", "kind": "rss", "url": server.url("/guardian.rss")},
         {"name": "comments", "kind": "rss", "url": server.url("/comments.xml")}],
        EVERYTHING, store=sqlite_url, routing={"receivers": ["queue", "hook"]},
        receivers={"hook": {"type": "webhook", "url": hook.url(), "timeout": 5}})
    chance = random.Random(20261202)
    for _ in range(6):
        process = run(config)
        time.sleep(chance.uniform(0.3, 1.5))  # start-up is ~0.5 s: before, during, after
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)

    store = Store(sqlite_url)
    try:
        with store.engine.begin() as db:  # a killed sender's claims lapse (after 10 minutes)
            db.execute(update(deliveries).values(
                claimed_until=datetime.now(UTC) - timedelta(seconds=1)))
        last = run(config)
        assert last.wait(60) == 0, last.stderr.read() if last.stderr else ""
        with store.engine.connect() as db:
            stored = db.execute(select(posts.c.source, posts.c.external_id)).all()
            flagged = db.execute(select(func.count()).select_from(flags)).scalar()
            in_cases = db.execute(select(case_posts.c.post_id)).scalars().all()
            outbox = db.execute(select(deliveries.c.post_id, deliveries.c.state,
                                       deliveries.c.batch_key)).all()
    finally:
        store.close()
    assert len(stored) == len(set(stored)) == 58  # 55 news items and 3 comments, once each
    assert flagged == 58 and sorted(in_cases) == sorted(set(in_cases)) and len(in_cases) == 58
    assert len(outbox) == 58 and {row.state for row in outbox} == {"sent"}
    delivered = {key: sorted(hit.posts) for hit in hook.accepted() for key in [hit.key]}
    assert sum(len(p) for p in delivered.values()) == 58  # every post, each in one notice
    for hit in hook.accepted():  # a notice sent again carries its first posts, same key
        assert sorted(hit.posts) == delivered[hit.key]
