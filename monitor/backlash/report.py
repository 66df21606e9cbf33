"""``monitor backlash EVENT``: how a launch is going down, for the marketing lead who shipped it.

The baseline is every post of the launch's sources (or its ``sources``/``tags``) in the days
before it, not only the posts that name it: nobody talks of a redesign before it ships, so
"before" would be empty. Each share (negative, complaints, angry, talk of leaving, flagged,
about the launch) is compared after against before, the days before weighted to the weekdays
after, with a 95 % interval (``compare.py``); a verdict sentence and the trend sit on top.
Then the storms (``spikes.py``), what people are unhappy about (``themes.py``), by source and
by day. Every day is a day of the configured time zone. Built from the store, at any time.

At scale (issue 19): the database counts, one narrow row per post (``Store.launch_rows``), and
text is read only for the posts that may name a keyword and for the complaints grouped, at
most ``GROUPED`` of them (a uniform sample beyond, which the report says).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from monitor.backlash import spikes
from monitor.backlash.compare import (
    Change,
    Share,
    change,
    weekday_weights_of,
    weighted_share_of,
    wilson,
)
from monitor.backlash.events import WatchedEvent
from monitor.backlash.spikes import DAILY, HOURLY, Spike
from monitor.backlash.storms import CHURN, NEGATIVE
from monitor.backlash.themes import Complaint, group_complaints, sample
from monitor.reports.charts import launch_chart, sparkline
from monitor.reports.render import environment
from monitor.store import Store
from monitor.store.storms import ANGRY as ROW_ANGRY
from monitor.store.storms import CHURN as ROW_CHURN
from monitor.store.storms import COMPLAINT as ROW_COMPLAINT
from monitor.store.storms import FLAGGED as ROW_FLAGGED
from monitor.store.storms import NAMED as ROW_NAMED
from monitor.store.storms import NEGATIVE as ROW_NEGATIVE
from monitor.store.storms import TALK as ROW_TALK
from monitor.store.storms import UNHAPPY as ROW_UNHAPPY
from monitor.store.storms import LaunchRows, Thresholds

COMPLAINT = 0.5
"""A post whose complaint signal reaches this reports a problem (the scorer's own threshold)."""

CHANGE = 0.5
"""A post whose change signal reaches this talks of a change to the product: after the launch,
it is about the launch even if it does not name it ("since the update nothing works")."""

SHARES = {"negative": "negative", "complaint": "complaints", "angry": "angry",
          "churn": "talk of leaving", "flagged": "flagged", "about": "about the launch"}
"""The shares compared before and after, with how the report names them."""

SPARK = "▁▂▃▄▅▆▇█"

GROUPED = 1000
"""The complaints since the launch grouped into themes at most: beyond, a uniform sample
(``themes.sample``), and the report says so. Grouping time and memory grow with the square of
the posts grouped: at a million posts, 2,000 took ``monitor backlash`` to 308 MB and 1.3 s of
grouping, 1,000 keep it at 260 MB and 0.5 s (issue 19: 300 MB, 2 s); a complaint made by
1 % of the unhappy posts still has about 10 posts in the sample."""


@dataclass(frozen=True)
class Figure:
    """One share before (weekday-matched) and after the launch, and the change."""

    before: Share
    after: Share
    change: Change

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.as_dict(), "after": self.after.as_dict(),
                "change": self.change.as_dict()}


@dataclass(frozen=True)
class Theme:
    """A complaint theme with its share of the complaints and its posts per day after."""

    complaint: Complaint
    share: float
    per_day: tuple[int, ...]

    @property
    def trend(self) -> str:
        return _spark(self.per_day)


