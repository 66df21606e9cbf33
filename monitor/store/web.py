"""The web inbox's SQL: sessions, who is on which case, the inbox's page of cases with its
filters and counts, and an author's history. The case commands themselves are the CLI's
(``monitor.cases``): the web only reads here, and writes its own sessions and presence.

Why a page is read in two steps: the list's columns (the headline post, the thread's title)
are correlated subqueries; asking for them in the sorted query would compute them for every
matching case, 100,000 of them in a big queue. The ids of one page are found first from the
cases table alone (its indexes serve the filters and the order), then only those are read
whole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import String, and_, cast, exists, func, or_, select, union_all
from sqlalchemy.engine import Engine

from monitor.queue import OPEN_STATES, Case
from monitor.store.casework import cases_in_order, change_after, team_state
from monitor.store.schema import (
    case_events,
    case_posts,
    cases,
    flags,
    posts,
    presence,
    scores,
    web_sessions,
)

NOBODY = "-"
"""The assignee filter's value for cases nobody has."""


class LaunchFilter(NamedTuple):
    """A launch as the inbox's launch view looks for its cases (``WatchedEvent.about_case``
    in SQL: a keyword as a substring, not a whole word)."""

    storm_source: str
    keywords: tuple[str, ...]
    sources: tuple[str, ...]  # none: every source
    start: datetime           # cases opened from then ...
    end: datetime             # ... to then


@dataclass(frozen=True)
class CaseFilter:
    """What the inbox shows: every field narrows it (None and empty: no narrowing). ``launch``
    is (storm source, keywords, sources, since): a launch's storm case, and cases opened since
    it whose posts name one of its keywords."""

    states: tuple[str, ...] = OPEN_STATES
    severity: str | None = None
    assignee: str | None = None          # NOBODY: unassigned
    source: str | None = None
    language: str | None = None          # a language code, in any case ("FR" is "fr")
    tag: str | None = None
    overdue_at: datetime | None = None   # open, unanswered, past due at this time
    opened_since: datetime | None = None
    case_ids: tuple[int, ...] | None = None  # a search's result
    launch: LaunchFilter | None = None


class WebQueries:
    """Mixed into Store (uses ``self.engine``)."""

    engine: Engine

    # --- sessions ----------------------------------------------------------------------------

    def add_session(self, session_id: str, user: str, csrf: str, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(web_sessions.insert().values(id=session_id, user_name=user, csrf=csrf,
                                                    created_at=now, seen_at=now))

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(select(web_sessions).where(web_sessions.c.id == session_id)).first()
            return None if row is None else dict(row._mapping)

    def touch_session(self, session_id: str, now: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(web_sessions.update().where(web_sessions.c.id == session_id)
                       .values(seen_at=now))

    def end_sessions(self, now: datetime, *, session_id: str | None = None,
                     user: str | None = None) -> int:
        """End one session (logout), or all of a user's (disabled, password changed)."""
        query = web_sessions.update().where(web_sessions.c.ended_at.is_(None))
        if session_id is not None:
            query = query.where(web_sessions.c.id == session_id)
        if user is not None:
            query = query.where(web_sessions.c.user_name == user)
        with self.engine.begin() as db:
            return db.execute(query.values(ended_at=now)).rowcount

    # --- presence ----------------------------------------------------------------------------

    def mark_presence(self, case_id: int, user: str, activity: str, now: datetime) -> bool:
        """``user`` has the case open; False (nothing written) when there is no such case."""
        with self.engine.begin() as db:
            done = db.execute(presence.update().where(presence.c.case_id == case_id,
                                                      presence.c.user_name == user)
                              .values(activity=activity, seen_at=now)).rowcount
            if done:
                return True
            if db.execute(select(cases.c.id).where(cases.c.id == case_id)).first() is None:
                return False
            db.execute(presence.insert().values(case_id=case_id, user_name=user,
                                                activity=activity, seen_at=now))
            return True

    def leave_case(self, case_id: int, user: str) -> None:
        with self.engine.begin() as db:
            db.execute(presence.delete().where(presence.c.case_id == case_id,
                                               presence.c.user_name == user))

    def present(self, case_id: int, since: datetime) -> list[dict[str, Any]]:
        """Who has had the case open since ``since``: name, activity, seen_at."""
        with self.engine.connect() as db:
            rows = db.execute(select(presence.c.user_name, presence.c.activity,
                                     presence.c.seen_at)
                              .where(presence.c.case_id == case_id, presence.c.seen_at >= since)
                              .order_by(presence.c.user_name))
            return [dict(r._mapping) for r in rows]

    def away_overrides(self) -> dict[str, bool]:
        """Who ``monitor queue away``/``back`` marked (it wins over the config's ``away``)."""
        with self.engine.connect() as db:
            return team_state(db)[0]

    # --- the inbox ---------------------------------------------------------------------------

    def inbox_page(self, where: CaseFilter, now: datetime, *, limit: int = 50,
                   offset: int = 0) -> list[Case]:
        """One page of the filtered cases, most urgent first: priority, then the due time
        (the soonest first; none last), then the oldest."""
        with self.engine.connect() as db:
            return cases_in_order(db, [r[0] for r in db.execute(_page_ids(where, limit, offset))],
                                  now)

    def count_cases(self, where: CaseFilter) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(cases)
                                  .where(*_conditions(where))).scalar_one())

    def newest_case_id(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.coalesce(func.max(cases.c.id), 0))).scalar_one())

    def last_event_id(self, case_id: int) -> int:
        """The case's latest event: a page shows the case as of it, and an action sent from
        that page names it, so a change made meanwhile by someone else is caught."""
        with self.engine.connect() as db:
            return int(db.execute(select(func.coalesce(func.max(case_events.c.id), 0))
                                  .where(case_events.c.case_id == case_id)).scalar_one())

    def changed_since(self, case_id: int, event_id: int, actor: str) -> Any:
        """What someone other than ``actor`` did to the case after ``event_id`` (at, actor,
        action), or None."""
        with self.engine.connect() as db:
            return change_after(db, case_id, event_id, actor)

    def case_sources(self) -> list[str]:
        """The sources that have cases: the inbox's source filter offers them."""
        with self.engine.connect() as db:
            return [r[0] for r in db.execute(
                select(posts.c.source).distinct().join(cases, cases.c.post_id == posts.c.id)
                .order_by(posts.c.source))]

    def author_history(self, source: str, author: str, *, exclude_case: int | None = None,
                       limit: int = 20) -> list[dict[str, Any]]:
        """The author's other posts on ``source``, newest first, with their case (if any),
        its state, and the post's flag severity: their history with us."""
        query = (select(posts.c.id.label("post_id"), posts.c.url, posts.c.title, posts.c.text,
                        posts.c.published_at, flags.c.severity, case_posts.c.case_id,
                        cases.c.state)
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .outerjoin(case_posts, case_posts.c.post_id == posts.c.id)
                 .outerjoin(cases, cases.c.id == case_posts.c.case_id)
                 .where(posts.c.source == source, posts.c.author == author)
                 .order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit))
        if exclude_case is not None:
            query = query.where(or_(case_posts.c.case_id.is_(None),
                                    case_posts.c.case_id != exclude_case))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]


