"""The outreach queue's SQL: the case reads, and the pieces that filing
(``monitor.outbox``) and the team's commands (``monitor.cases``) put together in their own
transactions. No queue rules here: those are ``monitor.queue``'s.

Not named ``cases.py``: importing ``monitor.store.cases`` would rebind the package's ``cases``
(the table that Store's queries use) to this module.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, text
from sqlalchemy.engine import Connection, Engine

from monitor.model import SEVERITIES, Flag
from monitor.queue import (
    CLOSED_STATES,
    OPEN_STATES,
    Case,
    CaseDetail,
    CaseError,
    SeverityStats,
    is_overdue,
    queue_stats,
    thread_title,
)
from monitor.store.leases import SCHEMA_KEY
from monitor.store.rows import SCORE_COLUMNS
from monitor.store.schema import case_events, case_posts, cases, flags, people, posts, scores

QUEUE_LOCK = 4242002  # PostgreSQL advisory lock: one monitor files into the queue at a time


def case_of_post(db: Connection, post_id: int) -> int | None:
    """The case a post was filed into, if any."""
    found = db.execute(select(case_posts.c.case_id).where(case_posts.c.post_id == post_id))
    return None if (case_id := found.scalar()) is None else int(case_id)


def open_case_of_group(db: Connection, group_key: str) -> Any:
    """The newest open case of a group (a thread, an author), locked; None when there is none."""
    return db.execute(select(cases).where(cases.c.group_key == group_key,
                                          cases.c.state.in_(OPEN_STATES))
                      .order_by(cases.c.id.desc()).limit(1).with_for_update()).first()


def add_to_case(db: Connection, case: Any, post_id: int, flag: Flag, now: datetime,
                **values: Any) -> None:
    """File a post into an open case, updating the case's ``values`` (severity, priority...)."""
    db.execute(case_posts.insert().values(case_id=case.id, post_id=post_id, added_at=now))
    db.execute(cases.update().where(cases.c.id == case.id).values(updated_at=now, **values))
    record_event(db, case.id, now, None, "post added",
                 {"post_id": post_id, "severity": flag.severity})


def open_case(db: Connection, post_id: int, flag: Flag, group_key: str, now: datetime,
              **values: Any) -> int:
    """A new case opened by a post; returns its id."""
    case_id = int(db.execute(cases.insert().values(
        post_id=post_id, state="new", severity=flag.severity, category=flag.category,
        group_key=group_key, opened_at=now, updated_at=now, **values)).inserted_primary_key[0])
    db.execute(case_posts.insert().values(case_id=case_id, post_id=post_id, added_at=now))
    record_event(db, case_id, now, None, "opened",
                 {"post_id": post_id, "severity": flag.severity, "category": flag.category})
    return case_id


def team_state(db: Connection) -> tuple[dict[str, bool], dict[str, int]]:
    """Who is marked away (or back), and each person's last automatic assignment (its event)."""
    rows = db.execute(select(people)).all()
    return ({r.name: r.away for r in rows if r.away is not None},
            {r.name: r.last_auto_event for r in rows if r.last_auto_event is not None})


def assign_automatically(db: Connection, case_id: int, assignee: str, now: datetime) -> None:
    db.execute(cases.update().where(cases.c.id == case_id)
               .values(state="assigned", assignee=assignee))
    event = record_event(db, case_id, now, None, "assigned",
                         {"assignee": assignee, "auto": True})
    set_person(db, assignee, now, last_auto_event=event)


