"""Did our answer win them back? After a case is answered, the monitor follows its author (under
every name staff linked to them, ``monitor people link``) for ``followup.window`` (30 days by
default) and compares what they write after the reply with what the case held before it.

The rules (``decide``) take no SQL and no clock of their own, so tests drive them with
made-up posts; ``update`` applies them to the store's answered cases, and reopens a case whose
author turns angry again about the same thing within the window.

Thresholds are the lines the shipped rule packs draw, so "unhappy" here means what a flag
means there:

* an *unhappy* post after the reply: flagged (a happy category, praise, aside), angry, talking
  of leaving (churn >= 0.5), reporting a problem (complaint >= 0.5) or clearly negative
  (compound <= -0.5). One is enough: the reply did not settle it: **still unhappy**, decided
  at once. Churn talk followed by silence is still unhappy, not gone quiet: they told us.
* **won back**: posts after the reply, none unhappy, positive on average (mean compound >=
  0.05, VADER's own line) and clearly better than before: mean compound up by 0.3 or more
  (half the distance from "clearly negative" to neutral), or mean complaint down by 0.3 or
  more; a case whose posts were not unhappy to begin with (positive, no complaint) needs
  only to stay so. Decided as soon as it shows, looked at again until the window ends (a
  later unhappy post turns it into still unhappy).
* **gone quiet**: not a word from them by the window's end.
* **too early to say**: the window runs and neither shows yet; once it ends, posts that are
  neither unhappy nor clearly better make it still unhappy (they did not come round).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor import cases
from monitor.config import Config
from monitor.errors import MonitorError
from monitor.store import Store
from monitor.store.followup import Answered, Followed

log = logging.getLogger(__name__)

WON_BACK, STILL_UNHAPPY, GONE_QUIET, TOO_EARLY = (
    "won back", "still unhappy", "gone quiet", "too early to say")
OUTCOMES = (WON_BACK, STILL_UNHAPPY, GONE_QUIET, TOO_EARLY)

COMPLAINT = 0.5   # rules/complaint.yaml: at or above, the post reports a problem
CHURN = 0.5       # rules/churn.yaml: at or above, the writer talks of leaving
NEGATIVE = -0.5   # rules/unhappy.yaml: at or below, clearly negative
POSITIVE = 0.05   # VADER's line: at or above, positive
CLEARLY = 0.3     # a change of the mean compound or complaint that is more than noise
HAPPY_CATEGORIES = frozenset({"praise"})  # flags that are good news (rules/praise.yaml)


@dataclass(frozen=True, slots=True)
class Seen:
    """One post as the follow-up reads it: its scores, its flag's category (None: not
    flagged), and the thread it is in."""

    id: int
    published_at: datetime
    compound: float
    complaint: float
    churn: float
    angry: bool
    flagged: bool = False
    category: str | None = None
    thread: str = ""
    case_id: int | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Seen:
        """From a store row (``monitor.store.followup``)."""
        return cls(row["id"], row["published_at"], row["compound"], row["complaint"],
                   row["churn"], bool(row["angry"]), row["severity"] is not None,
                   row["category"], f"{row['source']}:{row['thread_id'] or row['external_id']}",
                   row["case_id"])


def unhappy(post: Seen) -> str | None:
    """Why a post says its writer is still unhappy, or None."""
    if post.flagged and post.category not in HAPPY_CATEGORIES:
        return f"flagged {post.category or 'unhappy'}"
    if post.churn >= CHURN:
        return "talks of leaving"
    if post.angry:
        return "angry"
    if post.complaint >= COMPLAINT:
        return "reports a problem"
    if post.compound <= NEGATIVE:
        return "clearly negative"
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str
    decided: bool                # final, or decided early (a decisive post)
    evidence: dict[str, Any]     # JSON: before/after figures, the posts that show it


def _figures(found: Sequence[Seen]) -> dict[str, Any]:
    return {"posts": len(found), "ids": [p.id for p in found],
            "compound": round(statistics.fmean(p.compound for p in found), 3) if found else None,
            "complaint": round(statistics.fmean(p.complaint for p in found), 3) if found
            else None}


def decide(before: Sequence[Seen], after: Sequence[Seen], *, responded_at: datetime,
           window_ends_at: datetime, now: datetime) -> Verdict:
    """The outcome of an answered case: ``before``, the case's posts up to the reply; ``after``,
    its author's posts since (only those in the window count)."""
    after = [p for p in after if responded_at < p.published_at <= window_ends_at]
    over = now >= window_ends_at
    then, since = _figures(before), _figures(after)
    evidence: dict[str, Any] = {"before": then, "after": since}
    bad = [(p, why) for p in after if (why := unhappy(p))]
    if bad:
        evidence.update(shown_by=[p.id for p, _ in bad],
                        why=[f"#{p.id}: {why}" for p, why in bad],
                        churn=[p.id for p in after if p.churn >= CHURN])
        return Verdict(STILL_UNHAPPY, True, evidence)
    if after and _better(then, since):
        evidence.update(shown_by=[p.id for p in after if p.compound >= POSITIVE],
                        why=[f"after the reply: mean compound {since['compound']:+.2f} "
                             f"(before {_plus(then['compound'])}), complaint "
                             f"{since['complaint']:.2f} (before {_plain(then['complaint'])})"])
        return Verdict(WON_BACK, True, evidence)
    if not over:
        return Verdict(TOO_EARLY, False, {**evidence, "shown_by": [], "why": []})
    if after:
        evidence.update(shown_by=[p.id for p in after],
                        why=["posted after the reply, but not clearly happier"])
        return Verdict(STILL_UNHAPPY, True, evidence)
    return Verdict(GONE_QUIET, True, {**evidence, "shown_by": [],
                                      "why": ["no post in the window after the reply"]})


