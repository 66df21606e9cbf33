"""Several launches at once: ``monitor backlash --list`` (each with its verdict) and
``--compare A B`` (how this redesign went against the last one), as plain text."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from monitor.backlash.events import WatchedEvent, find_event, watched
from monitor.backlash.report import SHARES, Backlash, percent, points_of
from monitor.config import Config
from monitor.errors import ConfigError


def find(config: Config, names: Iterable[str]) -> list[WatchedEvent]:
    """The configured launches named (any case), in that order; a clear error for another."""
    events = watched(config.main.events, config.timezone, config.sources)
    chosen = []
    for name in names:
        event = find_event(events, name)
        if event is None:
            known = ", ".join(repr(e.name) for e in events) or "none configured"
            raise ConfigError(f"no event named {name!r} (events: {known})", config.path.name,
                              "events")
        chosen.append(event)
    return chosen


def listing(reports: list[Backlash]) -> str:
    """One block per launch, newest first: its name, date and verdict."""
    blocks = []
    for r in sorted(reports, key=lambda r: r.launch, reverse=True):
        blocks.append(f"{r.event} ({_day(r)}, {r.posts_before} posts before, "
                      f"{r.posts_after} after)\n  {r.verdict}")
    return "\n".join(blocks)


def side_by_side(a: Backlash, b: Backlash) -> str:
    """Each figure before, after and its change, for two launches in two columns."""
    width = max(len(a.event), len(b.event), 26)
    rows = [("", a.event, b.event),
            ("launched", _day(a), _day(b)),
            ("posts before / after", f"{a.posts_before} / {a.posts_after}",
             f"{b.posts_before} / {b.posts_after}"),
            ("posts a day before / after", f"{a.per_day[0]} / {a.per_day[1]}",
             f"{b.per_day[0]} / {b.per_day[1]}")]
    for key, label in SHARES.items():
        rows.append((label, *(_figure(r, key) for r in (a, b))))
    lines = [f"{name:<28}{left:<{width + 2}}{right}" for name, left, right in rows]
    lines += ["", f"{a.event}: {a.verdict}", f"{b.event}: {b.verdict}"]
    return "\n".join(lines)


def _day(report: Backlash) -> str:
    """The launch in the configured zone, named (as ``monitor status`` names its times)."""
    return f"{report.launch.astimezone(ZoneInfo(report.timezone)):%Y-%m-%d %H:%M %Z}"


def _figure(report: Backlash, key: str) -> str:
    f = report.figures[key]
    clear = " clear" if f.change.clear else ""
    return f"{percent(f.before.value)} -> {percent(f.after.value)} " \
           f"({points_of(f.change.value)}{clear})"