class CaseQueries:
    """The queue's reads and commands, mixed into Store (they use ``self.engine``)."""

    engine: Engine

    # --- reading -----------------------------------------------------------------------------

    def list_cases(self, *, now: datetime, assignee: str | None = None,
                   states: Sequence[str] | None = None, overdue: bool = False,
                   severity: str | None = None, limit: int | None = None,
                   offset: int = 0) -> list[Case]:
        """Cases (open ones unless ``states`` says otherwise), most urgent first; ``limit``
        and ``offset`` cut one page. Read in two steps, as the web inbox reads its pages
        (``monitor.store.web``): the ids in order from the cases table alone, then only those
        cases whole (their headline post is a correlated subquery: asked for in the sorted
        query, it would run for every listed case, not just the page's)."""
        query = (select(cases.c.id).where(*_listed(now, assignee, states, overdue, severity))
                 .order_by(cases.c.priority.desc(), cases.c.opened_at, cases.c.id))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self.engine.connect() as db:
            return cases_in_order(db, list(db.execute(query).scalars()), now)

    def count_listed(self, *, now: datetime, assignee: str | None = None,
                     states: Sequence[str] | None = None, overdue: bool = False,
                     severity: str | None = None) -> int:
        """How many cases ``list_cases`` would list without a limit: one COUNT in SQL."""
        with self.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(cases).where(
                *_listed(now, assignee, states, overdue, severity))).scalar_one())

    def get_case(self, case_id: int, now: datetime) -> CaseDetail:
        """A case with its posts (flag, reasons, scores), its history and its notes."""
        with self.engine.connect() as db:
            row = db.execute(_case_query().where(cases.c.id == case_id)).first()
            if row is None:
                raise CaseError(f"no case {case_id}")
            found = db.execute(
                select(posts.c.id.label("post_id"), posts.c.source, posts.c.url,
                       posts.c.author, posts.c.title, posts.c.text, posts.c.published_at,
                       posts.c.reach,
                       case_posts.c.added_at, flags.c.severity, flags.c.category,
                       flags.c.rules, flags.c.reasons, *SCORE_COLUMNS)
                .join(posts, posts.c.id == case_posts.c.post_id)
                .outerjoin(flags, flags.c.post_id == posts.c.id)
                .outerjoin(scores, scores.c.post_id == posts.c.id)
                .where(case_posts.c.case_id == case_id)
                .order_by(case_posts.c.added_at, posts.c.id))
            history = db.execute(select(case_events.c.at, case_events.c.actor,
                                        case_events.c.action, case_events.c.detail)
                                 .where(case_events.c.case_id == case_id)
                                 .order_by(case_events.c.id))
            return CaseDetail(_case(row, now), tuple(dict(r._mapping) for r in found),
                              tuple(dict(r._mapping) for r in history))

    def queue_stats(self, now: datetime) -> list[SeverityStats]:
        """Response and resolution times and open/overdue counts, by severity."""
        with self.engine.connect() as db:
            rows = db.execute(select(cases.c.state, cases.c.severity, cases.c.opened_at,
                                     cases.c.due_at, cases.c.first_response_at,
                                     cases.c.resolved_at))
            return queue_stats((r._mapping for r in rows), now)

    def case_activity(self, now: datetime, zone: tzinfo, days: int = 14,
                      recent: int = 7) -> CaseActivity:
        """Per person, their open and overdue cases and those first answered in the last
        ``recent`` days (with the median time to that answer); and the cases opened and
        closed on each of the last ``days`` local days, today last. One read of the cases
        that are open or moved in that time, for the leads' stats page."""
        today = now.astimezone(zone).date()
        since = datetime.combine(today - timedelta(days=days - 1), time(), zone)
        answered_since = now - timedelta(days=recent)
        query = select(cases.c.assignee, cases.c.state, cases.c.opened_at, cases.c.due_at,
                       cases.c.first_response_at, cases.c.resolved_at).where(or_(
            cases.c.state.in_(OPEN_STATES), cases.c.opened_at >= since,
            cases.c.resolved_at >= since, cases.c.first_response_at >= answered_since))
        with self.engine.connect() as db:
            rows = db.execute(query).all()
        return _activity(rows, now, zone, [today - timedelta(days=n)
                                           for n in range(days - 1, -1, -1)], answered_since)

    def untouched_critical(self, now: datetime, repeat_interval: float) -> list[Case]:
        """Open critical cases nobody has answered, last reminded (or opened) at least
        ``repeat_interval`` seconds ago, that still hold a flagged post (a rescore may have
        dropped their flags): the reminder logic repeats them."""
        cutoff = now - timedelta(seconds=repeat_interval)
        flagged = exists(select(case_posts.c.post_id).join(
            flags, flags.c.post_id == case_posts.c.post_id).where(
            case_posts.c.case_id == cases.c.id))
        query = _case_query().where(
            cases.c.state.in_(OPEN_STATES), cases.c.severity == "critical",
            cases.c.first_response_at.is_(None), flagged,
            or_(cases.c.reminded_at <= cutoff,
                and_(cases.c.reminded_at.is_(None), cases.c.opened_at <= cutoff)))
        with self.engine.connect() as db:
            return [_case(r, now) for r in db.execute(query.order_by(cases.c.id))]


