"""Source leases on PostgreSQL (and SQLite, where every claim is granted), and the store's
guards for work two monitors sharing one PostgreSQL may do at once: scoring the same posts,
saving the same source, reminding of the same case."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from filing import save_scores
from sqlalchemy import func, select

from monitor.cli import main
from monitor.leases import HEARTBEAT, LEASE, Leases, holder_id, holders
from monitor.model import Fetch, Flag, Post, Routing, Score
from monitor.store import Store
from monitor.store.schema import case_events, case_posts, cases, deliveries, flags, posts, scores
from monitor.store.schema import sources as source_rows

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    yield store
    store.close()


def row(store: Store, name: str) -> Any:
    with store.engine.connect() as db:
        return db.execute(select(source_rows).where(source_rows.c.name == name)).first()


def count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as db:
        return db.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def at_once(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run the workers in threads released together; their results (or exceptions)."""
    results: list[Any] = [None] * len(workers)
    start = threading.Barrier(len(workers))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = workers[i]()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# --- leases ----------------------------------------------------------------------------------

def test_sqlite_grants_every_claim_and_writes_nothing(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        assert store.claim_lease("blog", "a", NOW, 60, "rss")
        assert store.claim_lease("blog", "b", NOW, 60, "rss")  # one daemon per file: no contest
        assert store.renew_lease("blog", "a", NOW, 60)
        store.release_lease("blog", "a")
        with Leases(store, ttl=60).held("blog", "rss") as mine:
            assert mine
        assert store.source_health() == []
    finally:
        store.close()


def test_a_claim_makes_the_missing_row_and_keeps_other_holders_out(pg: Store) -> None:
    assert pg.claim_lease("blog", "host:1:a", NOW, 90, "rss")
    found = row(pg, "blog")
    assert (found.kind, found.failures, found.last_attempt_at, found.cursor) == ("rss", 0, None,
                                                                                 None)
    assert (found.leased_by, found.leased_until) == ("host:1:a", NOW + timedelta(seconds=90))
    assert not pg.claim_lease("blog", "host:2:b", NOW + timedelta(seconds=89), 90, "rss")
    assert pg.claim_lease("blog", "host:1:a", NOW + timedelta(seconds=30), 90)  # its own: renewed
    assert row(pg, "blog").leased_until == NOW + timedelta(seconds=120)
    # a source that has been polled keeps its health; the lease only adds its holder
    pg.record_failure("forum", "discourse", "HTTP 500", NOW)
    assert pg.claim_lease("forum", "host:2:b", NOW, 90, "discourse")
    assert (row(pg, "forum").failures, row(pg, "forum").last_error) == (1, "HTTP 500")


def test_a_lapsed_lease_is_taken_over_and_a_released_one_is_free(pg: Store) -> None:
    assert pg.claim_lease("blog", "dead:1:a", NOW, 10, "rss")
    assert not pg.claim_lease("blog", "live:2:b", NOW + timedelta(seconds=9), 10, "rss")
    assert pg.claim_lease("blog", "live:2:b", NOW + timedelta(seconds=11), 10, "rss")
    assert row(pg, "blog").leased_by == "live:2:b"
    assert not pg.renew_lease("blog", "dead:1:a", NOW + timedelta(seconds=12), 10)  # it lost it
    pg.release_lease("blog", "dead:1:a")  # not the holder: changes nothing
    assert row(pg, "blog").leased_by == "live:2:b"
    assert pg.renew_lease("blog", "live:2:b", NOW + timedelta(seconds=15), 10)
    assert row(pg, "blog").leased_until == NOW + timedelta(seconds=25)
    pg.release_lease("blog", "live:2:b")
    assert (row(pg, "blog").leased_by, row(pg, "blog").leased_until) == (None, None)
    assert pg.claim_lease("blog", "next:3:c", NOW + timedelta(seconds=16), 10)


def test_a_source_just_polled_is_left_alone_for_the_spacing_asked(pg: Store) -> None:
    """Each daemon runs each source's job on its interval: the lease, released with a time,
    keeps the others (and the poller itself) from polling it again before then."""
    assert pg.claim_lease("blog", "a", NOW, 60, "rss")
    pg.release_lease("blog", "a", until=NOW + timedelta(seconds=30))
    assert (row(pg, "blog").leased_by, row(pg, "blog").leased_until) == (
        None, NOW + timedelta(seconds=30))
    assert not pg.claim_lease("blog", "b", NOW + timedelta(seconds=29), 60, "rss")
    assert not pg.claim_lease("blog", "a", NOW + timedelta(seconds=29), 60, "rss")
    assert pg.claim_lease("blog", "b", NOW + timedelta(seconds=31), 60, "rss")
    pg.release_lease("blog", "b")
    mine, other = Leases(pg, ttl=60), Leases(pg, ttl=60)
    with mine.held("blog", "rss", spacing=120) as held:
        assert held
    assert row(pg, "blog").leased_until > datetime.now(UTC) + timedelta(seconds=110)
    with other.held("blog", "rss", spacing=120) as taken:
        assert not taken
    assert holders(pg.source_health(), datetime.now(UTC)) == {}  # nobody is polling it


def test_a_claim_skips_a_row_another_transaction_holds_instead_of_waiting(pg: Store) -> None:
    assert pg.claim_lease("blog", "a", NOW, 60, "rss")
    pg.release_lease("blog", "a")
    with pg.engine.connect() as other:  # another daemon claiming it, or saving its posts
        other.execute(select(source_rows).where(source_rows.c.name == "blog").with_for_update())
        started = time.monotonic()
        assert not pg.claim_lease("blog", "b", NOW, 60, "rss")
        assert time.monotonic() - started < 2
        other.rollback()
    assert pg.claim_lease("blog", "b", NOW, 60, "rss")


@pytest.mark.parametrize("existing", [False, True], ids=["never-polled", "polled-before"])
def test_of_many_simultaneous_claims_exactly_one_wins(pg: Store, existing: bool) -> None:
    if existing:
        pg.record_failure("blog", "rss", "timeout", NOW)
    stores = [Store(pg.url) for _ in range(6)]
    try:
        won = at_once([lambda s=s, i=i: s.claim_lease("blog", f"h:{i}", NOW, 60, "rss")
                       for i, s in enumerate(stores)])
    finally:
        for store in stores:
            store.close()
    assert sorted(won) == [False] * 5 + [True]
    assert row(pg, "blog").leased_by == f"h:{won.index(True)}"


def test_a_dead_daemons_source_is_taken_over_about_a_heartbeat_after_its_last_beat(
        pg: Store) -> None:
    """The lease no longer lasts the HTTP timeout plus 30 s (90 s by default, about 65 s idle
    on average): it lapses one beat plus a small margin after the holder's last renewal."""
    ttl = Leases(pg).ttl  # whatever the HTTP timeout, a daemon's lease length
    assert ttl == LEASE <= 2 * HEARTBEAT and Leases(pg).ttl == LEASE
    beat = NOW + timedelta(seconds=HEARTBEAT)
    assert pg.claim_lease("blog", "dead:1:a", NOW, ttl, "rss")
    assert pg.renew_lease("blog", "dead:1:a", beat, ttl)  # its last beat, then it dies
    assert not pg.claim_lease("blog", "live:2:b", beat + timedelta(seconds=ttl - 1), ttl)
    assert pg.claim_lease("blog", "live:2:b", beat + timedelta(seconds=ttl + 1), ttl)
    assert row(pg, "blog").leased_by == "live:2:b"
    assert ttl + 1 < 15  # was 91 s after the last beat


def test_the_heartbeat_keeps_a_slow_pollers_lease_until_it_is_done(pg: Store) -> None:
    mine, other = Leases(pg, ttl=0.6), Leases(pg, ttl=0.6)
    try:
        with mine.held("blog", "rss") as held:
            assert held
            time.sleep(1.5)  # more than twice the lease: renewed meanwhile
            assert row(pg, "blog").leased_until > datetime.now(UTC)
            with other.held("blog", "rss") as taken:
                assert not taken
        assert row(pg, "blog").leased_by is None  # released at the end of the job
        with other.held("blog", "rss") as taken:
            assert taken and row(pg, "blog").leased_by == other.holder
    finally:
        mine.close()
        other.close()


def test_holder_ids_and_running_leases() -> None:
    host, pid, token = holder_id().rsplit(":", 2)
    assert host and pid.isdigit() and len(token) == 8 and holder_id() != holder_id()
    rows = [{"name": "a", "leased_by": "h:1:x", "leased_until": NOW + timedelta(seconds=1)},
            {"name": "b", "leased_by": "h:2:y", "leased_until": NOW - timedelta(seconds=1)},
            {"name": "c", "leased_by": None, "leased_until": None}]
    assert holders(rows, NOW) == {"a": "h:1:x"}


def test_status_shows_who_is_polling_a_source(pg_url: str, make_project) -> None:
    config = make_project([{"name": "blog", "kind": "rss", "url": "http://127.0.0.1:9/feed"},
                           {"name": "forum", "kind": "rss", "url": "http://127.0.0.1:9/f"}],
                          store=pg_url)
    store = Store(pg_url)
    try:
        assert store.claim_lease("blog", "worker-2:4711:c0ffee00", datetime.now(UTC), 60, "rss")
    finally:
        store.close()
    result = CliRunner().invoke(main, ["status", "--config", str(config)])
    lines = {line.split()[0]: line for line in result.output.splitlines() if line}
    assert "(polling now: worker-2:4711:c0ffee00)" in lines["blog"], result.output
    assert "polling now" not in lines["forum"]


# --- two monitors doing the same work at once ------------------------------------------------

def blog_posts(n: int) -> tuple[Post, ...]:
    return tuple(Post("blog", f"c{i}", f"https://x.test/{i}", f"user{i}", "Our new look",
                      f"comment {i}", NOW - timedelta(hours=1), thread_id=f"t{i % 20}")
                 for i in range(n))


def test_two_monitors_scoring_the_same_posts_make_each_thing_once(pg: Store) -> None:
    pg.save_fetch("blog", "rss", Fetch(blog_posts(200), None), NOW)
    pending = pg.posts_to_score(limit=500)
    judged = [(p, Score(-0.9, 0.0, 0.2, 0.8), Flag("high", ("r",), ("r: angry",), "backlash"))
              for p in pending]
    routes = {p.id: Routing(("queue", "hook"), f"thread:blog:{p.post.thread_id}")
              for p in pending}
    other = Store(pg.url)
    try:
        newly = at_once([lambda s=s: save_scores(s, judged, NOW, routes=routes)
                         for s in (pg, other)])
    finally:
        other.close()
    assert not [r for r in newly if isinstance(r, Exception)], newly
    assert sum(len(r) for r in newly) == 200  # each newly flagged post reported by one
    assert (count(pg, scores), count(pg, flags), count(pg, case_posts)) == (200, 200, 200)
    assert count(pg, cases) == 20  # one per thread, however the posts were split
    assert count(pg, case_events, case_events.c.action == "opened") == 20
    assert count(pg, deliveries) == 200


def test_two_monitors_saving_one_source_at_once_store_each_post_once(pg: Store) -> None:
    """A poll without the lease (``monitor run`` beside daemons, a storm both saw) waits for
    the other's transaction and finds its posts, instead of failing on the unique key."""
    other = Store(pg.url)
    try:
        saved = at_once([lambda s=s, n=n: s.save_fetch("blog", "rss", Fetch(
            blog_posts(300), {"by": n}), NOW) for n, s in enumerate((pg, other))])
    finally:
        other.close()
    assert not [r for r in saved if isinstance(r, Exception)], saved
    assert sorted(len(s.new) for s in saved) == [0, 300]
    assert count(pg, posts) == 300


def test_a_case_due_for_a_reminder_is_reminded_once(pg: Store) -> None:
    pg.save_fetch("blog", "rss", Fetch(blog_posts(1), None), NOW - timedelta(hours=5))
    [pending] = pg.posts_to_score()
    save_scores(pg, [(pending, Score(-0.9, 0.0, 0.2, 0.8), Flag("critical", ("r",), ("r",)))],
                NOW - timedelta(hours=5))
    [case] = pg.list_cases(now=NOW)
    other = Store(pg.url)
    try:  # two daemons' outbox jobs both found it untouched for 4 h
        reminded = at_once([lambda s=s: s.remind(case.id, ["queue", "hook"], NOW, 4 * 3600)
                            for s in (pg, other)])
    finally:
        other.close()
    assert sorted(reminded) == [False, True]
    assert count(pg, deliveries, deliveries.c.key.startswith("remind:")) == 1
    later = NOW + timedelta(hours=1)
    assert not pg.remind(case.id, ["hook"], later, 4 * 3600)  # reminded an hour ago
    assert pg.remind(case.id, ["hook"], NOW + timedelta(hours=4), 4 * 3600)
