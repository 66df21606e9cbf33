"""The outbox: one row per (flagged post, receiver), written in the flag's transaction.

A sender claims due rows (``claimed_until``: another monitor sharing the database skips them),
renews the claim just before it sends each batch (only while the claim it made still holds, so
a row whose claim ran out, and that another sender may have taken, is never sent by both),
and marks them sent; a failure schedules the next attempt with backoff, and after
``max_attempts`` (or a failure that retrying cannot fix) the row is *dead* and shown by
``monitor status``. A sender that stops lets go of what it did not send; one killed between
sending and marking leaves a claim that expires, so the row is sent again: at least once,
with the same key, which receivers pass on as an idempotency key (webhook header, e-mail
Message-ID). That key holds the store's own random id (``store_id``), so two installations,
or a store made anew, never send two different notices under one key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine

from monitor.model import QUEUE, FlaggedPost, Notice, Routing
from monitor.store.rows import SCORE_COLUMNS, flag_from, insert_ignoring, post_from, score_from
from monitor.store.schema import (
    case_posts,
    cases,
    deliveries,
    flags,
    meta,
    posts,
    scores,
    silences,
)

CLAIM = timedelta(minutes=10)  # a sender that died frees its rows after this long
STORE_ID = "store_id"  # meta key: the store's random id, part of every notice's key


@dataclass(frozen=True, slots=True)
class Batch:
    """Due outbox rows of one receiver and group: ``notice``, sent as one notification.
    ``claim``: the ``claimed_until`` this sender wrote, which tells its claim from another's."""

    notice: Notice
    ids: tuple[int, ...]
    attempts: int
    claim: datetime


def enqueue(db: Connection, post_id: int, routing: Routing, now: datetime) -> None:
    """Outbox rows for a newly flagged post, in the caller's transaction (queue excluded: it
    is filed at once). A silenced post's rows are kept, marked silenced, never sent; so are
    an inhibited post's (folded into an open storm's case), marked inhibited."""
    state = "silenced" if routing.silenced else \
        "inhibited" if routing.folded_into is not None else "pending"
    rows = [{"key": f"flag:{post_id}:{name}", "receiver": name, "post_id": post_id,
             "group_key": routing.group_key, "state": state, "folded_into": routing.folded_into,
             "attempts": 0,
             "next_attempt_at": now + timedelta(seconds=routing.group_wait), "created_at": now}
            for name in routing.receivers if name != QUEUE]
    if rows:
        db.execute(insert_ignoring(db, deliveries, ["key"]), rows)