@dataclass(frozen=True, slots=True)
class PersonStats:
    """One assignee's load: open and overdue cases, cases first answered lately, and the
    median seconds from opening to that answer (None: none answered lately). ``name`` None:
    the cases assigned to nobody, open or answered all the same (a lead must see them)."""

    name: str | None
    open: int
    overdue: int
    answered: int
    first_response_median: float | None


@dataclass(frozen=True, slots=True)
class DayActivity:
    day: date
    opened: int
    closed: int  # resolved or dismissed that day (and not reopened since)


@dataclass(frozen=True, slots=True)
class CaseActivity:
    people: list[PersonStats]   # by name; unassigned open cases are not anybody's
    days: list[DayActivity]     # oldest first


def _activity(rows: Sequence[Any], now: datetime, zone: tzinfo, days: list[date],
              answered_since: datetime) -> CaseActivity:
    opened = Counter(r.opened_at.astimezone(zone).date() for r in rows)
    closed = Counter(r.resolved_at.astimezone(zone).date() for r in rows
                     if r.state in CLOSED_STATES and r.resolved_at is not None)
    people = []
    for name in [*sorted({r.assignee for r in rows if r.assignee}), None]:
        mine = [r for r in rows if r.assignee == name]
        answered = [(r.first_response_at - r.opened_at).total_seconds() for r in mine
                    if r.first_response_at is not None and r.first_response_at >= answered_since]
        load = sum(r.state in OPEN_STATES for r in mine)
        if name is None and not (load or answered):  # nobody's row only when it holds some
            continue
        people.append(PersonStats(
            name, load, sum(is_overdue(r.state, r.due_at, r.first_response_at, now)
                            for r in mine),
            len(answered), statistics.median(answered) if answered else None))
    return CaseActivity(people, [DayActivity(d, opened[d], closed[d]) for d in days])


# --- pieces of a command, in the caller's transaction ---------------------------------------

def lock_queue(db: Connection) -> None:
    """Serialise filing (grouping and the assignment rotation are shared state) until the
    transaction ends, across processes: several monitors may share one PostgreSQL."""
    if db.dialect.name == "postgresql":
        db.execute(text(f"SELECT pg_advisory_xact_lock(:key, {SCHEMA_KEY})"), {"key": QUEUE_LOCK})
    else:  # an empty write takes SQLite's write lock now, not at the first real write
        db.execute(people.update().where(people.c.name.is_(None)).values(name=people.c.name))


def locked_case(db: Connection, case_id: int) -> Any:
    if db.dialect.name == "sqlite":  # take the write lock before reading
        db.execute(cases.update().where(cases.c.id == case_id).values(id=cases.c.id))
    row = db.execute(select(cases).where(cases.c.id == case_id).with_for_update()).first()
    if row is None:
        raise CaseError(f"no case {case_id}")
    return row


def change_after(db: Connection, case_id: int, event_id: int, actor: str | None) -> Any:
    """The first change a person other than ``actor`` made to the case after ``event_id``
    (at, actor, action), or None. The monitor's own events (a post added) do not count."""
    query = (select(case_events.c.at, case_events.c.actor, case_events.c.action)
             .where(case_events.c.case_id == case_id, case_events.c.id > event_id,
                    case_events.c.actor.is_not(None)))
    if actor is not None:
        query = query.where(case_events.c.actor != actor)
    return db.execute(query.order_by(case_events.c.id).limit(1)).first()


def update_case(db: Connection, case_id: int, now: datetime, **values: Any) -> None:
    db.execute(cases.update().where(cases.c.id == case_id).values(updated_at=now, **values))


def record_event(db: Connection, case_id: int, now: datetime, actor: str | None, action: str,
           detail: dict[str, Any] | None) -> int:
    return int(db.execute(case_events.insert().values(
        case_id=case_id, at=now, actor=actor, action=action, detail=detail))
        .inserted_primary_key[0])


def set_person(db: Connection, name: str, now: datetime, **values: Any) -> None:
    if not db.execute(people.update().where(people.c.name == name)
                      .values(updated_at=now, **values)).rowcount:
        db.execute(people.insert().values(name=name, updated_at=now, **values))


