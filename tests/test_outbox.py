"""The outbox on SQLite and (when reachable) PostgreSQL: rows written with the flag, grouped,
claimed once, retried with backoff, dead after too many failures, silenced when muted."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from filing import save_scores
from hookserver import Hook
from sqlalchemy import select

from monitor import cases
from monitor.errors import DeliveryError
from monitor.model import Fetch, Flag, Notice, Post, Routing, Score
from monitor.outbox import CLAIM_BATCHES, RetryPolicy, deliver_due
from monitor.receivers import build_receiver
from monitor.store import Store
from monitor.store.deliveries import CLAIM, Batch
from monitor.store.schema import deliveries

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
    row_key, _, store_id = notice.key.partition("@")  # the first row's, in this store
    assert row_key.startswith("flag:") and row_key.endswith(":hook")
    assert store_id == store.store_id() and len(store_id) == 32
    assert [i.post.external_id for i in notice.items] == ["a", "b"]
    assert notice.items[0].flag == FLAG and notice.items[0].score.anger == 0.7
    assert notice.group == "thread:blog:t1" and notice.case_id is not None
    assert deliver_due(store, {"hook": hook}, NOW + timedelta(hours=1)) == {}  # never twice
    assert store.delivery_counts() == {"sent": 2}


def test_flush_sends_a_pass_s_flags_without_waiting(store: Store) -> None:
    flag_posts(store, ["a"])
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW, flush=True) == {"sent": 1}


def at(seconds: float) -> Callable[[], datetime]:
    """A clock standing still ``seconds`` after NOW: a send whose attempts take no time."""
    return lambda: NOW + timedelta(seconds=seconds)


def test_a_failure_is_retried_with_backoff_then_dies(store: Store) -> None:
    flag_posts(store, ["a"], wait=0)
    hook = Recorder([DeliveryError("HTTP 503")] * 3)
    policy = RetryPolicy(max_attempts=3, backoff=60)
    assert deliver_due(store, {"hook": hook}, retry=policy, clock=at(0)) == {"retry": 1}
    assert deliver_due(store, {"hook": hook}, retry=policy, clock=at(59)) == {}
    assert deliver_due(store, {"hook": hook}, retry=policy, clock=at(60)) == {"retry": 1}
    assert deliver_due(store, {"hook": hook}, retry=policy, clock=at(179)) == {}
    assert deliver_due(store, {"hook": hook}, retry=policy, clock=at(180)) == {"dead": 1}
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
    """More groups than three claims take (CLAIM_BATCHES, 20): the pass drains the outbox."""
    many = 3 * CLAIM_BATCHES + 5
    posts = tuple(Post("blog", f"p{i}", f"https://x.test/{i}", "ann", "Title", "text",
                       NOW - timedelta(hours=1), thread_id=f"t{i}") for i in range(many))
    store.save_fetch("blog", "rss", Fetch(posts, None), NOW)
    stored = store.posts_to_score()
    routes = {s.id: Routing(("hook",), f"thread:blog:{s.post.thread_id}", 30.0)
              for s in stored}
    save_scores(store, [(s, SCORE, FLAG) for s in stored], NOW, routes=routes)
    hook = Recorder()
    assert deliver_due(store, {"hook": hook}, NOW, flush=True) == {"sent": many}
    assert len({n.group for n in hook.sent}) == many
    assert store.delivery_counts() == {"sent": many}


def test_a_failed_batch_is_tried_once_per_send_even_with_no_backoff(store: Store) -> None:
    """Draining the outbox claims again and again, but a batch that failed in this send (its
    next attempt due at once, ``backoff: 0s``) waits for the next send."""
    flag_posts(store, ["a"])
    hook = Recorder([DeliveryError("HTTP 500", retryable=True)] * 3)
    no_backoff = RetryPolicy(max_attempts=8, backoff=0)
    assert deliver_due(store, {"hook": hook}, retry=no_backoff, flush=True, clock=at(0)) == \
        {"retry": 1}
    assert deliver_due(store, {"hook": hook}, retry=no_backoff, flush=True, clock=at(0)) == \
        {"retry": 1}
    assert hook.sent == [] and len(hook.failures) == 1


# --- several senders, slow receivers, stopping: each notice sent by one sender, once ----------

class Clock:
    """A clock a test moves by hand, shared by the senders of one test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def flag_groups(store: Store, count: int, receiver: str = "hook") -> None:
    """``count`` flagged posts, each of a thread of its own: ``count`` notices to send."""
    posts = tuple(Post("blog", f"p{i}", f"https://x.test/{i}", "ann", "Title", "text",
                       NOW - timedelta(hours=1), thread_id=f"t{i}") for i in range(count))
    store.save_fetch("blog", "rss", Fetch(posts, None), NOW)
    stored = store.posts_to_score()
    routes = {s.id: Routing((receiver,), f"thread:blog:{s.post.thread_id}") for s in stored}
    save_scores(store, [(s, SCORE, FLAG) for s in stored], NOW, routes=routes)


