"""The inbox: cases most urgent first, the filters kept in the URL, saved views with their
counts, search, bulk actions, and new cases shown without a reload (short polling).

Every change goes through ``monitor.cases``, the CLI's own commands, one case at a time: a
bulk action that cannot be done to one case (already resolved by someone else) is reported
for that case and done for the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor import accounts, cases
from monitor.model import SEVERITIES
from monitor.queue import STATES, CaseError, is_away
from monitor.reports.digest import day_bounds
from monitor.store.web import NOBODY, CaseFilter, LaunchFilter
from monitor.web.auth import guard
from monitor.web.pages import back_to, notice_of, render, row_id

log = logging.getLogger(__name__)

PAGE = 50
COUNTS_FOR = 10.0  # seconds a view's count is reused: 20 people polling cost one count
FILTERS = ("state", "severity", "assignee", "source", "launch", "language", "tag", "q")
REASONS = ("not a complaint", "spam", "off topic", "duplicate", "answered elsewhere")
"""Dismiss reasons offered first (any text may be typed): the team's verdicts, kept."""


@dataclass(frozen=True)
class View:
    key: str
    title: str
    where: CaseFilter


def views(request: Request) -> list[View]:
    """The saved views: the person's own, the unassigned critical, the overdue, today's,
    then one per configured launch."""
    state, me = request.app.state, request.state.user.name
    now = state.clock()
    today = now.astimezone(state.config.timezone).date()
    found = [View("mine", "Mine", CaseFilter(assignee=me)),
             View("unassigned-critical", "Unassigned critical",
                  CaseFilter(assignee=NOBODY, severity="critical")),
             View("overdue", "Overdue", CaseFilter(overdue_at=now)),
             View("new-today", "New today",
                  CaseFilter(opened_since=day_bounds(today, state.config.timezone)[0])),
             View("open", "All open", CaseFilter())]
    for event in state.config.main.events:
        found.append(View(f"launch:{event.name}", event.name,
                          CaseFilter(launch=launch_filter(request, event.name))))
    return found


def members(state: Any) -> list[str]:
    """Everyone who may have cases (the assignee filter's choices): the configured team, away
    or not; without a ``team:``, anybody may be assigned, so the active accounts."""
    team = state.config.policy.team
    if team:
        return [m.name for m in team]
    return [u.name for u in accounts.list_users(state.store) if not u.disabled]


def assignable(state: Any) -> list[str]:
    """Whom a case may be given to now (claim, "Assign to"): ``members`` who are not away, so
    no choice offered is one ``monitor.cases`` refuses."""
    policy, away = state.config.policy, state.store.away_overrides()
    return [name for name in members(state) if not is_away(policy, name, away)]


def launch_filter(request: Request, name: str) -> LaunchFilter | None:
    """The launch's cases as the store can look for them (``WatchedEvent.about_case``)."""
    from monitor.backlash.events import watched

    config = request.app.state.config
    for event in watched(config.main.events, config.timezone, config.sources):
        if event.name == name:
            return LaunchFilter(event.storm_source, event.keywords,
                                tuple(sorted(event.sources or ())), *event.case_span)
    return None


def chosen(request: Request) -> tuple[dict[str, Any], CaseFilter, View | None, list[str]]:
    """The URL's view and filters: (the values shown back, the filter, the view, problems)."""
    params, me = request.query_params, request.state.user.name
    known = {v.key: v for v in views(request)}
    asked = params.get("view") or ""
    problems = [f"no saved view {asked[:200]!r}"] if asked and asked not in known else []
    view = known.get(asked) if asked or not any(params.get(k) for k in FILTERS) else None
    if view is None and not any(params.get(k) for k in FILTERS) and not asked:
        view = known["open"]
    where = view.where if view else CaseFilter()
    shown: dict[str, Any] = {"view": view.key if view else None}
    states = []
    for state in (s for s in params.getlist("state") if s):
        if state in (*STATES, "all"):
            states.append(state)
        else:
            problems.append(f"unknown state {state[:200]!r} (one of {', '.join(STATES)}, all)")
    if states:
        where = replace(where, states=STATES if "all" in states else tuple(states))
        shown["state"] = states
    for key in ("severity", "assignee", "source", "language", "tag"):
        value = (params.get(key) or "").strip()[:200]
        if not value:
            continue
        if key == "severity" and value not in SEVERITIES:
            problems.append(f"unknown severity {value!r}")
            continue
        shown[key] = value
        where = replace(where, **{key: me if key == "assignee" and value == "me" else value})
    if launch := (params.get("launch") or "").strip():
        found = launch_filter(request, launch)
        if found is None:
            problems.append(f"no launch named {launch!r} in config.yaml")
        else:
            shown["launch"] = launch
            where = replace(where, launch=found)
    if q := (params.get("q") or "").strip()[:500]:
        shown["q"] = q
        where = replace(where, case_ids=tuple(request.app.state.store.search_case_ids(q)))
    return shown, where, view, problems


