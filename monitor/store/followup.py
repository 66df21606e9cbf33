"""The follow-up's SQL: which answered cases to look at again, the posts of the person a case
is about (across the names staff linked), the outcome rows, and the answered cases the figures
count.
No rules here: what makes an outcome is ``monitor.followup``'s.

A person is named by their first name as "source:author"; an author nobody linked has no
``identities`` row and is the person "source:author" alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine

from monitor.queue import CLOSED_STATES
from monitor.store.rows import insert_ignoring
from monitor.store.schema import (
    case_events,
    case_posts,
    cases,
    flags,
    identities,
    outcomes,
    posts,
    scores,
)
from monitor.store.storms import WRITTEN

Name = tuple[str, str]
"""(source, author): one name of a person."""

FOLLOWABLE = and_(posts.c.author.is_not(None), WRITTEN)
"""On a case's opening post (joined as ``posts``): the cases the follow-up follows, those
opened by someone who wrote, under a name to follow them by. A storm, an alert or a post with
no author has nobody to win back, so ``followups_due`` never looks at it and the figures
(``answered_cases``) leave it out rather than count it too early to say for ever."""

_POST_COLUMNS = (posts.c.id, posts.c.source, posts.c.external_id, posts.c.thread_id,
                 posts.c.author, posts.c.url, posts.c.title, posts.c.text,
                 posts.c.published_at, scores.c.compound, scores.c.complaint, scores.c.anger,
                 scores.c.churn, scores.c.angry, flags.c.severity, flags.c.category,
                 case_posts.c.case_id)


@dataclass(frozen=True, slots=True)
class Followed:
    """An answered case to follow: the latest reply (when, by whom, with which template), the
    name it is followed under (its opening post's author), and its outcome row so far."""

    case_id: int
    state: str
    severity: str
    category: str | None
    opened_at: datetime
    source: str
    author: str
    responded_at: datetime
    responder: str | None
    template: str | None
    outcome: str | None          # None: never looked at yet
    followed_since: datetime | None  # the reply the outcome row is about
    decided_at: datetime | None
    evidence: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Answered:
    """Cases first answered in a time range, by outcome so far (none yet: too early)."""

    answered: int
    won_back: int
    still_unhappy: int
    gone_quiet: int
    too_early: int

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, Any]]) -> Answered:
        """The counts of ``answered_cases`` rows: the same rows as the figures' tables."""
        count = Counter(row["outcome"] for row in rows)
        return cls(sum(count.values()), count["won back"], count["still unhappy"],
                   count["gone quiet"], count["too early to say"] + count[None])


def person_of(db: Connection, source: str, author: str) -> str:
    found = db.execute(select(identities.c.person).where(
        identities.c.source == source, identities.c.author == author)).scalar()
    return found or f"{source}:{author}"


def names_of(db: Connection, source: str, author: str) -> tuple[str, list[Name]]:
    """The person a name belongs to, and all their names (that one first)."""
    person = person_of(db, source, author)
    linked = db.execute(select(identities.c.source, identities.c.author)
                        .where(identities.c.person == person)
                        .order_by(identities.c.source, identities.c.author))
    return person, [(source, author), *((r.source, r.author) for r in linked
                                        if (r.source, r.author) != (source, author))]


def followed_case_of_group(db: Connection, group_key: str, source: str,
                           author: str | None, now: datetime) -> Any:
    """The closed case of a thread whose author is still followed after an answer (its
    window runs) and is the person who wrote ``author`` on ``source``, locked; else None. A
    new flagged post of theirs in that thread joins it (``monitor.outbox.file_case``), and
    the follow-up reopens it, rather than a second case opening about the same talk."""
    if not author:
        return None
    found = db.execute(
        select(cases, posts.c.source.label("opener_source"), posts.c.author.label("opener"))
        .join(outcomes, outcomes.c.case_id == cases.c.id)
        .join(posts, posts.c.id == cases.c.post_id)
        .where(cases.c.group_key == group_key, cases.c.state.in_(CLOSED_STATES),
               outcomes.c.window_ends_at > now)
        .order_by(cases.c.id.desc()).limit(1).with_for_update()).first()
    if found is None or found.opener is None:
        return None
    same = person_of(db, found.opener_source, found.opener) == person_of(db, source, author)
    return found if same else None


