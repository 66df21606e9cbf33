"""The monitor alerts about itself: a source that keeps failing (and again when it recovers),
a notification that died, and a gap with no pass at all (a stalled daemon, a dead cron line).

An alert is stored as a post of the source ``ALERTS`` with a flag of the category ``system``,
so it goes through the same route tree, grouping, silences and outbox as any flag (always to
config ``alerts.receivers``, the admins'), but never into the outreach queue: it is for
whoever runs the monitor, not for the team answering users. Its id names one episode (a
source's run of failures, one dead notification, one gap), so each is told once, whichever
pass or daemon sees it first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from monitor import logs, outbox
from monitor.config import Config
from monitor.model import SYSTEM_SOURCE, Fetch, Flag, Post, Score
from monitor.runtime import Runtime
from monitor.store import Store

log = logging.getLogger(__name__)

SYSTEM = "system"
"""The category of an alert's flag, and the kind its source reads as in routes."""

ALERTS = SYSTEM_SOURCE + "monitor"
"""The source every alert is stored under."""

STATUS_URL = "monitor:status"
"""An alert's link: where to look next (``monitor status``)."""


@dataclass(frozen=True)
class Alarm:
    """One thing the admins should hear about, once."""

    key: str           # the episode: the stored post's id, so it is filed once
    about: str         # its thread: alerts about one source or receiver group together
    severity: str
    kind: str          # source-broken, source-recovered, delivery-dead, stalled
    title: str
    text: str

    def post(self, now: datetime) -> Post:
        return Post(source=ALERTS, external_id=self.key, url=STATUS_URL, author=None,
                    title=self.title, text=self.text, published_at=now, thread_id=self.about)

    def flag(self) -> tuple[Score, Flag]:
        return (Score(0.0, 0.0, 1.0, 0.0),
                Flag(self.severity, (self.kind,), (self.text,), SYSTEM, (SYSTEM, self.kind)))


def source_alarms(rows: Iterable[Mapping[str, Any]], known: set[str],
                  after_failures: int, zone: tzinfo = UTC) -> list[Alarm]:
    """A source failing ``after_failures`` times in a row is broken (once per run of
    failures: its last success names the run); one that was said to be broken and works
    again has recovered. Times are told in ``zone``, the configured one."""
    found = []
    for row in rows:
        name, failures = row["name"], row["failures"] or 0
        episode = row["last_success_at"].isoformat() if row["last_success_at"] else "never"
        if failures >= after_failures:
            key = f"source-broken:{name}:{episode}"
            if key not in known:
                error = logs.mask(str(row["last_error"] or "unknown error"))
                found.append(Alarm(key, f"source:{name}", "high", "source-broken",
                                   f"Source broken: {name}",
                                   f"{name} ({row['kind']}) failed {failures} times in a row "
                                   f"(last success: {_when(row['last_success_at'], zone)}): "
                                   f"{error}"))
        elif failures == 0:
            for broken in sorted(k for k in known if k.startswith(f"source-broken:{name}:")):
                key = broken.replace("source-broken:", "source-recovered:", 1)
                if key not in known:
                    found.append(Alarm(key, f"source:{name}", "low", "source-recovered",
                                       f"Source recovered: {name}",
                                       f"{name} ({row['kind']}) works again (last success: "
                                       f"{_when(row['last_success_at'], zone)})."))
    return found


def delivery_alarms(batches: Iterable[Mapping[str, Any]], known: set[str]) -> list[Alarm]:
    """One alarm per notification that died (a receiver's outage pages once per pass: the
    alarms share the receiver's thread, so they are grouped into one notice)."""
    found = []
    for batch in batches:
        key = f"delivery-dead:{batch['batch_key']}"
        if key in known:
            continue
        receiver = batch["receiver"]
        found.append(Alarm(
            key, f"receiver:{receiver}", "high", "delivery-dead",
            f"Notification dead: {receiver}",
            f"{receiver} could not deliver a notification of {batch['posts']} flagged "
            f"post(s) ({batch['group_key']}) after {batch['attempts']} "
            f"attempt{'' if batch['attempts'] == 1 else 's'}: "
            f"{logs.mask(str(batch['last_error'] or 'unknown error'))}. Fix the receiver, "
            f"then: monitor deliveries retry --receiver {receiver}"))
    return found


