"""The outreach queue's rules, without SQL: who gets a case, how urgent it is, what may happen
to it next, and which reply templates fit. ``monitor.store.casework`` applies them to rows.

Every function that depends on the time takes ``now``, so tests drive the clock.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError, MonitorError
from monitor.model import SEVERITIES, STORM_SOURCE, Severity, is_storm_source
from monitor.quoting import one_line
from monitor.units import Span
from monitor.yamlfile import read_yaml

STATES = ("new", "assigned", "responded", "resolved", "dismissed")
OPEN_STATES = ("new", "assigned", "responded")
CLOSED_STATES = ("resolved", "dismissed")


class CaseError(MonitorError):
    """A queue command that cannot be done (unknown case or person, illegal transition)."""


# --- config: what the lead puts in config.yaml ---------------------------------------------

class TeamMember(BaseModel):
    """One person who answers cases: ``{name: ana, skills: [billing, backlash], away: false}``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    skills: list[str] = []
    away: bool = False


def _unique_names(team: list[TeamMember]) -> list[TeamMember]:
    names = [m.name for m in team]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"team member named twice: {', '.join(doubled)}")
    return team


Team = Annotated[list[TeamMember], AfterValidator(_unique_names)]


class SlaTimes(BaseModel):
    """How soon each severity should get its first response (``2h``, ``1d``...)."""

    model_config = ConfigDict(extra="forbid")
    critical: Span = 2 * 3600.0
    high: Span = 8 * 3600.0
    medium: Span = 86400.0
    low: Span = 3 * 86400.0

    def due(self, severity: str, start: datetime) -> datetime:
        return start + timedelta(seconds=getattr(self, severity))


Assignment = Literal["round-robin", "skills", "none"]


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: Team = []
    sla: SlaTimes = SlaTimes()
    assignment: Assignment | None = None


@dataclass(frozen=True)
class QueuePolicy:
    """The team, the SLA and how new cases are assigned; ``none`` leaves them all ``new``."""

    team: tuple[TeamMember, ...] = ()
    sla: SlaTimes = field(default_factory=SlaTimes)
    assignment: Assignment = "none"

    @classmethod
    def of(cls, team: Any = None, sla: Any = None, assignment: str | None = None,
           file: str = "config.yaml") -> QueuePolicy:
        """From config values (raw or validated). Assignment defaults to round-robin when a
        team is configured, else none."""
        raw = {"team": [m.model_dump() if isinstance(m, BaseModel) else m for m in team or []],
               "sla": sla.model_dump() if isinstance(sla, BaseModel) else (sla or {}),
               "assignment": assignment}
        try:
            model = _PolicyModel.model_validate(raw)
        except ValidationError as error:
            raise ConfigError.combine([ConfigError(
                str(e["msg"]).removeprefix("Value error, "), file,
                ".".join(str(p) for p in e["loc"])) for e in error.errors()]) from None
        chosen = model.assignment or ("round-robin" if model.team else "none")
        return cls(tuple(model.team), model.sla, chosen)

    def member(self, name: str) -> TeamMember | None:
        return next((m for m in self.team if m.name == name), None)

    def check_person(self, name: str) -> None:
        """Only team members get cases (anyone does when no team is configured)."""
        if self.team and self.member(name) is None:
            names = ", ".join(m.name for m in self.team)
            raise CaseError(f"{name!r} is not on the team ({names})")


def is_away(policy: QueuePolicy, name: str, overrides: Mapping[str, bool]) -> bool:
    """``monitor queue away/back`` (``overrides``) wins over the config's ``away``."""
    if name in overrides:
        return overrides[name]
    member = policy.member(name)
    return bool(member and member.away)


def choose_assignee(policy: QueuePolicy, category: str | None, away: Mapping[str, bool],
                    last_turn: Mapping[str, int]) -> str | None:
    """Who gets a new case: the present candidate whose last automatic assignment is the
    oldest (never assigned first, then team order). That is round-robin, stays fair when the
    team changes, and someone back from leave gets the next case, not a backlog."""
    if policy.assignment == "none":
        return None
    present = [m for m in policy.team if not is_away(policy, m.name, away)]
    if policy.assignment == "skills" and category:
        skilled = [m for m in present if category in m.skills]
        present = skilled or present
    if not present:
        return None
    order = {m.name: i for i, m in enumerate(policy.team)}
    return min(present, key=lambda m: (last_turn.get(m.name, -1), order[m.name])).name