class FollowupQueries:
    """The follow-up's reads and writes, mixed into Store (they use ``self.engine``)."""

    engine: Engine

    def followups_due(self) -> list[Followed]:
        """Answered cases about someone who wrote (``FOLLOWABLE``) whose outcome is not
        final: never looked at, answered again since (a reopened case answered anew is
        followed from its new reply), or last looked at before its window ended."""
        latest = (select(case_events.c.case_id, func.max(case_events.c.at).label("at"))
                  .where(case_events.c.action == "responded")
                  .group_by(case_events.c.case_id).subquery())
        query = (select(cases.c.id, cases.c.state, cases.c.severity, cases.c.category,
                        cases.c.opened_at, posts.c.source, posts.c.author,
                        latest.c.at.label("responded_at"), outcomes.c.outcome,
                        outcomes.c.responded_at.label("followed_since"), outcomes.c.evidence,
                        outcomes.c.decided_at)
                 .join(latest, latest.c.case_id == cases.c.id)
                 .join(posts, posts.c.id == cases.c.post_id)
                 .outerjoin(outcomes, outcomes.c.case_id == cases.c.id)
                 .where(FOLLOWABLE,
                        or_(outcomes.c.case_id.is_(None),
                            outcomes.c.responded_at < latest.c.at,
                            outcomes.c.updated_at < outcomes.c.window_ends_at))
                 .order_by(cases.c.id))
        with self.engine.connect() as db:
            found = []
            for row in db.execute(query).all():
                reply = db.execute(
                    select(case_events.c.actor, case_events.c.detail)
                    .where(case_events.c.case_id == row.id,
                           case_events.c.action == "responded",
                           case_events.c.at == row.responded_at)
                    .order_by(case_events.c.id.desc()).limit(1)).one()
                found.append(Followed(
                    row.id, row.state, row.severity, row.category, row.opened_at, row.source,
                    row.author, row.responded_at, reply.actor,
                    (reply.detail or {}).get("template"), row.outcome, row.followed_since,
                    row.decided_at, row.evidence))
            return found

    def posts_of_person(self, source: str, author: str, after: datetime,
                        until: datetime) -> list[dict[str, Any]]:
        """What the person who is ``author`` on ``source`` wrote under any of their names,
        published in (``after``, ``until``], scored, with its flag and case, oldest first."""
        with self.engine.connect() as db:
            _, names = names_of(db, source, author)
            query = (select(*_POST_COLUMNS)
                     .join(scores, scores.c.post_id == posts.c.id)
                     .outerjoin(flags, flags.c.post_id == posts.c.id)
                     .outerjoin(case_posts, case_posts.c.post_id == posts.c.id)
                     .where(or_(*(and_(posts.c.source == s, posts.c.author == a)
                                  for s, a in names)),
                            posts.c.published_at > after, posts.c.published_at <= until)
                     .order_by(posts.c.published_at, posts.c.id))
            return [dict(r._mapping) for r in db.execute(query)]

    def case_posts_until(self, case_id: int, until: datetime) -> list[dict[str, Any]]:
        """A case's scored posts published at or before ``until``, oldest first."""
        query = (select(*_POST_COLUMNS)
                 .select_from(case_posts.join(posts, posts.c.id == case_posts.c.post_id))
                 .join(scores, scores.c.post_id == posts.c.id)
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .where(case_posts.c.case_id == case_id, posts.c.published_at <= until)
                 .order_by(posts.c.published_at, posts.c.id))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def posts_by_id(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """Posts (with their scores and flags) by id, oldest first: an outcome's evidence."""
        wanted = sorted(set(ids))
        if not wanted:
            return []
        query = (select(*_POST_COLUMNS)
                 .select_from(posts.outerjoin(scores, scores.c.post_id == posts.c.id))
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .outerjoin(case_posts, case_posts.c.post_id == posts.c.id)
                 .where(posts.c.id.in_(wanted)).order_by(posts.c.published_at, posts.c.id))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def save_outcome(self, case_id: int, outcome: str, *, responded_at: datetime,
                     window_ends_at: datetime, decided_at: datetime | None,
                     evidence: dict[str, Any], now: datetime) -> None:
        values = {"outcome": outcome, "responded_at": responded_at,
                  "window_ends_at": window_ends_at, "decided_at": decided_at,
                  "evidence": evidence, "updated_at": now}
        with self.engine.begin() as db:
            if not db.execute(outcomes.update().where(outcomes.c.case_id == case_id)
                              .values(**values)).rowcount:
                db.execute(insert_ignoring(db, outcomes, ["case_id"])
                           .values(case_id=case_id, **values))

    def outcome(self, case_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(select(outcomes).where(outcomes.c.case_id == case_id)).first()
        return None if row is None else dict(row._mapping)

    def answered_cases(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Cases first answered in [start, end), each with who recorded that first answer
        (``responder``) and what it said (``reply``: its template), and its outcome so far
        (None: not followed yet). The one read behind the headline and every table of the
        won-back figures, so that each table adds up to the headline. Only cases the follow-up
        follows (``FOLLOWABLE``): any other would stay too early to say for ever."""
        first = (select(func.min(case_events.c.id))
                 .where(case_events.c.case_id == cases.c.id,
                        case_events.c.action == "responded")
                 .correlate(cases).scalar_subquery())
        reply = case_events.alias("reply")
        query = (select(cases.c.id, cases.c.severity, cases.c.state, cases.c.opened_at,
                        cases.c.first_response_at, cases.c.resolved_at,
                        reply.c.actor.label("responder"), reply.c.detail.label("reply"),
                        outcomes.c.outcome, outcomes.c.evidence)
                 .select_from(cases.outerjoin(reply, reply.c.id == first)
                              .outerjoin(outcomes, outcomes.c.case_id == cases.c.id)
                              .join(posts, posts.c.id == cases.c.post_id))
                 .where(cases.c.first_response_at >= start, cases.c.first_response_at < end,
                        FOLLOWABLE)
                 .order_by(cases.c.id))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def answered_between(self, start: datetime, end: datetime) -> Answered:
        """Cases first answered in [start, end), by their outcome so far."""
        return Answered.of(self.answered_cases(start, end))

    # --- people ------------------------------------------------------------------------------

    def link(self, names: Sequence[Name], actor: str | None, now: datetime) -> str:
        """Say these names are one person: every name of every person among them becomes
        the person of the first name given. Returns that person."""
        with self.engine.begin() as db:
            target = person_of(db, *names[0])
            merged = {person_of(db, *name) for name in names}
            db.execute(identities.update().where(identities.c.person.in_(merged))
                       .values(person=target))
            for source, author in names:
                db.execute(identities.update().where(identities.c.source == source,
                                                     identities.c.author == author)
                           .values(person=target, linked_by=actor, linked_at=now))
                db.execute(insert_ignoring(db, identities, ["source", "author"]).values(
                    source=source, author=author, person=target, linked_by=actor,
                    linked_at=now))
            return target

    def person(self, source: str, author: str) -> tuple[str, list[Name], list[dict[str, Any]]]:
        """A person: their name, their names, and the cases opened by a post under one of
        them, with their outcomes (newest first)."""
        with self.engine.connect() as db:
            person, names = names_of(db, source, author)
            query = (select(cases.c.id, cases.c.state, cases.c.severity, cases.c.category,
                            cases.c.opened_at, cases.c.first_response_at, posts.c.source,
                            posts.c.author, outcomes.c.outcome, outcomes.c.window_ends_at)
                     .join(posts, posts.c.id == cases.c.post_id)
                     .outerjoin(outcomes, outcomes.c.case_id == cases.c.id)
                     .where(or_(*(and_(posts.c.source == s, posts.c.author == a)
                                  for s, a in names)))
                     .order_by(cases.c.id.desc()))
            return person, names, [dict(r._mapping) for r in db.execute(query)]