@dataclass(frozen=True)
class Backlash:
    event: str
    launch: datetime
    timezone: str
    made_at: datetime
    days: int
    sources: str                      # "all sources", or the launch's own
    posts_before: int
    posts_after: int
    per_day: tuple[float, float]      # posts a day before, after
    median_compound: tuple[float | None, float | None]
    figures: dict[str, Figure]
    about_of_negative: Share          # of the negative posts after, the share about the launch
    trend: str                        # "worst on 2 Dec, improving for 2 days"
    by_day: pd.DataFrame              # local day -> counts, shares, median compound
    by_source: pd.DataFrame
    spikes: list[Spike] = field(default_factory=list)
    themes: list[Theme] = field(default_factory=list)
    chart_png: bytes = b""
    spark_png: bytes = b""
    complaints: int = 0               # unhappy posts since the launch
    grouped: int = 0                  # of them, grouped into themes (a sample when fewer)

    @property
    def sampled(self) -> bool:
        """Whether the themes come from a sample of the complaints (more than GROUPED)."""
        return self.grouped < self.complaints

    @property
    def slug(self) -> str:
        return slug_of(self.event)

    @property
    def launch_day(self) -> date:
        return self.launch.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def verdict(self) -> str:
        """One sentence a lead can forward: the negative share since the launch against
        before, how much and how sure, how much of it is about the launch, and where it is
        heading."""
        day = f"{self.launch_day.day} {self.launch_day:%b}"
        negative = self.figures["negative"]
        if not self.posts_before and not self.posts_after:
            return (f"No posts from {self.sources} in the {self.days} days before or since "
                    f"the launch on {day}.")
        if not self.posts_after:
            return (f"No posts since the launch on {day} yet; before it, "
                    f"{percent(negative.before.value)} of posts were negative.")
        after = negative.after
        text = f"Since the launch on {day}, negative posts are {percent(after.value)} " \
               f"({percent(after.low, '')}–{percent(after.high)}, 95 % interval"
        if not self.posts_before:
            text += "; no posts before the launch to compare with)"
        else:
            points = negative.change
            word = "no clear change" if not points.clear else \
                "clearly worse" if (points.value or 0) > 0 else "clearly better"
            text += (f"; before: {percent(negative.before.value)} on the same weekdays, "
                     f"{points_of(points.value)}, {word})")
        if self.about_of_negative.value is not None:
            text += f"; {percent(self.about_of_negative.value)} of them are about the launch"
        return text + (f"; {self.trend}." if self.trend else ".")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for other tools (``--format json``); times in UTC."""
        days = self.by_day.reset_index().assign(day=lambda d: d["day"].astype(str))
        return {
            "event": self.event, "launch": self.launch.isoformat(), "timezone": self.timezone,
            "made_at": self.made_at.isoformat(), "days": self.days, "sources": self.sources,
            "verdict": self.verdict, "trend": self.trend,
            "posts": {"before": self.posts_before, "after": self.posts_after},
            "posts_per_day": {"before": self.per_day[0], "after": self.per_day[1]},
            "median_compound": {"before": self.median_compound[0],
                                "after": self.median_compound[1]},
            "figures": {k: f.as_dict() for k, f in self.figures.items()},
            "about_of_negative": self.about_of_negative.as_dict(),
            "by_day": _records(days), "by_source": _records(self.by_source.reset_index()),
            "spikes": [{"start": s.start.isoformat(), "end": s.end.isoformat(),
                        "peak_at": s.peak_at.isoformat(), "count": s.count, "total": s.total,
                        "baseline": s.baseline, "score": s.score,
                        "summary": s.describe(zone=ZoneInfo(self.timezone))}
                       for s in self.spikes],
            "complaint_posts": self.complaints, "complaints_grouped": self.grouped,
            "complaints": [{"label": t.complaint.label, "phrases": list(t.complaint.phrases),
                            "count": t.complaint.count, "share": round(t.share, 3),
                            "per_day": list(t.per_day), "posts": list(t.complaint.keys),
                            "quotes": list(t.complaint.quotes)} for t in self.themes],
        }


def slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "event"


def build(store: Store, event: WatchedEvent, zone: ZoneInfo, now: datetime) -> Backlash:
    """The report on ``event`` as of ``now``.

    Counted in periods (``_Tally``): the database returns one narrow row per post (its bits,
    its compound) and text only for posts that may name a keyword; the complaints grouped are
    a sample of at most ``GROUPED``, whose text alone is read. So memory does not
    grow with the posts' text, and a million posts take seconds (issue 19).
    """
    start, end = event.window
    end = max(min(end, now), start)
    tally = _Tally.of(store, event, start, end, zone)
    before, after = tally.side(False), tally.side(True)
    weights = weekday_weights_of(before["posts"], after["posts"])
    figures = {}
    for name in SHARES:
        was = weighted_share_of(before[name], before["posts"], weights)
        now_ = wilson(float(sum(after[name])), sum(after["posts"]))
        figures[name] = Figure(was, now_, change(was, now_))
    about_of_negative = wilson(float(tally.negative_about_after), sum(after["negative"]))
    launch_day = event.launch.astimezone(zone).date()
    by_day = tally.by_day()
    posts_before, posts_after = sum(before["posts"]), sum(after["posts"])
    days_before = max((event.launch - start) / timedelta(days=1), 1.0)
    days_after = max((end - event.launch) / timedelta(days=1), 1 / 24)
    complete = by_day[(by_day.index >= launch_day) & (by_day.index < now.astimezone(zone).date())]
    themes, grouped = _themes(store, tally, event, by_day, launch_day)
    return Backlash(
        event.name, event.launch, str(zone), now, event.days,
        "all sources" if event.sources is None else ", ".join(sorted(event.sources)),
        posts_before, posts_after,
        (round(posts_before / days_before, 2), round(posts_after / days_after, 2)),
        (tally.median(False), tally.median(True)),
        figures, about_of_negative, _trend(complete), by_day, tally.by_source(),
        _storms(tally, start, end, zone), themes,
        launch_chart(list(by_day.index), list(by_day["posts"]), list(by_day["negative"]),
                     [None if pd.isna(m) else float(m) for m in by_day["median_compound"]],
                     launch_day),
        sparkline(list(by_day.index), [None if pd.isna(s) else float(s)
                                       for s in by_day["negative_share"]], launch_day),
        complaints=len(tally.unhappy), grouped=grouped)


def write(report: Backlash, folder: Path) -> list[Path]:
    """``backlash-<event>.html`` (charts inline) and ``.md`` (chart beside it, ``.png``)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"backlash-{report.slug}"
    written = []
    for suffix, content in (("png", report.chart_png), ("trend.png", report.spark_png),
                            ("html", render(report, "backlash.html.j2")),
                            ("md", render(report, "backlash.md.j2"))):
        path = folder / f"{stem}.{suffix}"
        tmp = path.with_name(path.name + ".tmp")
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a report
        written.append(path)
    return written