# --- urgency ---------------------------------------------------------------------------------

def priority(severity: str, reach: int | None, vip: bool) -> float:
    """``weight(severity) * (1 + log10(1 + reach)) * (2 if vip else 1)``, weights critical 8,
    high 4, medium 2, low 1: one critical post outranks a high one seen by ~10x as many."""
    spread = 1.0 + math.log10(1 + max(reach or 0, 0))
    return round(2 ** Severity(severity).rank * spread * (2.0 if vip else 1.0), 3)


def higher(a: str, b: str) -> str:
    return Severity.highest((a, b)).value


def is_overdue(state: str, due_at: datetime | None, first_response_at: datetime | None,
               now: datetime) -> bool:
    """Overdue: still open, past its due time, and nobody has answered yet. Once someone
    responded the SLA is met, however long resolving takes."""
    return (state in OPEN_STATES and due_at is not None and first_response_at is None
            and now > due_at)


# --- the state machine -----------------------------------------------------------------------

_ALLOWED = {"assign": OPEN_STATES, "claim": OPEN_STATES, "respond": ("new", "assigned"),
            "resolve": OPEN_STATES, "dismiss": OPEN_STATES, "reopen": CLOSED_STATES}
_DOING = {"assign": "assigning it", "claim": "claiming it", "respond": "responding",
          "resolve": "resolving it", "dismiss": "dismissing it"}


def next_state(case_id: int, state: str, action: str, assignee: str | None) -> str:
    """The state after ``action``, or CaseError saying why not (and what to do instead)."""
    if state not in _ALLOWED[action]:
        if action == "reopen":
            raise CaseError(f"case {case_id} is {state}, still open: nothing to reopen")
        if state in CLOSED_STATES:
            raise CaseError(f"case {case_id} is {state}: reopen it before {_DOING[action]}")
        raise CaseError(f"case {case_id} is already responded: resolve it when done")
    if action in ("assign", "claim"):
        return "responded" if state == "responded" else "assigned"
    if action == "reopen":
        return "assigned" if assignee else "new"
    return {"respond": "responded", "resolve": "resolved", "dismiss": "dismissed"}[action]


# --- what the store hands back ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Case:
    """One case as listed: its state and urgency, shown by its headline post (the most
    severe, the latest of equals: what made it urgent, not whatever opened it) under its
    thread's title."""

    id: int
    state: str
    severity: str
    category: str | None
    priority: float
    assignee: str | None
    group_key: str | None
    opened_at: datetime
    updated_at: datetime
    due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    reason: str | None
    overdue: bool
    posts: int
    source: str                  # the headline post's
    author: str | None
    title: str | None            # the thread's (see thread_title)
    url: str
    post_id: int
    text: str

    @property
    def storm(self) -> bool:
        """A backlash storm's case: one public voice answers it, not a reply per person."""
        return is_storm_source(self.source)

    @property
    def event(self) -> str | None:
        """The launch a storm case is about."""
        return self.source.removeprefix(STORM_SOURCE) if self.storm else None


_COMMENTED = "Comment on "


def thread_title(title: str | None, author: str | None, own: str | None = None) -> str | None:
    """The title of the thread a post is in: its thread's own post's title when that is
    stored; else the post's own, except that WordPress comment feeds title each comment
    "Comment on <post> by <commenter>": that names the post once the commenter is taken off,
    and only when the commenter is the comment's author (so "Stand by me" stays whole)."""
    if own:
        return own
    if not title or not title.startswith(_COMMENTED):
        return title
    rest = title.removeprefix(_COMMENTED)
    if author:
        by = f" by {author}"
        return rest.removesuffix(by) if rest.endswith(by) and len(rest) > len(by) else title
    return rest.rpartition(" by ")[0] or title


@dataclass(frozen=True, slots=True)
class CaseDetail:
    """A case with its posts (with flags and scores), history and notes."""

    case: Case
    posts: tuple[dict[str, Any], ...]
    events: tuple[dict[str, Any], ...]

    @property
    def notes(self) -> tuple[dict[str, Any], ...]:
        return tuple(e for e in self.events if e["action"] == "note")


# --- reply guidance --------------------------------------------------------------------------

PLACEHOLDERS = ("author", "thread", "source", "event")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


