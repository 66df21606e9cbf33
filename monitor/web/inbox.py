"""The inbox: cases most urgent first, the filters kept in the URL, saved views with their
counts, search, bulk actions, and new cases shown without a reload (short polling).

Every change goes through ``monitor.cases``, the CLI's own commands, one case at a time: a
bulk action that cannot be done to one case (already resolved by someone else) is reported
for that case and done for the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor import cases
from monitor.model import SEVERITIES, STORM_SOURCE
from monitor.queue import STATES, CaseError
from monitor.reports.digest import day_bounds
from monitor.store.web import NOBODY, CaseFilter
from monitor.web.auth import guard
from monitor.web.pages import render

log = logging.getLogger(__name__)

PAGE = 50
COUNTS_FOR = 10.0  # seconds a view's count is reused: 20 people polling cost one count
COUNT_SHARE = 0.05  # at most this share of a core spent recounting one slow count (a launch's)
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


def launch_filter(request: Request, name: str) -> tuple[str, tuple[str, ...], tuple[str, ...],
                                                         datetime] | None:
    config = request.app.state.config
    for event in config.main.events:
        if event.name == name:
            when = event.date if event.date.tzinfo else event.date.replace(
                tzinfo=config.timezone)
            return (STORM_SOURCE + event.name, tuple(event.keywords), tuple(event.sources),
                    when)
    return None


def chosen(request: Request) -> tuple[dict[str, Any], CaseFilter, View | None, list[str]]:
    """The URL's view and filters: (the values shown back, the filter, the view, problems)."""
    params, me = request.query_params, request.state.user.name
    known = {v.key: v for v in views(request)}
    view = known.get(params.get("view") or "") if params.get("view") or not any(
        params.get(k) for k in FILTERS) else None
    if view is None and not any(params.get(k) for k in FILTERS) and not params.get("view"):
        view = known["open"]
    where = view.where if view else CaseFilter()
    shown: dict[str, Any] = {"view": view.key if view else None}
    problems = []
    states = [s for s in params.getlist("state") if s in (*STATES, "all")]
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
    return _cached(request.app.state.counts, ("count", shared),
                   lambda: store.count_cases(where))


def sources(request: Request) -> list[str]:
    """The sources that have cases (the source filter's choices), shared like the counts."""
    store = request.app.state.store
    return _cached(request.app.state.counts, ("sources",), store.case_sources)


_ANY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LOCK = threading.Lock()


class _Entry:
    """A cached answer: when it was found, and whether a thread is finding it anew."""

    __slots__ = ("at", "keep", "value", "found", "busy", "ready")

    def __init__(self) -> None:
        self.at, self.keep, self.value, self.found, self.busy = 0.0, COUNTS_FOR, None, False, True
        self.ready = threading.Event()  # set once the first finding ended


def _cached(cache: dict[Any, Any], ident: Any, find: Callable[[], Any]) -> Any:
    """``find()``, reused for COUNTS_FOR seconds (a slow one longer, up to two minutes: it
    took at most COUNT_SHARE of that time). Once older, the old answer is still given while
    one background thread finds the new one, so no page waits for a count it showed a moment
    ago; the first answer is found once (others asking meanwhile wait for it)."""
    with _CACHE_LOCK:
        entry = cache.get(ident)
        if entry is None:
            if len(cache) > 10_000:
                cache.clear()
            entry = cache[ident] = _Entry()
            first = True
        else:
            first = False
            if (entry.ready.is_set() and not entry.busy
                    and time.monotonic() - entry.at > entry.keep):
                entry.busy = True
                threading.Thread(target=_refresh, args=(entry, find), daemon=True,
                                 name="inbox-count").start()
    if first:
        try:
            entry.value, entry.found = _timed(entry, find), True
        except BaseException:
            with _CACHE_LOCK:
                if cache.get(ident) is entry:
                    del cache[ident]
            raise
        finally:
            entry.at, entry.busy = time.monotonic(), False
            entry.ready.set()
        return entry.value
    if not entry.ready.wait(60) or not entry.found:  # the first finding failed (or hangs)
        return find()
    return entry.value


def _timed(entry: _Entry, find: Callable[[], Any]) -> Any:
    start = time.monotonic()
    value = find()
    entry.keep = min(max(COUNTS_FOR, (time.monotonic() - start) / COUNT_SHARE),
                     12 * COUNTS_FOR)
    return value


def _refresh(entry: _Entry, find: Callable[[], Any]) -> None:
    try:
        entry.value = _timed(entry, find)
        entry.at = time.monotonic()
    except Exception as error:  # the old answer stays; the next page tries again
        log.warning("web: a count of the inbox failed: %s: %s", type(error).__name__,
                    (str(error).splitlines() or [""])[0])
    finally:
        entry.busy = False


@guard()
def inbox(request: Request) -> Response:
    state = request.app.state
    shown, where, view, problems = chosen(request)
    try:
        page = max(1, min(int(request.query_params.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    found = state.store.inbox_page(where, state.clock(), limit=PAGE, offset=(page - 1) * PAGE)
    total = count(request, where)
    return render(request, "inbox.html", title="Inbox", cases=found, total=total, page=page,
                  pages=max(1, -(-total // PAGE)), shown=shown, view=view,
                  views=[(v, count(request, v.where)) for v in views(request)],
                  problems=problems, severities=SEVERITIES, states=STATES,
                  team=[m.name for m in state.config.policy.team], reasons=REASONS,
                  sources=sources(request),
                  launches=[e.name for e in state.config.main.events],
                  newest=state.store.newest_case_id(), message=request.query_params.get("msg"),
                  may_assign=request.state.user.may("assign"))


@guard()
def fresh(request: Request) -> Response:
    """The cases filed since the page was drawn that match its filters: shown above the
    list, without a reload."""
    state = request.app.state
    _shown, where, _view, _problem = chosen(request)
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        after = 0
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
    ids = sorted({int(i) for i in form.getlist("case") if str(i).isdigit()})[:500]
    back = _back(str(form.get("back", "/")))
    if not ids:
        return _redirect(back, "Select cases first (x, or the boxes).")
    if action == "assign" and not user.may("assign"):
        return _redirect(back, "Assigning is for leads: claim a case to take it yourself.")
    done, failed = 0, []
    for case_id in ids:
        try:
            _act(state, user.name, action, case_id, form)
            done += 1
        except CaseError as error:
            failed.append(str(error))
        except ValueError as error:
            return _redirect(back, str(error))
    message = f"{action}: {done} case{'s' if done != 1 else ''} done"
    if failed:
        message += f"; {len(failed)} not: " + "; ".join(failed[:5])
    return _redirect(back, message)


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


def _back(target: str) -> str:
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _redirect(back: str, message: str) -> Response:
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(back)
    values = [(k, v) for k, v in parse_qsl(parts.query) if k != "msg"] + [("msg", message[:600])]
    return RedirectResponse(f"{parts.path}?{urlencode(values)}", status_code=303)


routes = [Route("/", inbox), Route("/inbox/fresh", fresh),
          Route("/inbox/bulk", bulk, methods=["POST"])]