def to_json(report: Backlash) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)


def render(report: Backlash, template: str, chart: str | None = None,
           spark: str | None = None) -> str:
    """A template filled in; ``chart``/``spark``: image sources (default: inline data URIs;
    an e-mail passes ``cid:`` references)."""
    zone = ZoneInfo(report.timezone)
    inline = "data:image/png;base64,"
    return environment("monitor.backlash").get_template(template).render(
        r=report, local=lambda t: t.astimezone(zone), shares=SHARES,
        chart=chart or inline + base64.b64encode(report.chart_png).decode("ascii"),
        spark=spark or inline + base64.b64encode(report.spark_png).decode("ascii"),
        pct=percent, points=points_of)


# --- the figures -----------------------------------------------------------------------------

LIMITS = Thresholds(negative=NEGATIVE, complaint=COMPLAINT, churn=CHURN, change=CHANGE)
COUNTED = {"negative": ROW_NEGATIVE, "complaint": ROW_COMPLAINT, "angry": ROW_ANGRY,
           "churn": ROW_CHURN, "flagged": ROW_FLAGGED}
"""The shares the database tells by itself; "about" also needs the keyword checked here."""


@dataclass
class _Tally:
    """Posts counted per period (a local day, cut at the launch) and source, with what the
    report needs beyond counts: the compounds (medians), the negative posts about the launch
    (storms) and the unhappy ones since it (themes). Built from ``Store.launch_rows``."""

    days: list[date]  # the local day of each period
    after: list[bool]  # whether each period is after the launch
    window: list[date]  # every local day of the window, quiet ones too
    counts: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)  # COLUMNS
    compounds: list[list[np.ndarray]] = field(default_factory=list)  # known ones, per period
    storm: list[tuple[datetime, str]] = field(default_factory=list)  # time, voice
    unhappy: list[tuple[datetime, int, int]] = field(default_factory=list)  # time, id, period
    negative_about_after: int = 0

    COLUMNS = ("posts", "negative", "complaint", "angry", "churn", "flagged", "about")

    @classmethod
    def of(cls, store: Store, event: WatchedEvent, start: datetime, end: datetime,
           zone: ZoneInfo) -> _Tally:
        first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        window = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        cuts = {datetime.combine(day, time(), zone).astimezone(UTC) for day in window}
        cuts.add(event.launch)
        edges = [start, *sorted(c for c in cuts if start < c < end), end]
        tally = cls([e.astimezone(zone).date() for e in edges[:-1]],
                    [e >= event.launch for e in edges[:-1]], window)
        tally.compounds = [[] for _ in edges[:-1]]
        for period, rows in store.launch_rows(edges, event.sources, event.keywords, LIMITS):
            tally._add(store, period, rows, event)
        return tally

    def _add(self, store: Store, period: int, rows: LaunchRows, event: WatchedEvent) -> None:
        after = self.after[period]
        bits = np.fromiter(rows.bits, dtype=np.int64, count=len(rows.bits))
        ids = np.fromiter(rows.id, dtype=np.int64, count=len(rows.id))
        maybe = np.flatnonzero(bits & ROW_NAMED)  # may name a keyword: as whole words?
        texts = store.post_details(ids[maybe].tolist(), text=True)
        named = np.zeros(len(bits), dtype=bool)
        named[maybe] = [event.names(*texts[int(i)][2:]) for i in ids[maybe]]
        about = named | (after & (bits & ROW_TALK > 0))
        negative = bits & ROW_NEGATIVE > 0
        storm = np.flatnonzero(negative & about)
        unhappy = np.flatnonzero(bits & ROW_UNHAPPY) if after else np.empty(0, dtype=np.int64)
        details = texts | store.post_details(
            [int(i) for i in ids[np.union1d(storm, unhappy)] if int(i) not in texts])
        code: dict[str, int] = {}  # a dict, not np.unique: no sort of half a million strings
        which = np.fromiter((code.setdefault(source, len(code)) for source in rows.source),
                            dtype=np.int64, count=len(rows.source))
        sources = list(code)
        columns = [np.ones(len(bits), dtype=bool),
                   *(bits & COUNTED[name] > 0 for name in self.COLUMNS[1:-1]), about]
        counts = np.stack([np.bincount(which, weights=c, minlength=len(sources))
                           for c in columns], axis=1).astype(np.int64)
        for source, row in zip(sources, counts, strict=True):
            key = (period, str(source))
            self.counts[key] = self.counts[key] + row if key in self.counts else row
        compound = np.array(rows.compound, dtype=np.float64)
        self.compounds[period].append(compound[~np.isnan(compound)])
        self.storm += [details[int(i)][:2] for i in ids[storm]]
        if after:
            self.negative_about_after += len(storm)
            self.unhappy += [(details[int(i)][0], int(i), period) for i in ids[unhappy]]

    def _sum(self, periods: Sequence[int]) -> np.ndarray:
        chosen = set(periods)
        total = np.zeros(len(self.COLUMNS), dtype=np.int64)
        for (period, _), row in self.counts.items():
            if period in chosen:
                total += row
        return total

    def side(self, after: bool) -> dict[str, list[int]]:
        """Per column, posts per weekday (Monday first) before or after the launch."""
        week = np.zeros((7, len(self.COLUMNS)), dtype=np.int64)
        for (period, _), row in self.counts.items():
            if self.after[period] == after:
                week[self.days[period].weekday()] += row
        return {name: [int(n) for n in week[:, c]] for c, name in enumerate(self.COLUMNS)}

    def median(self, after: bool) -> float | None:
        return _median([a for p, parts in enumerate(self.compounds) if self.after[p] == after
                        for a in parts])

    def by_day(self) -> pd.DataFrame:
        """Every local day of the window, quiet days included (0 posts, no shares)."""
        rows = []
        for day in self.window:
            periods = [p for p, d in enumerate(self.days) if d == day]
            posts, negative, complaints, angry, churn, flagged, about = (
                int(n) for n in self._sum(periods))
            rows.append({"posts": posts, "negative": negative,
                         "negative_share": negative / posts if posts else None,
                         "complaints": complaints, "angry": angry, "churn": churn,
                         "flagged": flagged, "about": about,
                         "median_compound": _median([a for p in periods
                                                     for a in self.compounds[p]])})
        return pd.DataFrame(rows, index=pd.Index(self.window, name="day"),
                            columns=["posts", "negative", "negative_share", "complaints",
                                     "angry", "churn", "flagged", "about", "median_compound"])

    def by_source(self) -> pd.DataFrame:
        sides: dict[str, list[np.ndarray]] = {}
        for (period, source), row in self.counts.items():
            pair = sides.setdefault(source, [np.zeros(len(self.COLUMNS), dtype=np.int64)] * 2)
            pair[self.after[period]] = pair[self.after[period]] + row
        c = {name: i for i, name in enumerate(self.COLUMNS)}
        rows = []
        for source, (before, after) in sorted(sides.items()):
            rows.append({"source": source, "posts_before": int(before[0]),
                         "posts_after": int(after[0]),
                         "negative_share_before": _share(before, c["negative"]),
                         "negative_share_after": _share(after, c["negative"]),
                         "about_after": int(after[c["about"]]),
                         "angry_after": int(after[c["angry"]]),
                         "churn_after": int(after[c["churn"]])})
        table = pd.DataFrame(rows, columns=["source", "posts_before", "posts_after",
                                            "negative_share_before", "negative_share_after",
                                            "about_after", "angry_after", "churn_after"])
        return table.set_index("source").sort_values("posts_after", ascending=False)