class Reply(BaseModel):
    """A reply template (``rules/replies.yaml``); nothing is ever posted automatically."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    category: str | None = None
    categories: list[str] = []
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)

    def fits(self, category: str | None) -> bool:
        return (category or "default") in ({self.category} | set(self.categories))


def load_replies(path: Path, shown: str | None = None) -> tuple[Reply, ...]:
    """The templates in ``path``; any mistake is a ConfigError naming the file and key."""
    shown = shown or str(path)
    entries = read_yaml(path, shown).get("replies")
    if not isinstance(entries, list):
        raise ConfigError("must hold a list of reply templates", shown, "replies")
    replies, problems, seen = [], [], set()
    for i, entry in enumerate(entries):
        key = f"replies[{i}]"
        try:
            reply = Reply.model_validate(entry)
        except ValidationError as error:
            problems += [ConfigError(e["msg"], shown, ".".join([key, *map(str, e["loc"])]))
                         for e in error.errors()]
            continue
        unknown = [n for n in _PLACEHOLDER.findall(reply.text) if n not in PLACEHOLDERS]
        if unknown:
            problems.append(ConfigError(f"unknown placeholder {{{unknown[0]}}} (use "
                                        f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
                                        shown, f"{key}.text"))
        if not (reply.category or reply.categories):
            problems.append(ConfigError("needs a category or categories", shown, key))
        if reply.id in seen:
            problems.append(ConfigError(f"duplicate reply id {reply.id!r}", shown, f"{key}.id"))
        seen.add(reply.id)
        replies.append(reply)
    if problems:
        raise ConfigError.combine(problems)
    return tuple(replies)


def replies_for(detail: CaseDetail, replies: Sequence[Reply],
                event: str | None = None) -> list[dict[str, str]]:
    """The templates that fit the case's category (else the default ones), filled in. A
    storm's case takes the ``storm`` ones: a crowd gets one public statement, not "Hi" to
    nobody. {event} is a storm's own launch, else ``event`` (the launch the case is about:
    ``case_launches``), else "the latest update": never a launch the case is not about."""
    case = detail.case
    fitting = [r for r in replies if r.fits("storm" if case.storm else case.category)] or \
        [r for r in replies if r.fits(None)]
    values = {"author": one_line(case.author or "") or "there",  # a name's newline would
              "thread": one_line(case.title or "") or "your post",  # break the greeting
              "source": case.source or "there",
              "event": case.event or event or "the latest update"}
    return [{"id": r.id, "title": r.title,
             "text": _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), r.text)}
            for r in fitting]


# --- stats -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeverityStats:
    """Per severity: open and overdue counts, and first-response and resolution times in
    seconds (median and 90th percentile; None when no case got that far)."""

    severity: str
    open: int
    overdue: int
    first_response_median: float | None
    first_response_p90: float | None
    resolution_median: float | None
    resolution_p90: float | None


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value at least 90% of the values do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def queue_stats(rows: Iterable[Mapping[str, Any]], now: datetime) -> list[SeverityStats]:
    """Stats from case rows (state, severity, opened_at, due_at, first_response_at,
    resolved_at), worst severity first."""
    found: list[SeverityStats] = []
    rows = list(rows)
    for severity in reversed(SEVERITIES):
        mine = [r for r in rows if r["severity"] == severity]
        first = [(r["first_response_at"] - r["opened_at"]).total_seconds()
                 for r in mine if r["first_response_at"]]
        done = [(r["resolved_at"] - r["opened_at"]).total_seconds()
                for r in mine if r["state"] == "resolved" and r["resolved_at"]]
        found.append(SeverityStats(
            severity, sum(r["state"] in OPEN_STATES for r in mine),
            sum(is_overdue(r["state"], r["due_at"], r["first_response_at"], now) for r in mine),
            statistics.median(first) if first else None, p90(first),
            statistics.median(done) if done else None, p90(done)))
    return found


LIST_PAGE = 50
"""Cases a page of ``monitor queue list`` shows by default: a screenful to act on, not the
whole queue (a table of 15,000 cases took 10 s to lay out, and nobody reads it)."""


@dataclass(frozen=True, slots=True)
class Page:
    """Which page of a listing is shown: ``number`` (from 1) of ``size`` cases, of ``total``."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def footer(self) -> str:
        """``page 1 of 317 (15,812 cases; --page 2 for more)``: where you are, and how on."""
        more = f"; --page {self.number + 1} for more" if self.number < self.pages else ""
        noun = "case" if self.total == 1 else "cases"
        return f"page {self.number} of {self.pages} ({self.total:,} {noun}{more})"
