"""The team's commands on a case: assign, claim, note, respond, resolve, dismiss, reopen,
confirm, set_severity, and marking someone away; ``flag_post`` labels any stored post. The
queue's rules (``monitor.queue``: the state machine, who may take a case, the SLA) applied
through the store's SQL, each command in one transaction that re-reads the case as locked in
it and records a case event, so an illegal or failed command changes nothing and history is
complete.

``seen``: the case's latest event when the person looked at it (the web inbox sends it). If
someone else has changed the case since, the command is refused (``StaleCase``) rather than
applied on top of what they did; the CLI, which shows nothing first, passes None.

Verdicts are labels for ``monitor learn`` (``labels``, written in the command's transaction),
one per post of the case and signal:

* dismiss: a reason saying "not a complaint" -> complaint False; "spam" or "off topic" ->
  complaint False and anger False (there is nothing to answer in it at all); any other reason
  (a duplicate, answered elsewhere) says nothing about the post: no label.
* confirm: the posts are what they were flagged for: complaint True, and anger True for the
  posts the scorer found angry.
* set_severity: raised -> True for each post's signal (anger where the scorer found it
  angry, complaint where it found a complaint or neither); lowered to low -> False for the
  same; other changes: no label.
* flag_post (``monitor queue flag URL``): what the person says, as given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.model import SEVERITIES, Severity
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
from monitor.store.learning import case_post_scores, post_by_url, record_labels

NOT_A_COMPLAINT = ("not a complaint",)
NOTHING_AT_ALL = ("spam", "off topic", "off-topic")


class StaleCase(CaseError):
    """Someone else changed the case after the person acting last saw it: ``change`` (at,
    actor, action) says who and when; the message gives the time in UTC, ``said`` in the
    words of a page that shows its times otherwise."""

    def __init__(self, case_id: int, change: Any) -> None:
        self.case_id, self.change = case_id, change
        super().__init__(self.said(change.at.strftime("%H:%M UTC")))

    def said(self, when: str) -> str:
        return (f"{self.change.actor} {self.change.action} case {self.case_id} at {when}, "
                "after you opened it: nothing was changed; look at the case again")


def _locked(db: Any, case_id: int, actor: str | None, seen: int | None) -> Any:
    row = locked_case(db, case_id)
    if seen is not None and (change := change_after(db, case_id, seen, actor)) is not None:
        raise StaleCase(case_id, change)
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
            text: str | None = None, seen: int | None = None,
            template: str | None = None) -> Case:
    """Someone answered the author (by hand, where they wrote): the SLA is met. ``text``: what
    they wrote, kept in the history; ``template``: the id of the reply template it came from,
    so the won-back figures (``monitor.followup``) can tell which templates work. An answer
    given before the case was opened (the team was quicker than the monitor) is a first
    response at the opening: a time to respond is never negative."""
    detail = {key: value.strip() for key, value in (("text", text), ("template", template))
              if value and value.strip()}
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        state = next_state(case_id, row.state, "respond", row.assignee)
        update_case(db, case_id, now, state=state,
                    first_response_at=row.first_response_at or max(now, row.opened_at))
        record_event(db, case_id, now, actor, "responded", detail or None)
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
        if values := _dismissed_as(reason):
            record_labels(db, [p.post_id for p in case_post_scores(db, case_id)], values,
                          origin="dismiss", case_id=case_id, actor=actor, now=now)
        return reload_case(db, case_id, now)


def _dismissed_as(reason: str) -> dict[str, bool]:
    """The labels a dismissal's reason gives its posts (see the module's doc)."""
    said = reason.lower()
    if any(words in said for words in NOTHING_AT_ALL):
        return {"complaint": False, "anger": False}
    if any(words in said for words in NOT_A_COMPLAINT):
        return {"complaint": False}
    return {}


def confirm(store: Store, case_id: int, *, actor: str | None, now: datetime,
            seen: int | None = None) -> Case:
    """The team agrees: the case's posts are complaints (and angry where the scorer said
    so). Changes nothing but the history and the labels."""
    with store.transaction() as db:
        _locked(db, case_id, actor, seen)
        update_case(db, case_id, now)
        record_event(db, case_id, now, actor, "confirmed", None)
        for post in case_post_scores(db, case_id):
            record_labels(db, [post.post_id],
                          {"complaint": True, **({"anger": True} if post.angry else {})},
                          origin="confirm", case_id=case_id, actor=actor, now=now)
        return reload_case(db, case_id, now)


def set_severity(store: Store, case_id: int, severity: str, *, actor: str | None,
                 now: datetime, policy: QueuePolicy, seen: int | None = None) -> Case:
    """A person's severity for the case; an unanswered case's due time follows it (counted
    from when it opened)."""
    if severity not in SEVERITIES:
        raise CaseError(f"no severity {severity!r} (one of {', '.join(SEVERITIES)})")
    level = Severity(severity)
    with store.transaction() as db:
        row = _locked(db, case_id, actor, seen)
        before = Severity(row.severity)
        if level == before:
            return reload_case(db, case_id, now)
        # its priority follows, as filing computes it (the weight of the severity times the
        # reach and VIP factors, which stay): a case raised to critical ranks as one
        values: dict[str, Any] = {"severity": level.value, "priority": round(
            row.priority * 2 ** (level.rank - before.rank), 3)}
        if row.first_response_at is None and row.state in ("new", "assigned"):
            values["due_at"] = policy.sla.due(level.value, row.opened_at)
        update_case(db, case_id, now, **values)
        record_event(db, case_id, now, actor, "severity",
                     {"severity": level.value, "previous": before.value})
        if level > before or level == Severity.LOW:
            for post in case_post_scores(db, case_id):
                signals = (["anger"] if post.angry else []) + (
                    ["complaint"] if (post.complaint or 0) >= 0.5 or not post.angry else [])
                record_labels(db, [post.post_id], dict.fromkeys(signals, level > before),
                              origin="severity", case_id=case_id, actor=actor, now=now)
        return reload_case(db, case_id, now)


def flag_post(store: Store, url: str, values: dict[str, bool], *, actor: str | None,
              now: datetime) -> tuple[int, int | None]:
    """A person's verdict on the stored post at ``url`` (one the monitor missed, or got
    wrong): (post id, its case or None). Only labelled: a post the rules did not flag is not
    filed into the queue by this; ``monitor learn`` teaches the models to flag its like."""
    if not values:
        raise CaseError("say what the post is: --complaint/--no-complaint, --angry/--not-angry")
    with store.transaction() as db:
        found = post_by_url(db, url)
        if found is None:
            raise CaseError(f"no stored post at {url}")
        record_labels(db, [found.id], values, origin="flag", case_id=found.case_id,
                      actor=actor, now=now)
        return found.id, found.case_id


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
