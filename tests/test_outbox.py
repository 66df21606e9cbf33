"""The outbox on SQLite and (when reachable) PostgreSQL: rows written with the flag, grouped,
claimed once, retried with backoff, dead after too many failures, silenced when muted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from filing import save_scores

from monitor import cases
from monitor.errors import DeliveryError
from monitor.model import Fetch, Flag, Notice, Post, Routing, Score
from monitor.outbox import RetryPolicy, deliver_due
from monitor.store import Store

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FLAG = Flag("high", ("r",), ("r: mentions 'redesign'",), "backlash", ("change",))
SCORE = Score(-0.8, 0.0, 0.5, 0.5, anger=0.7, angry=True)


class Recorder:
    """A receiver that keeps what it was sent and fails while ``failures`` says so."""

    def __init__(self, failures: list[DeliveryError] | None = None) -> None:
        self.sent: list[Notice] = []
        self.failures = failures or []

    def send(self, notice: Notice) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notice)


@pytest.fixture
def store(store_url: str):
    opened = Store(store_url)
    yield opened
    opened.close()


def flag_posts(store: Store, ids: list[str], thread: str = "t1",
               receivers: tuple[str, ...] = ("queue", "hook"), wait: float = 30.0,
               silenced: bool = False, now: datetime = NOW) -> None:
    posts = tuple(Post("blog", i, f"https://x.test/{i}", "ann", "Title", f"text {i}",
                       NOW - timedelta(hours=1), thread_id=thread) for i in ids)
    store.save_fetch("blog", "rss", Fetch(posts, None), now)
    stored = store.posts_to_score()
    routes = {s.id: Routing(receivers, f"thread:blog:{thread}", wait, silenced) for s in stored}
    save_scores(store, [(s, SCORE, FLAG) for s in stored], now, routes=routes)


def test_a_group_waits_then_goes_out_as_one_notice_with_its_case(store: Store) -> None:
    flag_posts(store, ["a", "b"])
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(seconds=29)) == {}
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(seconds=30)) == {"sent": 1}
    notice, = hook.sent
    assert notice.key.startswith("flag:") and notice.key.endswith(":hook")  # the first row's
    assert [i.post.external_id for i in notice.items] == ["a", "b"]
    assert notice.items[0].flag == FLAG and notice.items[0].score.anger == 0.7
    assert notice.group == "thread:blog:t1" and notice.case_id is not None
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(hours=1)) == {}  # never twice
    assert store.delivery_counts() == {"sent": 2}


def test_flush_sends_a_pass_s_flags_without_waiting(store: Store) -> None:
    flag_posts(store, ["a"])
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW, flush=True) == {"sent": 1}


def test_a_failure_is_retried_with_backoff_then_dies(store: Store) -> None:
    flag_posts(store, ["a"], wait=0)
    hook = Recorder([DeliveryError("HTTP 503")] * 3)
    policy = RetryPolicy(max_attempts=3, backoff=60)
    assert deliver_due(store, {"hook": hook}, NOW, policy) == {"retry": 1}
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(seconds=59), policy) == {}
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(seconds=60), policy) == \
        {"retry": 1}
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(seconds=179), policy) == {}
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(seconds=180), policy) == \
        {"dead": 1}
    dead, = store.dead_deliveries()
    assert dead["attempts"] == 3 and dead["last_error"] == "HTTP 503"
    assert store.retry_dead(NOW + timedelta(hours=1)) == 1
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(hours=1), policy) == {"sent": 1}


def test_a_refusal_that_retrying_cannot_fix_dies_at_once(store: Store) -> None:
    flag_posts(store, ["a"], wait=0)
    hook = Recorder([DeliveryError("HTTP 404", retryable=False)])
    assert deliver_due(store, {"hook": hook}, NOW) == {"dead": 1}


def test_one_broken_receiver_does_not_hold_up_another(store: Store) -> None:
    flag_posts(store, ["a"], receivers=("queue", "hook", "mail"), wait=0)

    class Crashing:
        def send(self, notice: Notice) -> None:
            raise RuntimeError("bug in a plugin")

    mail = Recorder()
    outcome = deliver_due(store, {"hook": Crashing(), "mail": mail}, NOW)
    assert outcome == {"retry": 1, "sent": 1} and len(mail.sent) == 1
    assert deliver_due(store, {"mail": mail}, NOW + timedelta(hours=1)) == {"retry": 1}


def test_claimed_rows_are_not_sent_by_a_second_sender(store: Store) -> None:
    flag_posts(store, ["a"], wait=0)
    first = store.claim_due(NOW)
    assert len(first) == 1 and store.claim_due(NOW) == []  # another monitor finds nothing
    later = NOW + timedelta(minutes=11)  # the first sender died: its claim expires
    assert [b.ids for b in store.claim_due(later)] == [first[0].ids]


def test_silenced_posts_are_recorded_but_never_sent(store: Store) -> None:
    flag_posts(store, ["a"], wait=0, silenced=True)
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW) == {} and hook.sent == []
    assert store.delivery_counts() == {"silenced": 1}
    assert list(store.export_cases()) == []  # a silenced flag opens no case either


def test_the_queue_groups_a_thread_into_one_open_case(store: Store) -> None:
    flag_posts(store, ["a", "b"])
    flag_posts(store, ["c"], now=NOW + timedelta(hours=2))
    flag_posts(store, ["d"], thread="t2")
    cases = list(store.export_cases())
    assert len(cases) == 2


def test_silences_are_listed_until_they_expire(store: Store) -> None:
    sid = store.add_silence({"source": "reddit-*"}, "known outage", NOW + timedelta(days=2),
                            NOW, "ana")
    assert [s["id"] for s in store.silences(NOW)] == [sid]
    assert store.silences(NOW + timedelta(days=3)) == []
    assert store.expire_silence(sid, NOW + timedelta(hours=1))
    assert store.silences(NOW + timedelta(hours=2)) == []
    assert len(store.silences(NOW, include_expired=True)) == 1
    assert not store.expire_silence(sid, NOW + timedelta(hours=3))


def flag_critical(store: Store, receivers: tuple[str, ...]) -> None:
    """One critical post of thread t1, filed and routed to ``receivers``."""
    critical = Flag("critical", ("r",), ("r: furious",), "backlash")
    post = Post("blog", "a", "https://x.test/a", "ann", "T", "text", NOW, thread_id="t1")
    store.save_fetch("blog", "rss", Fetch((post,), None), NOW)
    stored, = store.posts_to_score()
    save_scores(store, [(stored, SCORE, critical)], NOW,
                routes={stored.id: Routing(receivers, "thread:blog:t1")})


def test_an_untouched_critical_case_is_repeated_every_repeat_interval(store: Store) -> None:
    from monitor.outbox import remind_untouched
    from monitor.route import RouteTree, RoutingSpec

    routes = RouteTree.of(RoutingSpec(receivers=["queue", "hook"], repeat_interval=3600))
    flag_critical(store, ("queue", "hook"))
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW, flush=True) == {"sent": 1}
    assert remind_untouched(store, routes, NOW + timedelta(minutes=59)) == 0
    assert remind_untouched(store, routes, NOW + timedelta(hours=1)) == 1
    assert remind_untouched(store, routes, NOW + timedelta(hours=1, minutes=5)) == 0
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(hours=1)) == {"sent": 1}
    reminder = hook.sent[-1]
    assert reminder.reminder and reminder.case_id is not None
    assert reminder.items[0].post.external_id == "a"
    case_id = reminder.case_id
    cases.respond(store, case_id, actor="ana", now=NOW + timedelta(hours=1, minutes=30))
    assert remind_untouched(store, routes, NOW + timedelta(hours=5)) == 0  # answered: quiet


def test_a_reminder_goes_where_the_post_was_routed_when_flagged(store: Store) -> None:
    """Today's config routes critical posts elsewhere: the reminder still reaches the receiver
    that was told of the case (the stored routing), not a newcomer."""
    from monitor.outbox import remind_untouched
    from monitor.route import RouteTree, RoutingSpec

    flag_critical(store, ("queue", "hook"))
    hook, mail = Recorder(), Recorder()
    assert deliver_due(store, {"hook": hook, "mail": mail}, NOW, flush=True) == {"sent": 1}
    today = RouteTree.of(RoutingSpec(receivers=["queue", "mail"], repeat_interval=3600))
    assert remind_untouched(store, today, NOW + timedelta(hours=1)) == 1
    assert deliver_due(store, {"hook": hook, "mail": mail}, NOW + timedelta(hours=1)) == \
        {"sent": 1}
    assert [n.reminder for n in hook.sent] == [False, True] and mail.sent == []


def test_a_reminder_also_reaches_whoever_an_escalation_was_routed_to(store: Store) -> None:
    from monitor.outbox import remind_untouched
    from monitor.route import RouteTree, RoutingSpec

    posts = tuple(Post("blog", i, f"https://x.test/{i}", "ann", "T", f"text {i}", NOW,
                       thread_id="t1") for i in ("a", "b"))
    store.save_fetch("blog", "rss", Fetch(posts, None), NOW)
    first, second = store.posts_to_score()
    high, critical = Flag("high", ("r",), ("r: x",)), Flag("critical", ("r",), ("r: y",))
    save_scores(store, [(first, SCORE, high)], NOW,
                routes={first.id: Routing(("queue", "hook"), "thread:blog:t1")})
    save_scores(store, [(second, SCORE, critical)], NOW,
                routes={second.id: Routing(("queue", "pager"), "thread:blog:t1")})
    hook, pager = Recorder(), Recorder()
    assert deliver_due(store, {"hook": hook, "pager": pager}, NOW, flush=True) == {"sent": 2}
    routes = RouteTree.of(RoutingSpec(receivers=["queue"], repeat_interval=3600))
    assert remind_untouched(store, routes, NOW + timedelta(hours=1)) == 1
    deliver_due(store, {"hook": hook, "pager": pager}, NOW + timedelta(hours=1))
    assert [n.reminder for n in pager.sent] == [False, True]
    assert [n.reminder for n in hook.sent] == [False, True]


def test_a_flushing_pass_sends_every_group_it_flagged_not_just_one_claim(store: Store) -> None:
    """450 groups are more than one claim (200) takes: the pass drains the outbox anyway."""
    posts = tuple(Post("blog", f"p{i}", f"https://x.test/{i}", "ann", "Title", "text",
                       NOW - timedelta(hours=1), thread_id=f"t{i}") for i in range(450))
    store.save_fetch("blog", "rss", Fetch(posts, None), NOW)
    stored = store.posts_to_score()
    routes = {s.id: Routing(("hook",), f"thread:blog:{s.post.thread_id}", 30.0)
              for s in stored}
    save_scores(store, [(s, SCORE, FLAG) for s in stored], NOW, routes=routes)
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW, flush=True) == {"sent": 450}
    assert len({n.group for n in hook.sent}) == 450
    assert store.delivery_counts() == {"sent": 450}


def test_a_failed_batch_is_tried_once_per_send_even_with_no_backoff(store: Store) -> None:
    """Draining the outbox claims again and again, but a batch that failed in this send (its
    next attempt due at once, ``backoff: 0s``) waits for the next send."""
    flag_posts(store, ["a"])
    hook = Recorder([DeliveryError("HTTP 500", retryable=True)] * 3)
    no_backoff = RetryPolicy(max_attempts=8, backoff=0)
    assert deliver_due(store, {"hook": hook}, NOW, no_backoff, flush=True) == {"retry": 1}
    assert deliver_due(store, {"hook": hook}, NOW, no_backoff, flush=True) == {"retry": 1}
    assert hook.sent == [] and len(hook.failures) == 1