def _trend(days: pd.DataFrame) -> str:
    """"worst on 2 Dec, improving for 2 days", from the whole local days since the launch
    (today is not over: its count only grows)."""
    if days.empty or not days["negative"].any():
        return ""
    worst = days["negative"].idxmax()
    text = f"worst on {worst.day} {worst:%b}"
    counts = list(days["negative"])
    if len(counts) < 2:
        return text
    run, sign = 0, 0
    for earlier, later in zip(reversed(counts[:-1]), reversed(counts[1:]), strict=True):
        step = (later > earlier) - (later < earlier)
        if step == 0 or (sign and step != sign):
            break
        sign, run = step, run + 1
    if run == 0:
        return f"{text}, steady since"
    plural = "s" if run > 1 else ""
    return f"{text}, {'improving' if sign < 0 else 'getting worse'} for {run} day{plural}"


def _storms(tally: _Tally, start: datetime, end: datetime, zone: ZoneInfo) -> list[Spike]:
    """Spikes of negative posts about the launch, each storm once: by the hour, and a slower
    rise by the day only where no hourly storm already tells of it."""
    times = [at for at, _ in tally.storm]
    voices = [voice for _, voice in tally.storm]  # as storms.py counts them
    local_end = end.astimezone(zone)
    first_day = datetime.combine(start.astimezone(zone).date(), time(), zone)
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hourly = HOURLY.find(spikes.counts_per_period(times, "h", hour, end.astimezone(UTC),
                                                  keys=voices))
    daily = DAILY.find(spikes.counts_per_period(times, "D", first_day, local_end, keys=voices))
    daily = [d for d in daily if not any(h.start < d.end and d.start < h.end for h in hourly)]
    return sorted(hourly + daily, key=lambda s: s.start)


