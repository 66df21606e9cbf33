"""From a new flag to the people who answer it: its case in the outreach queue and its
outbox rows, written in the flag's own transaction (so kill -9 loses nothing and sends
nothing twice); then delivery, one notification per receiver and group, retried with
backoff; and reminders of untouched critical cases, to where their post was first routed.

The queue's rules (priority, SLA, assignment) come from ``monitor.queue``; the SQL from
``monitor.store``. Each batch is claimed, sent and marked on its own, so one receiver that is
down never holds up the others; its claim is renewed just before it is sent, so a notice is
never sent by two daemons while its claimer still works (at least once after a crash).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import DeliveryError
from monitor.model import QUEUE, Flag, Post, Routing, Score
from monitor.queue import QueuePolicy, choose_assignee, higher, priority
from monitor.store import Store
from monitor.store.casework import (
    add_to_case,
    assign_automatically,
    case_of_post,
    lock_queue,
    open_case,
    open_case_of_group,
    team_state,
)
from monitor.store.deliveries import Batch, enqueue
from monitor.store.followup import followed_case_of_group
from monitor.store.judged import save_judged
from monitor.store.rows import StoredPost

if TYPE_CHECKING:
    from monitor.route import RouteTree

log = logging.getLogger(__name__)


# --- filing: in the flag's transaction -------------------------------------------------------

def record(db: Connection, judged: Iterable[tuple[StoredPost, Score, Flag | None]],
           now: datetime, routes: Mapping[int, Routing], policy: QueuePolicy | None,
           drop_unmatched: bool = False) -> list[tuple[StoredPost, Flag]]:
    """Scores and flags saved, and each newly flagged post filed (``routes``: by post id), in
    the caller's transaction; returns the newly flagged posts. An imported post (history,
    ``monitor import``) is flagged but never filed here: last year's anger pages nobody."""
    newly = save_judged(db, judged, now, drop_unmatched)
    for stored, flag in newly:
        if not stored.imported:
            file(db, stored, flag, routes.get(stored.id), policy, now)
    return newly


def file(db: Connection, stored: StoredPost, flag: Flag, routing: Routing | None,
         policy: QueuePolicy | None, now: datetime) -> None:
    """A newly flagged post's case (when routed to the queue and not silenced) and its outbox
    rows, in the caller's transaction. Without a routing it goes to the queue alone."""
    routing = routing or Routing((QUEUE,), f"post:{stored.id}")
    if QUEUE in routing.receivers and not routing.silenced:
        file_case(db, post_id=stored.id, post=stored.post, flag=flag,
                  group_key=routing.group_key, vip=routing.vip, now=now,
                  policy=policy or QueuePolicy.of())
    enqueue(db, stored.id, routing, now)


def file_case(db: Connection, *, post_id: int, post: Post, flag: Flag, group_key: str,
              vip: bool, now: datetime, policy: QueuePolicy) -> int:
    """Put a newly flagged post into its group's open case, or open (and assign) a new case;
    returns the case id. Filing the same post twice is a no-op. A thread that keeps flaring
    updates its one open case instead of opening more; and an answered, closed case whose
    author is still followed (``monitor.followup``) takes that author's new post in its
    thread, for the follow-up to reopen, rather than a second case opening on the same talk."""
    lock_queue(db)
    known = case_of_post(db, post_id)
    if known is not None:
        return known
    weight = priority(flag.severity, post.reach, vip)
    case = open_case_of_group(db, group_key) or followed_case_of_group(
        db, group_key, post.source, post.author, now)
    if case is not None:
        severity = higher(case.severity, flag.severity)
        changes = {"priority": max(case.priority, weight), "severity": severity}
        if severity != case.severity:  # escalated: the tighter SLA counts from now
            due = policy.sla.due(severity, now)
            changes["due_at"] = min(case.due_at, due) if case.due_at else due
        add_to_case(db, case, post_id, flag, now, **changes)
        return int(case.id)
    case_id = open_case(db, post_id, flag, group_key, now, priority=weight,
                        due_at=policy.sla.due(flag.severity, now))
    away, turns = team_state(db)
    assignee = choose_assignee(policy, flag.category, away, turns)
    if assignee is not None:
        assign_automatically(db, case_id, assignee, now)
    return case_id