def claims(store: Store) -> dict[str, int]:
    """Outbox rows by state, and how many are claimed right now (by anyone)."""
    with store.engine.connect() as db:
        rows = db.execute(select(deliveries.c.state, deliveries.c.claimed_until)).all()
    found = Counter(state for state, _ in rows)
    found["claimed"] = sum(1 for _, until in rows if until is not None)
    return dict(found)


@pytest.fixture
def other(store_url: str):
    """A second sender on the same store (another daemon on the same PostgreSQL)."""
    opened = Store(store_url)
    yield opened
    opened.close()


def test_two_senders_with_slow_receivers_send_each_notice_once(store: Store,
                                                               other: Store) -> None:
    """The tester's two live daemons on one PostgreSQL, each receiver taking 8 s a notice:
    B sends in between A's notices (every 10th, same clock). A long send of A never outlives
    its claims: none is sent twice, none is lost (was: A claimed 200 at once, its claims ran
    out after 75 of them, and B sent the rest too)."""
    flag_groups(store, 150)
    clock, sent = Clock(), []

    class Slow:
        def __init__(self, name: str) -> None:
            self.name = name

        def send(self, notice: Notice) -> None:
            sent.append(notice.key)
            clock.advance(seconds=8)
            if self.name == "a" and len(sent) % 10 == 0:
                deliver_due(other, {"hook": Slow("b")}, clock=clock)

    for _ in range(50):  # A's sends, 10 s apart, until the outbox is empty
        deliver_due(store, {"hook": Slow("a")}, clock=clock)
        clock.advance(seconds=10)
        if not claims(store).get("pending"):
            break
    assert len(sent) == len(set(sent)) == 150
    assert claims(store) == {"sent": 150, "claimed": 0}


def test_a_claim_is_renewed_before_each_notice_and_a_long_send_lets_go_of_the_rest(
        store: Store, other: Store) -> None:
    """A's receiver takes 2 minutes a notice. While A works, B finds every row held (each
    renewed as its turn comes); after ``SEND_FOR`` (5 min) A starts no more and lets go of
    the rest, which B sends at once rather than 10 minutes later."""
    flag_groups(store, 5)
    clock, sent = Clock(), []

    class Slow:
        def send(self, notice: Notice) -> None:
            sent.append(("a", notice.key))
            clock.advance(minutes=2)
            if len(sent) == 2:  # A is sending its third; nothing is free for B
                assert deliver_due(other, {"hook": Recorder()}, clock=clock) == {}

    assert deliver_due(store, {"hook": Slow()}, clock=clock) == {"sent": 3}  # at 0, 2, 4 min
    assert claims(store) == {"sent": 3, "pending": 2, "claimed": 0}  # let go, not held
    b = Recorder()
    assert deliver_due(other, {"hook": b}, clock=clock) == {"sent": 2}
    assert len({key for _, key in sent} | {n.key for n in b.sent}) == 5


def test_a_send_that_outlives_its_claims_sends_nothing_more_and_frees_only_its_own(
        store: Store, other: Store) -> None:
    """A's first notice takes 3 minutes, its second hangs for 8 more: the claims of the rest
    of its round run out meanwhile and B takes them (the one being sent was renewed, so it
    stays A's). A then starts nothing more, and lets go of nothing of B's."""
    flag_groups(store, 4)
    clock = Clock()
    b_held: list[Batch] = []

    class Hanging(Recorder):
        def send(self, notice: Notice) -> None:
            super().send(notice)
            clock.advance(minutes=3 if len(self.sent) == 1 else 8)
            if len(self.sent) == 2:
                b_held.extend(other.claim_due(clock()))  # B is sending these now

    assert deliver_due(store, {"hook": Hanging()}, clock=clock) == {"sent": 2}
    assert len(b_held) == 2
    assert claims(store) == {"sent": 2, "pending": 2, "claimed": 2}  # still B's
    assert all(other.renew(batch, clock()) is not None for batch in b_held)