def stall_alarm(last_pass: datetime | None, now: datetime, limit: float,
                known: set[str], zone: tzinfo = UTC) -> Alarm | None:
    """No pass ended for longer than ``limit`` seconds: the daemon stalled or was down, or the
    cron line stopped. Told once per gap (named by the last pass before it)."""
    if last_pass is None or (now - last_pass).total_seconds() <= limit:
        return None
    key = f"stalled:{last_pass.isoformat()}"
    if key in known:
        return None
    return Alarm(key, "passes", "critical", "stalled", "Monitor stalled: no pass",
                 f"No pass ended between {_when(last_pass, zone)} and {_when(now, zone)} "
                 f"({_span(now - last_pass)}, more than {_span(timedelta(seconds=limit))}): "
                 "the daemon stalled or was down, or its cron line stopped running.")


def stall_limit(config: Config) -> float:
    """Config ``alerts.stalled_after``, else twice the shortest source interval."""
    if config.main.alerts.stalled_after:
        return config.main.alerts.stalled_after
    return 2 * min([s.interval for s in config.sources] or [config.main.interval])


def unfinished_pass(store: Store, config: Config, last_pass: datetime | None,
                    now: datetime) -> tuple[datetime, bool] | None:
    """The latest pass that has not ended since ``last_pass``: when it started, and whether
    it may still be going (``passlock.may_be_running``); None when there is none. One that
    cannot be going was killed, or its store failed: ``monitor status`` exits 1 for it."""
    from monitor.store.passlock import may_be_running

    found = store.unended_pass_since(last_pass)
    if found is None:
        return None
    started, owner = found
    return started, may_be_running(store.engine, started, owner, now,
                                   config.main.http.pass_deadline + 60)


def raise_alarms(store: Store, runtime: Runtime, now: datetime, *,
                 sources: Sequence[str] | None = None, deliveries: bool = True,
                 last_pass: datetime | None = None) -> int:
    """Look for every kind of trouble (the ``sources`` named, or all; dead notifications;
    a gap before ``last_pass``... now) and file what is new; returns how many alarms."""
    configured = {s.name for s in runtime.config.sources}
    rows = [] if sources is not None and not sources else \
        [r for r in store.source_health(sources) if r["name"] in configured]
    batches = store.dead_batches() if deliveries else []
    limit = stall_limit(runtime.config)
    gap = last_pass is not None and (now - last_pass).total_seconds() > limit
    if not (rows or batches or gap):  # the daemon asks every few seconds: mostly this
        return 0
    known = store.alert_keys(ALERTS)
    zone = runtime.config.timezone
    found = source_alarms(rows, known, runtime.config.main.alerts.after_failures, zone)
    found += delivery_alarms(batches, known)
    stalled = stall_alarm(last_pass, now, limit, known, zone)
    if stalled is not None:
        found.append(stalled)
    return file_alarms(store, runtime, found, now)


def file_alarms(store: Store, runtime: Runtime, alarms: Sequence[Alarm], now: datetime) -> int:
    """Store each alarm as a post and file its flag: routed, muted by silences, sent through
    the outbox once; returns how many were new."""
    if not alarms:
        return 0
    store.save_fetch(ALERTS, SYSTEM, Fetch(tuple(a.post(now) for a in alarms), None), now)
    muted = [s["matchers"] for s in store.silences(now)]
    filed = 0
    for alarm in alarms:
        stored = store.stored_post(ALERTS, alarm.key)
        assert stored is not None  # just saved
        score, flag = alarm.flag()
        routing = runtime.route(stored.post, score, flag, muted)
        with store.transaction() as db:  # its flag and outbox rows at once
            filed += len(outbox.record(db, [(stored, score, flag)], now, {stored.id: routing},
                                       runtime.config.policy))
        level = logging.INFO if alarm.kind == "source-recovered" else logging.ERROR
        log.log(level, "%s: %s", alarm.title, alarm.text, extra={"alert": alarm.kind})
    return filed


def _when(moment: datetime | None, zone: tzinfo) -> str:
    """``moment`` as the people the alert goes to read times: in the configured zone, named."""
    if moment is None:
        return "never"
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {getattr(zone, 'key', None) or local.tzname()}"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"