def _better(then: Mapping[str, Any], since: Mapping[str, Any]) -> bool:
    """Whether the posts after the reply are positive and clearly better than before."""
    if since["compound"] < POSITIVE:
        return False
    if then["compound"] is None:  # nothing before the reply to compare with
        return True
    was_fine = then["compound"] >= POSITIVE and then["complaint"] < COMPLAINT
    # rounded to the means' own precision: 0.7 - 0.4 is 0.3, not 0.29999999999999993
    return (was_fine or round(since["compound"] - then["compound"], 3) >= CLEARLY
            or round(then["complaint"] - since["complaint"], 3) >= CLEARLY)


def _plus(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# --- auto-reopen -----------------------------------------------------------------------------

def angry_again(case_id: int, category: str | None, before: Sequence[Seen],
                after: Sequence[Seen], done: Iterable[int]) -> list[tuple[Seen, str]]:
    """The person's unhappy flagged posts after the reply about the same thing, not acted on
    yet (``done``): filed into this case, in a thread of the case's posts, or flagged with the
    case's category (a second complaint about billing is about billing again)."""
    threads = {p.thread for p in before}
    skip = set(done)
    found = []
    for post in after:
        if post.id in skip or not post.flagged or unhappy(post) is None:
            continue
        if post.case_id == case_id or post.thread in threads:
            found.append((post, "in the same thread"))
        elif category is not None and post.category == category:
            found.append((post, f"about {category} again"))
    return found


# --- applying it -----------------------------------------------------------------------------

def update(store: Store, config: Config, now: datetime) -> list[str]:
    """Look again at every answered case whose outcome is not final; save what changed, and
    reopen (with a note) a closed case whose author is angry again about the same thing.
    Returns a line per change. One case that cannot be done (reopened by someone meanwhile)
    is logged and left for the next look, not the end of the others."""
    window = timedelta(seconds=config.main.followup.window)
    changed: list[str] = []
    for item in store.followups_due():
        try:
            changed += _follow(store, config, item, item.responded_at + window, now)
        except MonitorError as error:
            log.warning("follow-up of case %d: %s", item.case_id, error)
    return changed


def _follow(store: Store, config: Config, item: Followed, ends: datetime,
            now: datetime) -> list[str]:
    before = [Seen.of(r) for r in store.case_posts_until(item.case_id, item.responded_at)]
    after = [Seen.of(r) for r in store.posts_of_person(item.source, item.author,
                                                       item.responded_at, ends)]
    verdict = decide(before, after, responded_at=item.responded_at, window_ends_at=ends,
                     now=now)
    fresh = item.followed_since != item.responded_at  # never looked at, or answered again
    acted = [] if fresh else list((item.evidence or {}).get("reopened_for", []))
    changed = []
    for post, why in angry_again(item.case_id, item.category, before, after, acted):
        changed.append(_reopen(store, config, item, post, why, now))
        acted.append(post.id)
    launch = (item.evidence or {}).get("launch") if not fresh else _launch(store, config, item)
    verdict.evidence.update(reopened_for=acted, by=item.responder, template=item.template,
                            launch=launch, person=item.author)
    kept = not fresh and verdict.outcome == item.outcome and item.decided_at is not None
    store.save_outcome(item.case_id, verdict.outcome, responded_at=item.responded_at,
                       window_ends_at=ends, evidence=verdict.evidence, now=now,
                       decided_at=item.decided_at if kept else now if verdict.decided else None)
    if fresh or verdict.outcome != item.outcome:
        changed.append(f"case {item.case_id}: {verdict.outcome}")
    return changed


def _reopen(store: Store, config: Config, item: Followed, post: Seen, why: str,
            now: datetime) -> str:
    """Reopen a closed case (an open one only gets the note): its author wrote ``post``.
    Returns the line saying so."""
    state = store.get_case(item.case_id, now).case.state
    closed = state in ("resolved", "dismissed")
    if closed:
        cases.reopen(store, item.case_id, actor=None, now=now, policy=config.policy)
    cases.note(store, item.case_id,
               f"{item.author} is unhappy again {why} after our reply: post #{post.id} "
               f"({unhappy(post)}); {'reopened' if closed else 'the case is still open'}, "
               "by the follow-up", actor=None, now=now)
    return f"case {item.case_id}: {'reopened' if closed else 'noted'} (post #{post.id})"


def _launch(store: Store, config: Config, item: Followed) -> str | None:
    """The latest launch a case is about (``WatchedEvent.about_case``)."""
    if not config.main.events:
        return None
    from monitor.backlash.events import watched

    detail = None
    for event in sorted(watched(config.main.events, config.timezone, config.sources),
                        key=lambda e: e.launch, reverse=True):
        start, end = event.case_span
        if not start <= item.opened_at <= end:  # the case's posts read only when it may be
            continue
        detail = detail or store.get_case(item.case_id, item.opened_at)
        if event.about_case(item.opened_at, detail.posts):
            return event.name
    return None


# --- figures ---------------------------------------------------------------------------------

GROUPS = ("person", "severity", "template", "launch")
"""What the won-back figures are grouped by: who recorded the first answer, the case's
severity, the reply template used, the launch the case is about."""


@dataclass(frozen=True, slots=True)
class Figures:
    """One group's answered cases by outcome; ``rate``: won back of those decided (None:
    none decided); median seconds to the first response and to resolution."""

    key: str
    answered: int
    won_back: int
    still_unhappy: int
    gone_quiet: int
    too_early: int
    rate: float | None
    first_response_median: float | None
    resolution_median: float | None


def last_week(store: Store, now: datetime) -> tuple[Answered, dict[str, list[Figures]]]:
    """The cases first answered in the 7 days to ``now``: the headline and its tables, from
    one read, so that every table's rows add up to the headline."""
    rows = store.answered_cases(now - timedelta(days=7), now)
    return Answered.of(rows), figures(rows)


def figures(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Figures]]:
    """The won-back figures per group (``GROUPS``) from the store's ``answered_cases``. A case
    not followed yet is too early to say, filed under its first answer's template; one that
    is, under the template of the answer its outcome follows."""
    rows = list(rows)
    keyed = {"person": lambda r: r["responder"],
             "severity": lambda r: r["severity"],
             "template": lambda r: (r["evidence"] or r["reply"] or {}).get("template"),
             "launch": lambda r: (r["evidence"] or {}).get("launch")}
    found: dict[str, list[Figures]] = {}
    for group in GROUPS:
        buckets: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            buckets.setdefault(keyed[group](row) or "-", []).append(row)
        found[group] = [_bucket(key, mine) for key, mine in sorted(buckets.items())]
    return found