class DeliveryQueries:
    """Outbox and silences queries, mixed into Store."""

    engine: Engine

    def fold_into_storm(self, post_ids: Sequence[int], case_id: int) -> int:
        """Hold back the notices of ``post_ids`` (a storm's first wave) not yet tried, folded
        into the storm's case: the storm's one notice tells of them all. Returns how many."""
        if not post_ids:
            return 0
        with self.engine.begin() as db:
            return db.execute(deliveries.update().where(
                deliveries.c.post_id.in_(list(post_ids)), deliveries.c.state == "pending",
                deliveries.c.attempts == 0).values(state="inhibited", folded_into=case_id)
            ).rowcount

    def claim_due(self, now: datetime, flush: bool = False, limit: int = 200,
                  since: datetime | None = None) -> list[Batch]:
        """Claim, per receiver and group, the rows to send now as one notification.

        A group is due when a row's time has come (its ``group_wait`` passed, or its backoff
        after a failure); with ``flush`` (a cron pass has already gathered its flags) a row
        never tried is due at once, but a failed one still waits out its backoff. A batch once
        tried keeps its key and its rows: a retry sends exactly what the first try did, so a
        receiver dropping duplicates by key never drops a post that came later.

        ``since``: the start of the send this claim is a further one of: a row whose time is
        ``since`` or later was tried in this send (``backoff: 0s``) and waits for the next.
        The notice's key is the first row's key and the store's id (``store_id``).
        """
        until = now + CLAIM
        with self.engine.begin() as db:
            free = or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until < now)
            ready = deliveries.c.next_attempt_at < since if since is not None else \
                deliveries.c.next_attempt_at <= now
            if flush:
                ready = or_(ready, deliveries.c.attempts == 0)
            due = select(deliveries.c.receiver, deliveries.c.group_key).where(
                deliveries.c.state == "pending", free, ready)
            groups = db.execute(due.distinct().limit(limit)).all()
            batches: list[Batch] = []
            store = _store_id(db) if groups else ""
            for receiver, group_key in groups:
                rows = db.execute(select(deliveries.c.id, deliveries.c.key,
                                         deliveries.c.attempts, deliveries.c.post_id,
                                         deliveries.c.case_id, deliveries.c.batch_key)
                                  .where(deliveries.c.receiver == receiver,
                                         deliveries.c.group_key == group_key,
                                         deliveries.c.state == "pending", free,
                                         or_(deliveries.c.batch_key.is_(None), ready))
                                  .order_by(deliveries.c.id)
                                  .with_for_update(skip_locked=True)).all()
                tried = next((r.batch_key for r in rows if r.batch_key), None)
                rows = [r for r in rows if r.batch_key == tried]
                if not rows:
                    continue
                key = tried or rows[0].key
                ids = [r.id for r in rows]
                claimed = db.execute(deliveries.update().where(
                    deliveries.c.id.in_(ids), free).values(claimed_until=until,
                                                           batch_key=key)).rowcount
                if claimed != len(ids):
                    continue
                notice = Notice(f"{key}@{store}", receiver, group_key,
                                tuple(_flagged(db, [r.post_id for r in rows])),
                                rows[0].case_id or _case_of(db, [r.post_id for r in rows]),
                                reminder=key.startswith("remind:"))
                batches.append(Batch(notice, tuple(ids), max(r.attempts for r in rows), until))
            return batches

    def renew(self, batch: Batch, now: datetime) -> Batch | None:
        """``batch`` claimed for another ``CLAIM`` from ``now``, just before it is sent, if this
        sender still holds it: its claim is the one it made and has not run out. None when
        it ran out (another sender may hold it, or take it while this one sends): not sent."""
        until = now + CLAIM
        with self.engine.connect() as db, db.begin() as transaction:
            held = db.execute(deliveries.update().where(
                deliveries.c.id.in_(batch.ids), deliveries.c.state == "pending",
                deliveries.c.claimed_until == batch.claim, deliveries.c.claimed_until > now)
                .values(claimed_until=until)).rowcount
            if held != len(batch.ids):
                transaction.rollback()
                return None
        return replace(batch, claim=until)

    def release(self, batches: Sequence[Batch]) -> None:
        """Let go of claimed batches that were not sent (the sender is stopping), so that
        another sender, or the next start, takes them at once, not when the claim runs out."""
        with self.engine.begin() as db:
            for batch in batches:
                db.execute(deliveries.update().where(
                    deliveries.c.id.in_(batch.ids), deliveries.c.state == "pending",
                    deliveries.c.claimed_until == batch.claim).values(claimed_until=None))

    def store_id(self) -> str:
        """The store's id: random, made once and kept in the store (``meta``)."""
        with self.engine.begin() as db:
            return _store_id(db)

    def mark_sent(self, batch: Batch, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(deliveries.update().where(deliveries.c.id.in_(batch.ids),
                                                 deliveries.c.state == "pending").values(
                state="sent", sent_at=now, claimed_until=None, last_error=None,
                attempts=deliveries.c.attempts + 1))

    def mark_failed(self, batch: Batch, error: str, now: datetime, *, retry_at: datetime | None,
                    ) -> None:
        """Schedule the next attempt at ``retry_at``, or give up (dead) when it is None."""
        values: dict[str, Any] = {"attempts": deliveries.c.attempts + 1, "claimed_until": None,
                                  "last_error": error[:1000]}
        values.update(state="dead") if retry_at is None else values.update(
            next_attempt_at=retry_at)
        with self.engine.begin() as db:  # pending: another sender's "sent" is never undone
            db.execute(deliveries.update().where(deliveries.c.id.in_(batch.ids),
                                                 deliveries.c.state == "pending").values(**values))

    def remind(self, case_id: int, receivers: Sequence[str], now: datetime,
               repeat_interval: float | None = None) -> bool:
        """Outbox rows repeating an untouched case to ``receivers``, and the case marked
        reminded, in one transaction (so a crash neither loses nor doubles a reminder).

        With ``repeat_interval`` only while the case is still due (not reminded, or opened,
        within it): two monitors on one PostgreSQL that both found it due send one reminder.
        Returns whether it was reminded."""
        with self.engine.begin() as db:
            mark = cases.update().where(cases.c.id == case_id)
            if repeat_interval is not None:  # marked first: the row lock decides who reminds
                cutoff = now - timedelta(seconds=repeat_interval)
                mark = mark.where(or_(cases.c.reminded_at <= cutoff,
                                      and_(cases.c.reminded_at.is_(None),
                                           cases.c.opened_at <= cutoff)))
            if not db.execute(mark.values(reminded_at=now)).rowcount:
                return False
            post_id = db.execute(select(cases.c.post_id).where(cases.c.id == case_id)).scalar()
            rows = [{"key": f"remind:{case_id}:{now:%Y%m%dT%H%M%S}:{name}", "receiver": name,
                     "post_id": post_id, "case_id": case_id, "group_key": f"case:{case_id}",
                     "state": "pending", "attempts": 0, "next_attempt_at": now,
                     "created_at": now} for name in receivers if name != QUEUE]
            if rows:
                db.execute(insert_ignoring(db, deliveries, ["key"]), rows)
            return True

    def routed_receivers(self, case_id: int) -> list[str]:
        """The receivers the case's posts were routed to when they were flagged (an escalation
        may have added some): their outbox rows are the routing as it was then."""
        members = select(case_posts.c.post_id).where(case_posts.c.case_id == case_id)
        query = (select(deliveries.c.receiver)
                 .where(deliveries.c.post_id.in_(members), deliveries.c.key.startswith("flag:"))
                 .group_by(deliveries.c.receiver).order_by(func.min(deliveries.c.id)))
        with self.engine.connect() as db:
            return list(db.execute(query).scalars())

    def delivery_counts(self) -> dict[str, int]:
        """How many outbox rows are in each state."""
        with self.engine.connect() as db:
            return dict(db.execute(select(deliveries.c.state, func.count())
                                   .group_by(deliveries.c.state)).all())

    def dead_deliveries(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(
                select(deliveries).where(deliveries.c.state == "dead")
                .order_by(deliveries.c.id.desc()).limit(limit))]

    def retry_dead(self, now: datetime, receiver: str | None = None) -> int:
        """Give dead rows (of one receiver, or all) a fresh start; returns how many."""
        where = [deliveries.c.state == "dead"]
        if receiver:
            where.append(deliveries.c.receiver == receiver)
        with self.engine.begin() as db:
            return db.execute(deliveries.update().where(and_(*where)).values(
                state="pending", attempts=0, next_attempt_at=now, last_error=None)).rowcount

    # --- silences ----------------------------------------------------------------------------

    def add_silence(self, matchers: dict[str, str], reason: str, ends_at: datetime,
                    now: datetime, created_by: str | None = None) -> int:
        with self.engine.begin() as db:
            return db.execute(silences.insert().values(
                matchers=matchers, reason=reason, ends_at=ends_at, created_at=now,
                created_by=created_by)).inserted_primary_key[0]

    def silences(self, now: datetime, include_expired: bool = False) -> list[dict[str, Any]]:
        query = select(silences).order_by(silences.c.ends_at)
        if not include_expired:
            query = query.where(silences.c.ends_at > now)
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False when there is no such active silence."""
        with self.engine.begin() as db:
            return bool(db.execute(silences.update().where(
                silences.c.id == silence_id, silences.c.ends_at > now).values(ends_at=now))
                .rowcount)


def _store_id(db: Connection) -> str:
    """The store's id, made on first use: a notice's key (``flag:12:ops@<id>``) is then
    unique to this store, so a receiver that drops duplicates by key (an intake's
    Idempotency-Key, Gmail's Message-ID) never drops a notice of another installation, nor
    one sent after the database was made anew. Two senders making it at once agree: the
    second insert is ignored and both read the first."""
    found = db.execute(select(meta.c.value).where(meta.c.key == STORE_ID)).scalar()
    if found is None:
        db.execute(insert_ignoring(db, meta, ["key"]).values(key=STORE_ID, value=uuid4().hex))
        found = db.execute(select(meta.c.value).where(meta.c.key == STORE_ID)).scalar_one()
    return str(found)


def _case_of(db: Connection, post_ids: Sequence[int]) -> int | None:
    return db.execute(select(case_posts.c.case_id).where(case_posts.c.post_id.in_(post_ids))
                      .order_by(case_posts.c.case_id.desc()).limit(1)).scalar()


def _flagged(db: Connection, post_ids: Sequence[int]) -> list[FlaggedPost]:
    query = (select(posts, *SCORE_COLUMNS, scores.c.evidence, flags.c.severity,
                    flags.c.rules, flags.c.reasons, flags.c.category, flags.c.tags)
             .join(flags, flags.c.post_id == posts.c.id)
             .outerjoin(scores, scores.c.post_id == posts.c.id)
             .where(posts.c.id.in_(post_ids)).order_by(posts.c.id))
    return [FlaggedPost(post_from(r), score_from(r), flag_from(r), id=r.id)
            for r in db.execute(query)]
