"""Send what the outbox holds: one notification per receiver and group, retried with backoff.

Each batch is claimed, sent, and marked sent (or failed) on its own, so one receiver that is
down never holds up the others, and a crash anywhere leaves the outbox to the next pass.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.errors import DeliveryError
from monitor.judge import Judge
from monitor.model import Notice
from monitor.store import Store
from monitor.store.deliveries import Batch

log = logging.getLogger(__name__)


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


def deliver_due(store: Store, receivers: Mapping[str, object], now: datetime,
                retry: RetryPolicy = RetryPolicy(), flush: bool = False) -> Counter[str]:
    """Send every due batch; returns counts of 'sent', 'retry' and 'dead' batches.

    ``receivers``: name -> an object with ``send(notice)`` (see ``monitor.receivers``). A row
    for a receiver no longer configured is retried later (the config may come back), and dies
    like any other failure.
    """
    outcome: Counter[str] = Counter()
    for batch in store.claim_due(now, flush=flush):
        notice = Notice(key=batch.key, receiver=batch.receiver, group=batch.group_key,
                        items=batch.items, case_id=batch.case_id,
                        reminder=batch.key.startswith("remind:"))
        receiver = receivers.get(batch.receiver)
        try:
            if receiver is None:
                raise DeliveryError(f"no receiver named {batch.receiver!r} in the config")
            receiver.send(notice)  # type: ignore[attr-defined]
        except DeliveryError as error:
            _failed(store, batch, str(error), error.retryable, retry, now, outcome)
        except Exception as error:  # a receiver's bug fails its batch, not the pass
            log.exception("receiver %s crashed", batch.receiver)
            _failed(store, batch, f"{type(error).__name__}: {error}", True, retry, now,
                    outcome)
        else:
            store.mark_sent(batch, now)
            outcome["sent"] += 1
            log.info("%s: sent %d flagged post(s) of %s", batch.receiver, len(batch.ids),
                     batch.group_key)
    return outcome


def _failed(store: Store, batch: Batch, error: str, retryable: bool, retry: RetryPolicy,
            now: datetime, outcome: Counter[str]) -> None:
    retry_at = retry.next_attempt(batch.attempts + 1, now) if retryable else None
    store.mark_failed(batch, error, now, retry_at=retry_at)
    outcome["retry" if retry_at else "dead"] += 1
    log.warning("%s: %s (%s)", batch.receiver, error,
                f"next attempt {retry_at:%Y-%m-%d %H:%M:%S}Z" if retry_at else "gave up: dead")


def remind_untouched(store: Store, judge: Judge, now: datetime) -> int:
    """Repeat open critical cases nobody has answered for ``repeat_interval`` (of the root
    route) to the receivers their opening post was routed to; returns how many."""
    count = 0
    for case in store.untouched_critical(now, judge.routes.settings.repeat_interval):
        items = store.case_flagged(case.id)
        if not items:
            continue
        first = items[0]
        routing = judge.route(first.post, first.score, first.flag)
        store.remind(case.id, routing.receivers, now, judge.routes.settings.repeat_interval)
        count += 1
    return count
