"""The case page: every post of the case with why it was flagged, the author's history with
us, the launch it is about, reply templates filled in, notes, and the state machine's buttons;
who else is on the case, live.

Each action is the CLI's command (``monitor.cases``) with ``seen``, the case's latest event
when the page was drawn: if someone else changed the case since, the action is refused and the
page says who did what, rather than applying a stale decision on top of theirs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor import cases
from monitor.cases import StaleCase
from monitor.queue import CLOSED_STATES, CaseDetail, CaseError, replies_for
from monitor.web.auth import guard
from monitor.web.inbox import REASONS
from monitor.web.pages import render

PRESENT_FOR = timedelta(seconds=20)  # presence polls every 5 s; gone after missing a few
ACTIVITIES = ("viewing", "replying")


def _case_id(request: Request) -> int:
    value = request.path_params["case_id"]
    return int(value)


@guard()
def case_page(request: Request) -> Response:
    return _page(request, _case_id(request))


def _page(request: Request, case_id: int, status: int = 200, error: str | None = None,
          draft: dict[str, str] | None = None) -> Response:
    state = request.app.state
    store, config, now, me = state.store, state.config, state.clock(), request.state.user.name
    try:
        detail = store.get_case(case_id, now)
    except CaseError as missing:
        return render(request, "error.html", 404, title="No such case", message=str(missing))
    seen = store.last_event_id(case_id)  # a GET writes nothing: presence is the page's poll's
    case = detail.case
    history = []
    if case.author and not case.storm:
        history = store.author_history(case.source, case.author, exclude_case=case_id)
    outcome = store.outcome(case_id)  # did the answer win them back (monitor.followup)
    return render(
        request, "case.html", status, title=f"Case {case_id}", case=case, detail=detail,
        seen=seen, error=error, draft=draft or {}, history=history,
        replies=replies_for(detail, config.replies(), config.latest_event(now)),
        launches=about_launches(detail, config), vip=case.author in config.main.vip_authors,
        reach=max((p.get("reach") or 0 for p in detail.posts), default=0),
        others=_others(store, case_id, me, now), team=[m.name for m in config.policy.team],
        reasons=REASONS, closed=case.state in CLOSED_STATES,
        may_assign=request.state.user.may("assign"), themes=store.themes_of_case(case_id),
        outcome=outcome, outcome_posts=store.posts_by_id(
            outcome["evidence"].get("shown_by", [])) if outcome else [])


def about_launches(detail: CaseDetail, config: Any) -> list[str]:
    """The configured launches the case is about (``WatchedEvent.about_case``): a storm's
    own, or those it was opened around with a post that mentions them."""
    from monitor.backlash.events import watched

    if detail.case.event:
        return [detail.case.event]
    return [e.name for e in watched(config.main.events, config.timezone, config.sources)
            if e.about_case(detail.case.opened_at, detail.posts)]


def _others(store: Any, case_id: int, me: str, now: Any) -> list[dict[str, Any]]:
    return [p for p in store.present(case_id, now - PRESENT_FOR) if p["user_name"] != me]


@guard()
def act(request: Request) -> Response:
    """One command on the case, from its page's form."""
    state, form = request.app.state, request.state.form
    case_id, action, me = _case_id(request), request.path_params["action"], request.state.user.name
    store, now, policy = state.store, state.clock(), state.config.policy
    try:
        seen = int(str(form.get("seen", "")))
    except ValueError:
        seen = None  # a form without it acts like the CLI: on the case as it is now
    text = str(form.get("text", "")).strip()[:20_000]
    try:
        if action == "claim":
            cases.claim(store, case_id, actor=me, now=now, policy=policy, seen=seen)
        elif action == "assign":
            if not request.state.user.may("assign"):
                return _page(request, case_id, 403, "Assigning is for leads: claim the case "
                                                     "to take it yourself.")
            cases.assign(store, case_id, str(form.get("person", "")).strip(), actor=me,
                         now=now, policy=policy, seen=seen)
        elif action == "respond":
            cases.respond(store, case_id, actor=me, now=now, text=text, seen=seen,
                          template=str(form.get("template", "")).strip()[:200] or None)
            store.mark_presence(case_id, me, "viewing", now)
        elif action == "note":
            cases.note(store, case_id, text, actor=me, now=now, seen=seen)
        elif action == "resolve":
            cases.resolve(store, case_id, actor=me, now=now, seen=seen)
        elif action == "dismiss":
            reason = (str(form.get("reason_text", "")).strip()
                      or str(form.get("reason", "")).strip())[:500]
            cases.dismiss(store, case_id, reason, actor=me, now=now, seen=seen)
        elif action == "reopen":
            cases.reopen(store, case_id, actor=me, now=now, policy=policy, seen=seen)
        else:
            return render(request, "error.html", 404, title="Unknown action",
                          message=f"There is no action {action!r} on a case.")
    except StaleCase as stale:
        return _page(request, case_id, 409, str(stale), draft={"text": text})
    except CaseError as refused:
        return _page(request, case_id, 400 if "no case" not in str(refused) else 404,
                     str(refused), draft={"text": text})
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@guard()
def here(request: Request) -> Response:
    """The page says it is open (and whether its person is replying); the answer is who
    else is on the case, and whether it changed since the page was drawn."""
    state, form = request.app.state, request.state.form
    case_id, me, now = _case_id(request), request.state.user.name, state.clock()
    activity = str(form.get("activity", "viewing"))
    state.store.mark_presence(case_id, me, activity if activity in ACTIVITIES else "viewing",
                              now)
    try:
        seen = int(str(form.get("seen", "0")))
    except ValueError:
        seen = 0
    changed = state.store.changed_since(case_id, seen, me)
    return render(request, "_presence.html", others=_others(state.store, case_id, me, now),
                  changed=changed, case_id=case_id)


@guard()
def leave(request: Request) -> Response:
    request.app.state.store.leave_case(_case_id(request), request.state.user.name)
    return Response(status_code=204)


routes = [Route("/cases/{case_id:int}", case_page),
          Route("/cases/{case_id:int}/presence", here, methods=["POST"]),
          Route("/cases/{case_id:int}/leave", leave, methods=["POST"]),
          Route("/cases/{case_id:int}/{action:str}", act, methods=["POST"])]