_READ_AT_ONCE = 500
"""Cases read whole in one query (the IN list of their ids stays well within SQLite's)."""


def _listed(now: datetime, assignee: str | None, states: Sequence[str] | None,
            overdue: bool, severity: str | None) -> list[Any]:
    """The WHERE clauses of ``list_cases``, on the cases table alone (its indexes serve them)."""
    where: list[Any] = [cases.c.state.in_(states or OPEN_STATES)]
    if assignee is not None:
        where.append(cases.c.assignee == assignee)
    if severity is not None:
        where.append(cases.c.severity == severity)
    if overdue:
        where += [cases.c.state.in_(OPEN_STATES), cases.c.due_at < now,
                  cases.c.first_response_at.is_(None)]
    return where


_HEAD, _OWN, _HEAD_FLAG = posts.alias("head"), posts.alias("own"), flags.alias("head_flag")
_RANK = case({s: rank for rank, s in enumerate(SEVERITIES, 1)}, value=flags.c.severity,
             else_=0)  # a post whose flag a rescore dropped comes last


@cache
def _case_query() -> Any:
    """Cases with their post count, their headline post (the most severe, the latest of
    equals) and its category (a praise thread turned angry is no longer praise), and the
    title of that post's thread's own post, when it is stored. Built once: a statement is
    immutable (``.where`` makes a new one), and building it costs each page."""
    count = (select(func.count()).select_from(case_posts)
             .where(case_posts.c.case_id == cases.c.id).scalar_subquery())
    headline = (select(case_posts.c.post_id)
                .join(posts, posts.c.id == case_posts.c.post_id)
                .outerjoin(flags, flags.c.post_id == case_posts.c.post_id)
                .where(case_posts.c.case_id == cases.c.id)
                .order_by(_RANK.desc(), posts.c.published_at.desc(), posts.c.id.desc())
                .limit(1).correlate(cases).scalar_subquery())
    return (select(cases, count.label("post_count"), _HEAD.c.id.label("head_id"),
                   _HEAD.c.source, _HEAD.c.author, _HEAD.c.title, _HEAD.c.text, _HEAD.c.url,
                   _OWN.c.title.label("thread_title"),
                   _HEAD_FLAG.c.post_id.label("head_flagged"),
                   _HEAD_FLAG.c.category.label("head_category"))
            .select_from(cases.join(_HEAD, _HEAD.c.id == func.coalesce(headline,
                                                                        cases.c.post_id))
                         .outerjoin(_HEAD_FLAG, _HEAD_FLAG.c.post_id == _HEAD.c.id)
                         .outerjoin(_OWN, and_(_OWN.c.source == _HEAD.c.source,
                                               _OWN.c.external_id == _HEAD.c.thread_id))))


def cases_in_order(db: Connection, ids: Sequence[int], now: datetime) -> list[Case]:
    """The cases ``ids``, in that order (one gone meanwhile is left out), read a bounded IN
    list at a time."""
    found: dict[int, Case] = {}
    for start in range(0, len(ids), _READ_AT_ONCE):
        chunk = ids[start:start + _READ_AT_ONCE]
        found.update((r.id, _case(r, now)) for r in db.execute(
            _case_query().where(cases.c.id.in_(chunk))))
    return [found[i] for i in ids if i in found]


def reload_case(db: Connection, case_id: int, now: datetime) -> Case:
    return _case(db.execute(_case_query().where(cases.c.id == case_id)).one(), now)


def _case(row: Any, now: datetime) -> Case:
    return Case(
        id=row.id, state=row.state, severity=row.severity,
        category=row.category if row.head_flagged is None else row.head_category,
        priority=row.priority, assignee=row.assignee, group_key=row.group_key,
        opened_at=row.opened_at, updated_at=row.updated_at, due_at=row.due_at,
        first_response_at=row.first_response_at, resolved_at=row.resolved_at,
        reason=row.reason,
        overdue=is_overdue(row.state, row.due_at, row.first_response_at, now),
        posts=row.post_count, source=row.source, author=row.author,
        title=thread_title(row.title, row.author, row.thread_title), url=row.url,
        post_id=row.head_id, text=row.text)