def _urgent_first(table: Any) -> tuple[Any, ...]:
    """The inbox's order: priority, then the due time (the soonest first; none last), then the
    oldest. The index ix_cases_inbox is (state, then this): one state's cases in this order."""
    return (table.c.priority.desc(), table.c.due_at.is_(None), table.c.due_at, table.c.id)


@lru_cache(maxsize=512)  # a statement is immutable; building one costs each page
def _page_ids(where: CaseFilter, limit: int, offset: int) -> Any:
    """The ids of one page. Cases of one state are read in order straight from the index, up
    to the page's end, and stop there. Several states (the open ones: new, assigned,
    responded) are one such read each, merged: a single read of all of them would find
    every open case, then sort them all for 50 (``state IN (...)`` keeps an index from
    giving the order)."""
    states = tuple(dict.fromkeys(where.states))  # a state asked for twice is one state
    if len(states) <= 1:
        return (select(cases.c.id).where(*_conditions(where)).order_by(*_urgent_first(cases))
                .limit(limit).offset(offset))
    parts = [select(cases.c.id, cases.c.priority, cases.c.due_at)
             .where(*_conditions(replace(where, states=(state,))))
             .order_by(*_urgent_first(cases)).limit(offset + limit).subquery()
             for state in states]
    merged = union_all(*(select(part.c.id, part.c.priority, part.c.due_at)
                         for part in parts)).subquery()
    return (select(merged.c.id).order_by(*_urgent_first(merged)).limit(limit)
            .offset(offset))


def _conditions(where: CaseFilter) -> list[Any]:
    """The WHERE clauses of a filter, on the cases table (a post's traits through EXISTS)."""
    found: list[Any] = [cases.c.state.in_(where.states)]
    if where.severity:
        found.append(cases.c.severity == where.severity)
    if where.assignee == NOBODY:
        found.append(cases.c.assignee.is_(None))
    elif where.assignee:
        found.append(cases.c.assignee == where.assignee)
    if where.overdue_at is not None:
        found += [cases.c.state.in_(OPEN_STATES), cases.c.due_at < where.overdue_at,
                  cases.c.first_response_at.is_(None)]
    if where.opened_since is not None:
        found.append(cases.c.opened_at >= where.opened_since)
    if where.case_ids is not None:
        found.append(cases.c.id.in_(where.case_ids or (-1,)))
    if where.source:
        found.append(_has_post(posts.c.source == where.source))
    if where.language:
        found.append(exists(select(case_posts.c.post_id)
                            .join(scores, scores.c.post_id == case_posts.c.post_id)
                            .where(case_posts.c.case_id == cases.c.id,
                                   func.lower(scores.c.language) == where.language.lower())))
    if where.tag:
        needle = '%"' + _like_escape(where.tag) + '"%'
        found.append(exists(select(case_posts.c.post_id)
                            .join(flags, flags.c.post_id == case_posts.c.post_id)
                            .where(case_posts.c.case_id == cases.c.id,
                                   cast(flags.c.tags, String).like(needle, escape="\\"))))
    if where.launch is not None:
        found.append(_about_launch(where.launch))
    return found


def _has_post(*conditions: Any) -> Any:
    return exists(select(case_posts.c.post_id).join(posts, posts.c.id == case_posts.c.post_id)
                  .where(case_posts.c.case_id == cases.c.id, *conditions))


def _about_launch(launch: LaunchFilter) -> Any:
    """A launch's cases: its storm's, and those opened in its span whose posts name a
    keyword, on its sources when it has any."""
    named = [func.lower(func.coalesce(posts.c.title, "") + " " + posts.c.text)
             .like("%" + _like_escape(k.lower()) + "%", escape="\\") for k in launch.keywords]
    post_filter = [or_(*named)] if named else []
    if launch.sources:
        post_filter.append(posts.c.source.in_(launch.sources))
    storm = exists(select(posts.c.id).where(posts.c.id == cases.c.post_id,
                                            posts.c.source == launch.storm_source))
    return or_(storm, and_(cases.c.opened_at >= launch.start, cases.c.opened_at <= launch.end,
                           _has_post(*post_filter)))


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
