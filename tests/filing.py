"""Set up a store by hand as a pass would: scores and flags saved, and the newly flagged filed
(case and outbox rows), in one transaction: the pipeline's step, for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from monitor import outbox
from monitor.model import Flag, Routing, Score
from monitor.queue import QueuePolicy
from monitor.store import Store, StoredPost


def save_scores(store: Store, judged: Iterable[tuple[StoredPost, Score, Flag | None]],
                now: datetime, drop_unmatched: bool = False,
                routes: Mapping[int, Routing] | None = None,
                policy: QueuePolicy | None = None) -> list[tuple[StoredPost, Flag]]:
    with store.transaction() as db:
        return outbox.record(db, judged, now, routes or {}, policy, drop_unmatched)