def _themes(store: Store, tally: _Tally, event: WatchedEvent, by_day: pd.DataFrame,
            launch_day: date) -> tuple[list[Theme], int]:
    """What people are unhappy about since the launch (complaints, anger, talk of leaving, or
    flagged but not praise, in any scored language; a merely negative post, a sad story, is
    none), and how many posts were grouped: all of them, or a uniform sample of ``GROUPED``
    (``themes.sample``), whose text alone is read. A theme's share is of the
    posts grouped: of the sample, when there is one."""
    unhappy = sorted(tally.unhappy)  # by time, then id: as the posts were listed before
    picked = [unhappy[i] for i in sample(len(unhappy), GROUPED)]
    texts = store.post_texts([post for _, post, _ in picked])
    groups = group_complaints([(post, texts[post]) for _, post, _ in picked],
                              launch_words=event.keywords)
    days = [d for d in by_day.index if d >= launch_day]
    day_of = {post: tally.days[period] for _, post, period in picked}
    themes = []
    for group in groups:
        seen = [day_of[key] for key in group.keys]
        themes.append(Theme(group, group.count / max(len(picked), 1),
                            tuple(seen.count(d) for d in days)))
    return themes, len(picked)


def _median(parts: Sequence[np.ndarray]) -> float | None:
    known = np.concatenate(parts) if parts else np.empty(0)
    return round(float(np.median(known)), 3) if len(known) else None


def _share(counts: np.ndarray, column: int) -> float | None:
    return round(float(counts[column] / counts[0]), 3) if counts[0] else None


def percent(value: float | None, sign: str = " %") -> str:
    return "–" if value is None else f"{value * 100:.0f}{sign}"


def points_of(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.0f} points"


def _spark(counts: Sequence[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return SPARK[0] * len(counts)
    return "".join(SPARK[round(c / top * (len(SPARK) - 1))] for c in counts)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))