def count(request: Request, where: CaseFilter) -> int:
    """A filter's count, shared by everyone for a few seconds (the inbox polls; counts scan).
    The overdue view's "now" is left out of what is shared: it moves at every request."""
    store = request.app.state.store
    shared = replace(where, overdue_at=_ANY_TIME if where.overdue_at else None)
    return request.app.state.counts.get(("count", shared), lambda: store.count_cases(where))


def sources(request: Request) -> list[str]:
    """The sources that have cases (the source filter's choices), shared like the counts."""
    store = request.app.state.store
    return request.app.state.counts.get(("sources",), store.case_sources)


_ANY_TIME = datetime(1970, 1, 1, tzinfo=UTC)


@guard()
def inbox(request: Request) -> Response:
    state = request.app.state
    shown, where, view, problems = chosen(request)
    total = count(request, where)
    pages = max(1, -(-total // PAGE))
    page = min(row_id(request.query_params.get("page", "1")) or 1, pages)  # past the end: last
    found = state.store.inbox_page(where, state.clock(), limit=PAGE, offset=(page - 1) * PAGE)
    takers = assignable(state)
    return render(request, "inbox.html", title="Inbox", cases=found, total=total, page=page,
                  pages=pages, shown=shown, view=view,
                  views=[(v, count(request, v.where)) for v in views(request)],
                  problems=problems, severities=SEVERITIES, states=STATES,
                  members=members(state), assignable=takers, reasons=REASONS,
                  sources=sources(request),
                  launches=[e.name for e in state.config.main.events],
                  newest=state.store.newest_case_id(), notice=notice_of(request),
                  may_assign=request.state.user.may("assign"),
                  may_claim=request.state.user.name in takers)


@guard()
def fresh(request: Request) -> Response:
    """The cases filed since the page was drawn that match its filters: shown above the
    list, without a reload."""
    state = request.app.state
    _shown, where, _view, _problem = chosen(request)
    after = row_id(request.query_params.get("after", "0")) or 0
    newest = state.store.newest_case_id()
    found = []
    if newest > after:
        ids = tuple(range(after + 1, newest + 1))[:200]
        found = state.store.inbox_page(replace(where, case_ids=tuple(
            i for i in ids if where.case_ids is None or i in where.case_ids)),
            state.clock(), limit=20)
    return render(request, "_fresh.html", cases=found)


@guard()
def bulk(request: Request) -> Response:
    """One action on the selected cases (claim, assign, resolve, dismiss), each through the
    case API; what could not be done is said per case."""
    state, user, form = request.app.state, request.state.user, request.state.form
    action = str(form.get("action", ""))
    picked = {str(i) for i in form.getlist("case")}
    ids = sorted({i for i in map(row_id, picked) if i is not None})[:500]
    back = str(form.get("back", "/"))
    if not picked:
        return back_to(request, back, "Select cases first (x, or the boxes).", error=True)
    if action == "assign" and not user.may("assign"):
        return back_to(request, back, "Assigning is for leads: claim a case to take it "
                                      "yourself.", error=True)
    done = 0
    failed = [f"no case {i[:30]}" for i in sorted(picked) if row_id(i) is None]
    for case_id in ids:
        try:
            _act(state, user.name, action, case_id, form)
            done += 1
        except CaseError as error:
            failed.append(str(error))
        except ValueError as error:
            return back_to(request, back, str(error), error=True)
    message = f"{action}: {done} case{'s' if done != 1 else ''} done"
    if failed:
        message += f"; {len(failed)} not: " + "; ".join(failed[:5])
    return back_to(request, back, message, error=bool(failed))


def _act(state: Any, me: str, action: str, case_id: int, form: Any) -> None:
    now, policy, store = state.clock(), state.config.policy, state.store
    if action == "claim":
        cases.claim(store, case_id, actor=me, now=now, policy=policy)
    elif action == "assign":
        person = str(form.get("person", "")).strip()
        if not person:
            raise ValueError("choose whom to assign them to")
        cases.assign(store, case_id, person, actor=me, now=now, policy=policy)
    elif action == "resolve":
        cases.resolve(store, case_id, actor=me, now=now)
    elif action == "dismiss":
        reason = str(form.get("reason", "")).strip()[:500]
        if not reason:
            raise ValueError("a dismissal needs a reason")
        cases.dismiss(store, case_id, reason, actor=me, now=now)
    else:
        raise ValueError(f"unknown action {action!r}")


routes = [Route("/", inbox), Route("/inbox/fresh", fresh),
          Route("/inbox/bulk", bulk, methods=["POST"])]