def test_a_stopping_sender_ends_between_notices_and_lets_go_of_its_claims(
        store: Store, other: Store) -> None:
    """SIGTERM in the daemon: the notice being sent is finished and marked, no other is
    started, and the rest of the round is free at once for the next start (or another
    daemon), not held for the claim's 10 minutes."""
    flag_groups(store, 6)
    stopping, hook = threading.Event(), Recorder()

    class Stopped(Recorder):
        def send(self, notice: Notice) -> None:
            super().send(notice)
            if len(self.sent) == 2:
                stopping.set()

    assert deliver_due(store, {"hook": Stopped()}, NOW, stop=stopping) == {"sent": 2}
    assert claims(store) == {"sent": 2, "pending": 4, "claimed": 0}
    assert deliver_due(other, {"hook": hook}, NOW) == {"sent": 4}
    assert deliver_due(store, {"hook": hook}, NOW, stop=stopping) == {}  # stopped: nothing


def test_a_killed_senders_claims_are_taken_once_they_run_out(store: Store,
                                                             other: Store) -> None:
    """kill -9 lets go of nothing: its claims hold for ``CLAIM`` (10 min), then another
    sender sends the notices (at least once)."""
    flag_groups(store, 3)
    assert len(store.claim_due(NOW)) == 3  # ... and the sender dies
    hook = Recorder()
    assert deliver_due(other, {"hook": hook}, NOW + CLAIM - timedelta(seconds=1)) == {}
    assert deliver_due(other, {"hook": hook}, NOW + CLAIM + timedelta(seconds=1)) == \
        {"sent": 3}


def test_each_attempt_is_timed_when_it_is_made(store: Store, hook: Hook) -> None:
    """A webhook that never answers in time: each failure's next attempt is a backoff after
    that failure (was: after the start of the send, so later ones were due at once, in the
    past, and max_attempts went in minutes)."""
    flag_groups(store, 3)
    hook.delay = 3.0  # longer than the receiver's timeout
    receiver = build_receiver("hook", {"type": "webhook", "url": hook.url(), "timeout": 0.3})
    start = datetime.now(UTC)
    assert deliver_due(store, {"hook": receiver}, start, RetryPolicy(backoff=60)) == \
        {"retry": 3}
    with store.engine.connect() as db:
        due = sorted(db.execute(select(deliveries.c.next_attempt_at)).scalars())
    for waited, next_attempt in enumerate(due, 1):  # each after `waited` timeouts at least
        assert next_attempt >= start + timedelta(seconds=60 + 0.3 * waited)


def test_a_notice_is_marked_sent_when_it_was_sent(store: Store) -> None:
    flag_groups(store, 3)
    clock = Clock()

    class Slow(Recorder):
        def send(self, notice: Notice) -> None:
            clock.advance(seconds=40)
            super().send(notice)

    assert deliver_due(store, {"hook": Slow()}, clock=clock) == {"sent": 3}
    with store.engine.connect() as db:
        stamps = sorted(db.execute(select(deliveries.c.sent_at)).scalars())
    assert stamps == [NOW + timedelta(seconds=s) for s in (40, 80, 120)]


# --- the store's id: in every notice's key ----------------------------------------------------

def test_notice_keys_hold_the_store_id_made_once_and_kept(store: Store, other: Store,
                                                          tmp_path) -> None:
    made = store.store_id()
    assert len(made) == 32 and other.store_id() == made  # every daemon on it: one id
    store.close()
    assert Store(other.engine.url.render_as_string(hide_password=False)).store_id() == made
    with Store(f"sqlite:///{tmp_path / 'elsewhere.db'}") as elsewhere:
        assert elsewhere.store_id() != made  # another installation, or this one made anew
