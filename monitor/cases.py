"""The team's commands on a case: assign, claim, note, respond, resolve, dismiss, reopen,
and marking someone away. The queue's rules (``monitor.queue``: the state machine, who may
take a case, the SLA) applied through the store's SQL, each command in one transaction that
re-reads the case as locked in it and records a case event, so an illegal or failed command
changes nothing and history is complete.

``seen``: the case's latest event when the person looked at it (the web inbox sends it). If
someone else has changed the case since, the command is refused (``StaleCase``) rather than
applied on top of what they did; the CLI, which shows nothing first, passes None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.queue import Case, CaseError, QueuePolicy, is_away, next_state
from monitor.store import Store
from monitor.store.casework import (
    change_after,
    locked_case,
    record_event,
    reload_case,
    set_person,
    team_state,
    update_case,
)


class StaleCase(CaseError):
    """Someone else changed the case after the person acting last saw it."""


def _locked(db: Any, case_id: int, actor: str | None, seen: int | None) -> Any:
    row = locked_case(db, case_id)
    if seen is not None and (change := change_after(db, case_id, seen, actor)) is not None:
        when = change.at.strftime("%H:%M UTC")
        raise StaleCase(f"{change.actor} {change.action} case {case_id} at {when}, after you "
                        "opened it: nothing was changed; look at the case again")
    return row


def assign(store: Store, case_id: int, person: str, *, actor: str | None, now: datetime,
           policy: QueuePolicy, action: str = "assign", seen: int | None = None) -> Case:
    """Give the case to ``person`` (a team member who is not away)."""
    policy.check_person(person)
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        state = next_state(case_id, row.state, action, row.assignee)
        if is_away(policy, person, team_state(db)[0]):
            raise CaseError(f"{person} is away: give it to someone present, or run "
                            f"`monitor queue back {person}` first")
        if row.assignee != person or row.state != state:
            update_case(db, case_id, now, state=state, assignee=person)
            record_event(db, case_id, now, actor, "assigned",
                         {"assignee": person, "previous": row.assignee})
        return reload_case(db, case_id, now)


def claim(store: Store, case_id: int, *, actor: str, now: datetime,
          policy: QueuePolicy, seen: int | None = None) -> Case:
    """Take the case yourself."""
    return assign(store, case_id, actor, actor=actor, now=now, policy=policy, action="claim",
                  seen=seen)


def note(store: Store, case_id: int, text: str, *, actor: str | None, now: datetime,
         seen: int | None = None) -> Case:
    """A note for the team, on a case in any state."""
    if not text.strip():
        raise CaseError("a note needs some text")
    with store.transaction() as db:
        _locked(db, case_id, actor, seen)
        update_case(db, case_id, now)
        record_event(db, case_id, now, actor, "note", {"text": text.strip()})
        return reload_case(db, case_id, now)


def respond(store: Store, case_id: int, *, actor: str | None, now: datetime,
            text: str | None = None, seen: int | None = None) -> Case:
    """Someone answered the author (by hand, where they wrote): the SLA is met. ``text``: what
    they wrote, kept in the history."""
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        state = next_state(case_id, row.state, "respond", row.assignee)
        update_case(db, case_id, now, state=state,
                    first_response_at=row.first_response_at or now)
        record_event(db, case_id, now, actor, "responded",
                     {"text": text.strip()} if text and text.strip() else None)
        return reload_case(db, case_id, now)


def resolve(store: Store, case_id: int, *, actor: str | None, now: datetime,
            seen: int | None = None) -> Case:
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        state = next_state(case_id, row.state, "resolve", row.assignee)
        update_case(db, case_id, now, state=state, resolved_at=now)
        record_event(db, case_id, now, actor, "resolved", None)
        return reload_case(db, case_id, now)


def dismiss(store: Store, case_id: int, reason: str, *, actor: str | None,
            now: datetime, seen: int | None = None) -> Case:
    """Close without outreach (spam, a duplicate, nothing to answer); says why."""
    if not reason.strip():
        raise CaseError("dismissing a case needs a reason")
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        state = next_state(case_id, row.state, "dismiss", row.assignee)
        update_case(db, case_id, now, state=state, resolved_at=now, reason=reason.strip())
        record_event(db, case_id, now, actor, "dismissed", {"reason": reason.strip()})
        return reload_case(db, case_id, now)


def reopen(store: Store, case_id: int, *, actor: str | None, now: datetime,
           policy: QueuePolicy, seen: int | None = None) -> Case:
    """Back to its assignee (or to new); never answered yet: a fresh SLA from now."""
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        state = next_state(case_id, row.state, "reopen", row.assignee)
        values: dict[str, Any] = {"state": state, "resolved_at": None, "reason": None}
        if row.first_response_at is None:
            values["due_at"] = policy.sla.due(row.severity, now)
        update_case(db, case_id, now, **values)
        record_event(db, case_id, now, actor, "reopened", {"previous": row.state})
        return reload_case(db, case_id, now)


def set_away(store: Store, person: str, away: bool, *, now: datetime,
             policy: QueuePolicy) -> None:
    """Away people get no new cases (their open ones stay theirs until reassigned)."""
    policy.check_person(person)
    with store.transaction() as db:
        set_person(db, person, now, away=away)
