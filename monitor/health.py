"""Is a source ok, quiet or broken? Two different troubles that need different answers.

*Broken*: its last collection failed (an error, or a page that no longer parses): someone
must fix the source. *Quiet*: it works but has brought nothing new for longer than its
``quiet_after``: perhaps fine, perhaps a feed that moved; worth a look, not an alarm.

A failing source *backs off*: its next attempt waits its interval doubled per failure in a row
(at most ``MAX_BACKOFF``, or its interval if longer), and returns to its interval by itself
after the first success.

When it is tried next is said from the time it is asked (``assess``'s ``now``): "in 4 minutes",
"now" while a run of the schedule may still take it, or "overdue by 2 hours" when none has for
longer than that (is the daemon, or the cron line, running?).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.config import Source

MAX_BACKOFF = 6 * 3600.0
# A source due waits for the next run of its schedule (up to an interval), its jitter and its
# fetch: only later than that is it overdue.
LATE = 120.0


@dataclass(frozen=True)
class Health:
    name: str
    kind: str
    state: str                      # ok | quiet | broken | never run
    detail: str
    last_success_at: datetime | None
    last_new_at: datetime | None
    failures: int
    next_at: datetime | None = None     # when it is due again (None: never tried, due now)
    next_try: str = "now"               # next_at said from assess's now: "in 4 minutes" ...
    overdue: bool = False               # due, and not tried for longer than its schedule allows


def assess(configured: Iterable[Source], rows: Iterable[Mapping[str, Any]],
           now: datetime) -> list[Health]:
    """The health of each configured source, from the store's ``sources`` rows."""
    by_name = {row["name"]: row for row in rows}
    found = []
    for source in configured:
        row = by_name.get(source.name)
        if row is None:
            found.append(Health(source.name, source.kind, "never run", "not collected yet",
                                None, None, 0))
            continue
        state, detail = _state(row, source.quiet_after, now)
        wait = retry_interval(source.interval, row["failures"])
        next_at = row["last_attempt_at"] + timedelta(seconds=wait) \
            if row["last_attempt_at"] else None
        next_try, overdue = _next_try(next_at, now, source.interval)
        if row["failures"]:
            detail += f"; backing off: next try {next_try}"
        found.append(Health(source.name, source.kind, state, detail, row["last_success_at"],
                            row["last_new_at"], row["failures"], next_at, next_try, overdue))
    return found


def retry_interval(interval: float, failures: int) -> float:
    """Seconds from one attempt to the next: the interval, doubled per failure in a row."""
    if not failures:
        return interval
    return min(interval * 2 ** min(failures, 30), max(interval, MAX_BACKOFF))


def _state(row: Mapping[str, Any], quiet_after: float, now: datetime) -> tuple[str, str]:
    if row["failures"]:
        times = f"{row['failures']} time{'s' * (row['failures'] > 1)} in a row"
        return "broken", f"failed {times}: {row['last_error']}"
    if row["last_new_at"] is None:
        return "quiet", "has brought no posts yet"
    since = row["last_new_at"]
    if (now - since).total_seconds() > quiet_after:
        return "quiet", f"nothing new for {_age(now - since)}"
    return "ok", ""


def _next_try(next_at: datetime | None, now: datetime, interval: float) -> tuple[str, bool]:
    """``next_at`` said from ``now``, not from the attempt (a status read an hour after a
    failure must not still say "in 60 minutes"), and whether it is overdue."""
    if next_at is None:
        return "now", False
    left = (next_at - now).total_seconds()
    if left >= 1:
        return f"in {_age(timedelta(seconds=left))}", False
    if -left <= interval + LATE:
        return "now", False
    return f"overdue by {_age(timedelta(seconds=-left))}", True


def _age(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 90:
        amount, unit = seconds, "second"
    elif seconds < 5400:
        amount, unit = seconds / 60, "minute"
    elif seconds < 48 * 3600:
        amount, unit = seconds / 3600, "hour"
    else:
        amount, unit = seconds / 86400, "day"
    count = round(amount)
    return f"{count} {unit}{'s' * (count != 1)}"
