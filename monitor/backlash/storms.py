"""Backlash storms: a burst of negative posts about a launch becomes a flag of its own.

Each pass counts, per hour, the negative posts that talk about each watched launch (config
``events``) and looks for a spike against the hours before (``spikes.py``). A spike is
stored as one post of the source ``event:<name>`` (its id is the hour the spike began, so a
storm that goes on for hours is one post, updated with its figures) and flagged ``critical``,
so the router sends it like any other flag: a lead hears of a storm when it starts, not the
next morning. The current hour counts as it is so far: a partial count only grows, so an
hour already over the line is a storm now.

While a storm's case is open (and the storm grew within ``STORM_HOLD``), flags on posts about
the same launch are still filed in the queue but their notices are held back (inhibited,
Alertmanager's word), folded into the storm instead of paging people one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from statistics import fmean
from typing import Any

from monitor import outbox
from monitor.backlash import spikes
from monitor.backlash.events import NEGATIVE, WatchedEvent
from monitor.backlash.spikes import HOURLY, Spike
from monitor.model import Fetch, Flag, Post, Score
from monitor.quoting import quote
from monitor.runtime import Runtime
from monitor.store import Store

log = logging.getLogger(__name__)


CHURN = 0.5
"""A post whose churn signal reaches this talks of leaving (see README, Scoring)."""

RECENT = timedelta(hours=24)
"""A spike that ended longer ago is history (a monitor just installed does not page for it)."""

HISTORY = timedelta(hours=HOURLY.window) + timedelta(days=5)
"""The hours counted before the current one: a baseline's week, plus five days so that a storm
lasting up to that long is judged from the same history on every pass, and keeps its start
(its id) instead of paging again as a "new" storm."""

STORM_HOLD = 6 * 3600.0
"""Seconds after a storm last grew during which its launch's notices stay folded into it."""


@dataclass(frozen=True)
class Storm:
    event: WatchedEvent
    spike: Spike
    members: list[dict[str, Any]]  # the negative posts of the spike, worst first


def negative_mentions(rows: Sequence[Mapping[str, Any]],
                      event: WatchedEvent) -> list[Mapping[str, Any]]:
    """The rows that talk about ``event`` and read as negative (English only: VADER's
    numbers mean nothing for other languages)."""
    return [r for r in rows if r["compound"] is not None and r["compound"] <= NEGATIVE
            and r["language"] in (None, "en")
            and event.mentions(r["source"], r["title"], r["text"])]


def detect(event: WatchedEvent, rows: Sequence[Mapping[str, Any]],
           now: datetime) -> list[Storm]:
    """The spikes of negative posts about ``event`` that ended within ``RECENT`` of ``now``,
    each author counted once an hour (a flame war of two people is not a storm)."""
    negative = negative_mentions(rows, event)
    hour = now.replace(minute=0, second=0, microsecond=0)
    found = []
    voices = [r["author"] or r["url"] for r in negative]  # one person's ten replies: one
    counts = spikes.counts_per_period([r["published_at"] for r in negative], "h",
                                      hour - HISTORY, hour + timedelta(hours=1), keys=voices)
    for spike in HOURLY.find(counts):
        if spike.end < now - RECENT:
            continue
        members = [r for r in negative if spike.start <= r["published_at"] < spike.end]
        members.sort(key=lambda r: (r["compound"], -(r["reach"] or 0)))
        found.append(Storm(event, spike, members))
    return found


def storm_post(storm: Storm, zone: tzinfo | None = None) -> Post:
    """The storm as a post: the same id (its UTC hour) for as long as the storm goes on; its
    text (and so its version) changes as it grows, and says its times in ``zone``."""
    event, spike, worst = storm.event, storm.spike, storm.members[0]
    text = (f"{spike.describe(f'negative posts about {event.name}', zone)}. "
            f"Worst: \u201c{quote(worst['text'], 200)}\u201d")
    return Post(source=event.storm_source, external_id=f"storm:{spike.start:%Y-%m-%dT%H}",
                url=worst["url"], author=None, title=f"Backlash storm: {event.name}",
                text=text, published_at=spike.start, thread_id=f"storm:{event.name}",
                reach=spike.total)


def storm_flag(storm: Storm, zone: tzinfo | None = None) -> tuple[Score, Flag]:
    """The storm's mean score and its critical flag; its reason says its times in ``zone``."""
    members = storm.members
    angry = sum(bool(r["angry"]) for r in members)
    leaving = sum((r["churn"] or 0) >= CHURN for r in members)
    score = Score(fmean(r["compound"] for r in members), fmean(r["pos"] or 0 for r in members),
                  fmean(r["neu"] or 0 for r in members), fmean(r["neg"] or 0 for r in members),
                  angry=angry > len(members) / 2, language="en")
    reasons = (storm.spike.describe(f"negative posts about {storm.event.name}", zone),
               f"{angry} of {len(members)} angry, {leaving} talk of leaving")
    return score, Flag("critical", ("storm",), reasons, "backlash",
                       ("storm", storm.event.storm_source))


def file_storms(store: Store, runtime: Runtime, now: datetime) -> int:
    """Detect storms for every launch being watched now and file each as a flag (routed,
    queued, notified once); returns how many storms are going on."""
    going, zone = 0, runtime.config.timezone
    muted = [s["matchers"] for s in store.silences(now)]
    for event in runtime.events:
        start, end = event.window
        if not start <= now <= end:
            continue
        rows = store.event_candidates(now - HISTORY - timedelta(hours=1),
                                      now + timedelta(minutes=1), event.keywords)
        for storm in detect(event, rows, now):
            going += 1
            post = storm_post(storm, zone)
            store.save_fetch(post.source, "storm", Fetch((post,), None), now)
            stored = store.stored_post(post.source, post.external_id)
            assert stored is not None  # just saved
            score, flag = storm_flag(storm, zone)
            routing = runtime.route(post, score, flag, muted)
            with store.transaction() as db:  # its score, flag, case and outbox rows at once
                newly = outbox.record(db, [(stored, score, flag)], now, {stored.id: routing},
                                      runtime.config.policy)
            if newly:
                log.warning("backlash storm about %s: %s", event.name,
                            storm.spike.describe(zone=zone))
            case_id = store.open_storms(now, STORM_HOLD).get(event.storm_source)
            if case_id is not None:  # the first wave's notices, held back until now: folded
                store.fold_into_storm([r["id"] for r in storm.members], case_id)
    return going
