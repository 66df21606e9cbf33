"""The case page: every post of the case with why it was flagged, the author's history with
us, the launch it is about, reply templates filled in, notes, and the state machine's buttons;
who else is on the case, live.

Each action is the CLI's command (``monitor.cases``) with ``seen``, the case's latest event
when the page was drawn: if someone else changed the case since, the action is refused and the
page says who did what, rather than applying a stale decision on top of theirs; the page is
drawn again with the text that was sent in its box (the browser also keeps drafts until the
page after a recorded one says so: ``data-recorded``).

The reply templates are filled in with what an author chose (their name, their thread's
title), so the bidi controls in it (a right-to-left override turns "evil user" around) are
taken out of what the page offers to copy. A reply is refused when it says nothing (the
won-back figures would count an answer nobody gave) or still holds a bracketed placeholder of
the template it came from ("[a time you can keep]": it was posted, or is about to be, unedited).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor import cases
from monitor.backlash.events import case_launches
from monitor.cases import StaleCase
from monitor.queue import CLOSED_STATES, CaseDetail, CaseError, replies_for
from monitor.quoting import BIDI_CONTROLS
from monitor.web.auth import guard
from monitor.web.inbox import REASONS, assignable
from monitor.web.pages import back_to, local_time, notice_of, render, row_id

PRESENT_FOR = timedelta(seconds=20)  # presence polls every 5 s; gone after missing a few
ACTIVITIES = ("viewing", "replying")
DONE = {"claim": "The case is yours now.", "assign": "Assigned.",
        "respond": "Your reply is recorded.", "note": "Your note is added.",
        "resolve": "Resolved.", "dismiss": "Dismissed.", "reopen": "Reopened."}
"""What the page says once an action is done."""

PLACEHOLDER = re.compile(r"\[[^\[\]]+\]")
"""A template's blank for the person to fill: ``[a time you can keep]``."""

DRAFTS = {"respond": "reply", "note": "note"}
"""The actions that record a text the person wrote: the draft their page keeps until then."""


def _case_id(request: Request) -> int:
    """The URL's case id: a 404 for anything that cannot be one (even beyond 64 bits)."""
    value = request.path_params["case_id"]
    found = row_id(value)
    if found is None:
        raise HTTPException(404, f"There is no case {value[:30]!r}.")
    return found


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
    takers = assignable(state)
    launches = case_launches(config, case.event, case.opened_at, detail.posts)
    return render(
        request, "case.html", status, title=f"Case {case_id}", case=case, detail=detail,
        seen=seen, error=error, draft=draft or {}, history=history,
        notice=notice_of(request) if status == 200 else None,
        replies=_replies(detail, config, launches), launches=launches,
        vip=case.author in config.main.vip_authors,
        reach=max((p.get("reach") or 0 for p in detail.posts), default=0),
        others=_others(store, case_id, me, now), assignable=takers,
        may_claim=me in takers, reasons=REASONS, closed=case.state in CLOSED_STATES,
        may_assign=request.state.user.may("assign"), themes=store.themes_of_case(case_id),
        outcome=outcome, outcome_posts=store.posts_by_id(
            outcome["evidence"].get("shown_by", [])) if outcome else [])


def _replies(detail: CaseDetail, config: Any, launches: list[str]) -> list[dict[str, str]]:
    """The templates that fit the case, filled in (``launches``: those it is about, the latest
    first), without bidi controls."""
    return [{**r, "text": BIDI_CONTROLS.sub("", r["text"])}
            for r in replies_for(detail, config.replies(), next(iter(launches), None))]


def _reply_refusal(text: str, template: str | None, config: Any) -> str | None:
    """Why ``text`` may not be recorded as the reply posted, or None. ``template``: the id of
    the template it was copied from (the page sends it)."""
    if not text.strip():
        return ("Write what you posted before recording it: an empty reply would count as an "
                "answer nobody gave.")
    source = next((r.text for r in config.replies() if r.id == template), "")
    said = " ".join(text.split())
    for blank in (" ".join(b.split()) for b in PLACEHOLDER.findall(source)):
        if blank in said:
            return (f"Your reply still holds the template's placeholder \"{blank}\": replace "
                    "it with what you wrote, then record it.")
    return None


def _others(store: Any, case_id: int, me: str, now: Any) -> list[dict[str, Any]]:
    return [p for p in store.present(case_id, now - PRESENT_FOR) if p["user_name"] != me]


@guard()
def act(request: Request) -> Response:
    """One command on the case, from its page's form. A refusal draws the page again with the
    text the person sent in its box: a reply is never lost to someone else's change."""
    state, form = request.app.state, request.state.form
    case_id, action, me = _case_id(request), request.path_params["action"], request.state.user.name
    store, now, policy = state.store, state.clock(), state.config.policy
    text = str(form.get("text", "")).strip()[:20_000]
    template = str(form.get("template", "")).strip()[:200] or None
    draft = {DRAFTS[action]: text, "template": template or ""} if action in DRAFTS else {}
    given = str(form.get("seen", "")).strip()  # none: as the CLI, on the case as it is now
    seen = row_id(given) if given else None
    if given and seen is None:
        return _page(request, case_id, 400, "This form's 'seen' is no event of a case: reload "
                                            "the case and send it again.", draft)
    person = str(form.get("person", "")).strip()
    try:
        if action == "claim":
            cases.claim(store, case_id, actor=me, now=now, policy=policy, seen=seen)
        elif action == "assign":
            if not request.state.user.may("assign"):
                return _page(request, case_id, 403, "Assigning is for leads: claim the case "
                                                     "to take it yourself.")
            cases.assign(store, case_id, person, actor=me, now=now, policy=policy, seen=seen)
        elif action == "respond":
            if problem := _reply_refusal(text, template, state.config):
                return _page(request, case_id, 400, problem, draft)
            cases.respond(store, case_id, actor=me, now=now, text=text, seen=seen,
                          template=template)
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
        when = local_time(stale.change.at, request.app.state.config.timezone)
        return _page(request, case_id, 409, stale.said(when), draft)
    except CaseError as refused:
        return _page(request, case_id, 400 if "no case" not in str(refused) else 404,
                     str(refused), draft)
    done = f"Assigned to {person}." if action == "assign" else DONE[action]
    return back_to(request, f"/cases/{case_id}", done, recorded=DRAFTS.get(action))


@guard()
def here(request: Request) -> Response:
    """The page says it is open (and whether its person is replying); the answer is who
    else is on the case, and whether it changed since the page was drawn."""
    state, form = request.app.state, request.state.form
    case_id, me, now = _case_id(request), request.state.user.name, state.clock()
    activity = str(form.get("activity", "viewing"))
    if not state.store.mark_presence(case_id, me,
                                     activity if activity in ACTIVITIES else "viewing", now):
        return render(request, "error.html", 404, title="No such case",
                      message=f"There is no case {case_id}.")
    changed = state.store.changed_since(case_id, row_id(form.get("seen", "0")) or 0, me)
    return render(request, "_presence.html", others=_others(state.store, case_id, me, now),
                  changed=changed, case_id=case_id)


@guard()
def leave(request: Request) -> Response:
    request.app.state.store.leave_case(_case_id(request), request.state.user.name)
    return Response(status_code=204)


routes = [Route("/cases/{case_id}", case_page),  # the id checked by _case_id: a 404, not a 500
          Route("/cases/{case_id}/presence", here, methods=["POST"]),
          Route("/cases/{case_id}/leave", leave, methods=["POST"]),
          Route("/cases/{case_id}/{action:str}", act, methods=["POST"])]