def _bucket(key: str, rows: Sequence[Mapping[str, Any]]) -> Figures:
    count = {o: sum((r["outcome"] or TOO_EARLY) == o for r in rows) for o in OUTCOMES}
    decided = count[WON_BACK] + count[STILL_UNHAPPY] + count[GONE_QUIET]
    first = [(r["first_response_at"] - r["opened_at"]).total_seconds() for r in rows
             if r["first_response_at"]]
    done = [(r["resolved_at"] - r["opened_at"]).total_seconds() for r in rows
            if r["state"] == "resolved" and r["resolved_at"]]
    return Figures(key, len(rows), count[WON_BACK], count[STILL_UNHAPPY], count[GONE_QUIET],
                   count[TOO_EARLY], round(count[WON_BACK] / decided, 3) if decided else None,
                   statistics.median(first) if first else None,
                   statistics.median(done) if done else None)


def answered_line(answered: Answered, when: str = "last week") -> str:
    """The digest's line: "answered last week: 30; won back 12, still unhappy 5, quiet 13"
    (and how many it is too early to say for, when any)."""
    line = (f"answered {when}: {answered.answered}; won back {answered.won_back}, still "
            f"unhappy {answered.still_unhappy}, quiet {answered.gone_quiet}")
    return line + (f", too early {answered.too_early}" if answered.too_early else "")
