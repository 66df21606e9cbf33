"""Backlash storms: a burst of negative posts about a launch is flagged once, routed like any
flag, and while its case is open it holds back the notices of posts about the same launch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor import cases
from monitor.backlash.events import FORMING_WAIT
from monitor.backlash.storms import file_storms
from monitor.config import Config, load
from monitor.model import Fetch, Post
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.schema import deliveries, flags, posts

RULES = """\
rules:
  - {id: hate, severity: high, category: backlash, when: {words: [hate, awful, terrible]}}
"""
ANGRY = ["I hate the new editor, it is awful and slow",
         "The new editor is terrible, I hate what you did",
         "Awful. The new editor broke my whole workflow, I hate it"]
CALM = "Trying the new editor today, it seems fine so far"
NOW = datetime.now(UTC).replace(minute=40, second=0, microsecond=0)


@pytest.fixture
def setup(make_project, store_url: str) -> tuple[Config, Store]:
    path: Path = make_project(
        [], RULES, store=store_url,
        events=[{"name": "New editor", "date": (NOW - timedelta(days=3)).isoformat(),
                 "keywords": ["new editor"]}],
        routing={"receivers": ["queue", "hook"]},
        receivers={"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}})
    config = load(path)
    store = Store(config.store_url)
    yield config, store
    store.close()


def seed(store: Store, texts_at: list[tuple[str, datetime]], prefix: str) -> None:
    found = tuple(Post("forum", f"{prefix}-{i}", f"https://forum.example/t/{prefix}-{i}",
                       f"{prefix}-user{i}", None, text, at, thread_id=f"{prefix}-{i}")
                  for i, (text, at) in enumerate(texts_at))
    store.save_fetch("forum", "rss", Fetch(found, None), NOW)


def background(seed_value: int = 7, days: int = 8) -> list[tuple[str, datetime]]:
    """Hourly chatter about the launch: mostly calm, now and then one angry post."""
    rng = random.Random(seed_value)
    out = []
    for hour in range(days * 24, 0, -1):
        at = NOW.replace(minute=0) - timedelta(hours=hour)
        out += [(CALM, at + timedelta(minutes=5))] * rng.randint(0, 2)
        if rng.random() < 0.3:
            out.append((rng.choice(ANGRY), at + timedelta(minutes=20)))
    return out


def burst(count: int) -> list[tuple[str, datetime]]:
    start = NOW.replace(minute=0)
    return [(ANGRY[i % 3], start + timedelta(minutes=i % 39)) for i in range(count)]


def judge_and_storm(config: Config, store: Store) -> int:
    judge = Runtime.of(config)
    score_pending(store, judge)
    return file_storms(store, judge, NOW)


def storm_posts(store: Store) -> list:
    with store.engine.connect() as db:
        return db.execute(select(posts, flags.c.severity, flags.c.tags)
                          .join(flags, flags.c.post_id == posts.c.id)
                          .where(posts.c.source.startswith("event:"))).all()


def delivery_of(store: Store, external_id: str):
    with store.engine.connect() as db:
        return db.execute(select(deliveries.c.state, deliveries.c.folded_into)
                          .join(posts, posts.c.id == deliveries.c.post_id)
                          .where(posts.c.external_id == external_id)).one()


def test_ordinary_chatter_raises_no_storm(setup: tuple[Config, Store]) -> None:
    config, store = setup
    seed(store, background(), "bg")
    assert judge_and_storm(config, store) == 0
    assert storm_posts(store) == []


def test_one_person_posting_thirty_times_is_no_storm(setup: tuple[Config, Store]) -> None:
    config, store = setup
    seed(store, background(), "bg")
    found = tuple(Post("forum", f"troll-{i}", f"https://forum.example/t/troll-{i}", "troll",
                       None, text, at) for i, (text, at) in enumerate(burst(30)))
    store.save_fetch("forum", "rss", Fetch(found, None), NOW)
    assert judge_and_storm(config, store) == 0


def test_a_burst_is_one_critical_storm_flag_routed_and_queued(
        setup: tuple[Config, Store]) -> None:
    config, store = setup
    seed(store, background() + burst(30), "bg")
    assert judge_and_storm(config, store) == 1
    [storm] = storm_posts(store)
    assert storm.severity == "critical" and "event:New editor" in storm.tags
    assert storm.source == "event:New editor" and storm.title == "Backlash storm: New editor"
    assert "negative posts about New editor in the hour to" in storm.text and storm.reach >= 30
    case = store.list_cases(now=NOW)
    storm_case = next(c for c in case if c.group_key.startswith("thread:event:"))
    assert storm_case.severity == "critical"
    assert delivery_of(store, storm.external_id) == ("pending", None)

    # The next pass sees the same storm: no second flag, case or notice.
    assert judge_and_storm(config, store) == 1
    assert len(storm_posts(store)) == 1
    with store.engine.connect() as db:
        sent = db.execute(select(deliveries).where(deliveries.c.post_id == storm.id)).all()
    assert len(sent) == 1

    # The storm grows: the same storm post, updated with its figures, still no new notice.
    seed(store, burst(45), "more")
    assert judge_and_storm(config, store) == 1
    [grown] = storm_posts(store)
    assert grown.id == storm.id and grown.version == 2 and grown.reach > storm.reach


def test_an_open_storm_holds_back_notices_about_its_launch(setup: tuple[Config, Store]) -> None:
    config, store = setup
    seed(store, background() + burst(30), "bg")
    judge_and_storm(config, store)
    storm_case = next(c for c in store.list_cases(now=NOW)
                      if c.group_key.startswith("thread:event:"))

    late = NOW + timedelta(minutes=1)
    seed(store, [("I hate the new editor so much", late),
                 ("I hate the checkout page, it is awful", late)], "late")
    judge_and_storm(config, store)
    assert delivery_of(store, "late-0") == ("inhibited", storm_case.id)  # about the launch
    assert delivery_of(store, "late-1") == ("pending", None)              # about something else
    assert {"late-0", "late-1"} <= {c.url.rsplit("/", 1)[-1] for c in store.list_cases(now=NOW)}

    cases.resolve(store, storm_case.id, actor="ana", now=NOW)
    seed(store, [("Awful, I hate the new editor", late)], "after")
    judge_and_storm(config, store)
    assert delivery_of(store, "after-0") == ("pending", None)  # the storm is over: page again


def test_a_storm_nobody_closes_stops_holding_back_after_it_calms(
        setup: tuple[Config, Store]) -> None:
    config, store = setup
    seed(store, background() + burst(30), "bg")
    judge_and_storm(config, store)
    assert store.open_storms(NOW, 6 * 3600)
    assert store.open_storms(NOW + timedelta(hours=7), 6 * 3600) == {}


def test_a_storm_lasting_days_is_one_storm_pass_after_pass(setup: tuple[Config, Store]) -> None:
    config, store = setup
    start = NOW.replace(minute=0) - timedelta(hours=60)
    long_storm = [(ANGRY[i % 3], start + timedelta(minutes=5 * i)) for i in range(12 * 60)]
    seed(store, background(days=12) + long_storm, "bg")
    judge = Runtime.of(config)
    score_pending(store, judge)
    for hours_ago in (48, 30, 12, 0):
        assert file_storms(store, judge, NOW - timedelta(hours=hours_ago)) == 1
    [storm] = storm_posts(store)
    assert storm.published_at == start  # the start never moved: one post, one page


def test_the_first_wave_is_folded_into_the_storm(setup: tuple[Config, Store]) -> None:
    """Before the storm flag formed, its first posts were paged one by one; now their notices
    wait (FORMING_WAIT) and are folded into the storm's one notice when it forms."""
    config, store = setup
    seed(store, background(), "bg")
    judge_and_storm(config, store)
    seed(store, burst(30), "wave")
    judge = Runtime.of(config)
    score_pending(store, judge)
    with store.engine.connect() as db:
        waits = [due - made for due, made in db.execute(
            select(deliveries.c.next_attempt_at, deliveries.c.created_at)
            .join(posts, posts.c.id == deliveries.c.post_id)
            .where(posts.c.external_id.startswith("wave-")))]
    assert len(waits) == 30 and all(w.total_seconds() >= FORMING_WAIT for w in waits)
    assert file_storms(store, judge, NOW) == 1
    storm_case = next(c for c in store.list_cases(now=NOW)
                      if c.group_key.startswith("thread:event:"))
    assert {delivery_of(store, f"wave-{i}") for i in range(30)} == {("inhibited", storm_case.id)}
    [storm] = storm_posts(store)
    assert delivery_of(store, storm.external_id) == ("pending", None)  # the one notice
    with store.engine.connect() as db:
        pending = db.execute(select(deliveries.c.post_id)
                             .where(deliveries.c.state == "pending")).scalars().all()
    assert storm.id in pending  # beside the background's own, none of the wave's