# --- delivery --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """``backoff`` seconds before the 2nd attempt, doubling up to ``cap``; dead after
    ``max_attempts`` attempts."""

    max_attempts: int = 8
    backoff: float = 60.0
    cap: float = 6 * 3600.0

    def next_attempt(self, attempts_made: int, now: datetime) -> datetime | None:
        if attempts_made >= self.max_attempts:
            return None
        return now + timedelta(seconds=min(self.cap, self.backoff * 2 ** (attempts_made - 1)))


CLAIM_BATCHES = 20
"""Notices claimed at once: a claim is one transaction, so it stays short, and the notices one
sender holds but has not sent yet (that no other sender may take) stay few."""

MAX_ROUNDS = 1000
"""Claims one call makes at most (20,000 notices): the outbox is drained within the pass,
yet a group that is due but cannot be claimed (another monitor holds its rows) can never
keep the call going forever. What is left waits for the next call."""

SEND_FOR = timedelta(minutes=5)
"""A call starts no new notice after this long (half a claim): with slow receivers the rest
waits for the next call, and no claim runs out while its sender is still on its way to it."""

Clock = Callable[[], datetime]


def deliver_due(store: Store, receivers: Mapping[str, object], now: datetime | None = None,
                retry: RetryPolicy = RetryPolicy(), flush: bool = False, *,
                clock: Clock | None = None, stop: threading.Event | None = None,
                ) -> Counter[str]:
    """Send every due batch, claiming ``CLAIM_BATCHES`` at a time until none is due (at most
    ``MAX_ROUNDS`` claims, for at most ``SEND_FOR``); returns counts of 'sent', 'retry' and
    'dead' batches.

    ``receivers``: name -> an object with ``send(notice)`` (see ``monitor.receivers``). A row
    for a receiver no longer configured is retried later (the config may come back), and dies
    like any other failure. Every batch sent or failed leaves the due set (sent, dead, or
    retried at its attempt's time or later, which the further claims of this call leave
    alone), so each round claims new ones.

    Time is read when it is needed (each claim, each attempt's outcome), from ``clock``, by
    default ``now`` (the call's start, default the current time) plus the time since: a
    backoff counts from its failure, not from the start of a long send. ``stop`` (the daemon
    stopping) and ``SEND_FOR`` end the call between two batches; the batches it claimed and
    did not send are let go at once.
    """
    clock = clock or _elapsed_since(now or datetime.now(UTC))
    started = clock()

    def going_on() -> bool:
        return not (stop is not None and stop.is_set()) and clock() - started < SEND_FOR

    outcome: Counter[str] = Counter()
    for round_ in range(MAX_ROUNDS):  # each batch is tried once per call, even with no backoff
        if not going_on():
            break
        batches = store.claim_due(clock(), flush=flush, limit=CLAIM_BATCHES,
                                  since=started if round_ else None)
        if not batches or not _send_batches(store, receivers, batches, retry, outcome, clock,
                                            going_on):
            break
    return outcome


def _elapsed_since(start: datetime) -> Clock:
    """``start`` plus the (monotonic) time elapsed since this was made."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def _send_batches(store: Store, receivers: Mapping[str, object], batches: Iterable[Batch],
                  retry: RetryPolicy, outcome: Counter[str], clock: Clock,
                  going_on: Callable[[], bool]) -> bool:
    """Send ``batches`` in turn while ``going_on()``; False when it stopped before the end,
    having let go of those it did not send. Each batch's claim is renewed just before it is
    sent: one whose claim ran out (another sender may hold it now) is left alone."""
    left = list(batches)
    try:
        while left:
            if not going_on():
                return False
            claimed = left.pop(0)
            batch = store.renew(claimed, clock())
            if batch is None:
                log.warning("%s: notice of %s not sent: its claim ran out before its turn "
                            "(another sender may hold it now)", claimed.notice.receiver,
                            claimed.notice.group)
                continue
            _send_one(store, receivers, batch, retry, outcome, clock)
        return True
    finally:
        if left:
            _release(store, left)


def _send_one(store: Store, receivers: Mapping[str, object], batch: Batch,
              retry: RetryPolicy, outcome: Counter[str], clock: Clock) -> None:
    notice = batch.notice
    receiver = receivers.get(notice.receiver)
    try:
        if receiver is None:
            raise DeliveryError(f"no receiver named {notice.receiver!r} in the config")
        receiver.send(notice)  # type: ignore[attr-defined]
    except DeliveryError as error:
        _failed(store, batch, str(error), error.retryable, retry, clock(), outcome)
    except Exception as error:  # a receiver's bug fails its batch, not the pass
        log.exception("receiver %s crashed", notice.receiver)
        _failed(store, batch, f"{type(error).__name__}: {error}", True, retry, clock(), outcome)
    else:
        store.mark_sent(batch, clock())
        outcome["sent"] += 1
        log.info("%s: sent %d flagged post(s) of %s", notice.receiver, len(batch.ids),
                 notice.group)


def _release(store: Store, batches: list[Batch]) -> None:
    """Let go of unsent claims; a store that cannot be written now only delays them (their
    claims run out)."""
    try:
        store.release(batches)
        log.info("%d claimed notice(s) not sent, let go for the next send", len(batches))
    except SQLAlchemyError as error:
        log.warning("%d claimed notices not let go (they are free again when their claim runs "
                    "out): %s", len(batches), error)


def _failed(store: Store, batch: Batch, error: str, retryable: bool, retry: RetryPolicy,
            now: datetime, outcome: Counter[str]) -> None:
    retry_at = retry.next_attempt(batch.attempts + 1, now) if retryable else None
    store.mark_failed(batch, error, now, retry_at=retry_at)
    outcome["retry" if retry_at else "dead"] += 1
    log.warning("%s: %s (%s)", batch.notice.receiver, error,
                f"next attempt {retry_at:%Y-%m-%d %H:%M:%S}Z" if retry_at else "gave up: dead")


# --- reminders -------------------------------------------------------------------------------

def remind_untouched(store: Store, routes: RouteTree, now: datetime) -> int:
    """Repeat open critical cases nobody has answered for ``repeat_interval`` (of the root
    route) to the receivers their posts were routed to when flagged (their stored outbox
    rows: today's config may route them elsewhere); returns how many."""
    repeat = routes.settings.repeat_interval
    cases = store.untouched_critical(now, repeat)
    for case in cases:
        store.remind(case.id, store.routed_receivers(case.id), now, repeat)
    return len(cases)
