"""``monitor backlash EVENT``: how a launch is going down, for the marketing lead who shipped it.

The baseline is every post of the launch's sources (or its ``sources``/``tags``) in the days
before it, not only the posts that name it: nobody talks of a redesign before it ships, so
"before" would be empty. Each share (negative, complaints, angry, talk of leaving, flagged,
about the launch) is compared after against before, the days before weighted to the weekdays
after, with a 95 % interval (``compare.py``); a verdict sentence and the trend sit on top.
Then the storms (``spikes.py``), what people are unhappy about (``themes.py``), by source and
by day. Every day is a day of the configured time zone. Built from the store, at any time.
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

import pandas as pd

from monitor.backlash import spikes
from monitor.backlash.compare import Change, Share, change, weekday_weights, weighted_share, wilson
from monitor.backlash.events import WatchedEvent
from monitor.backlash.spikes import DAILY, HOURLY, Spike
from monitor.backlash.storms import CHURN, NEGATIVE
from monitor.backlash.themes import Complaint, group_complaints
from monitor.reports.charts import launch_chart, sparkline
from monitor.reports.render import environment
from monitor.store import Store

COMPLAINT = 0.5
"""A post whose complaint signal reaches this reports a problem (the scorer's own threshold)."""

CHANGE = 0.5
"""A post whose change signal reaches this talks of a change to the product: after the launch,
it is about the launch even if it does not name it ("since the update nothing works")."""

SHARES = {"negative": "negative", "complaint": "complaints", "angry": "angry",
          "churn": "talk of leaving", "flagged": "flagged", "about": "about the launch"}
"""The shares compared before and after, with how the report names them."""

SPARK = "▁▂▃▄▅▆▇█"


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
            "complaints": [{"label": t.complaint.label, "phrases": list(t.complaint.phrases),
                            "count": t.complaint.count, "share": round(t.share, 3),
                            "per_day": list(t.per_day), "posts": list(t.complaint.keys),
                            "quotes": list(t.complaint.quotes)} for t in self.themes],
        }


def slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "event"


def build(store: Store, event: WatchedEvent, zone: ZoneInfo, now: datetime) -> Backlash:
    """The report on ``event`` as of ``now``."""
    start, end = event.window
    end = max(min(end, now), start)
    frame = _frame(store.launch_posts(start, end, event.sources), event, zone)
    before, after = frame[~frame["after"]], frame[frame["after"]]
    weights = weekday_weights(list(before["weekday"]), list(after["weekday"]))
    figures = {name: _figure(before[name], after[name], weights) for name in SHARES}
    negative_after = after[after["negative"]]
    about_of_negative = wilson(float(negative_after["about"].sum()), len(negative_after))
    launch_day = event.launch.astimezone(zone).date()
    by_day = _by_day(frame, start, end, zone)
    days_before = max((event.launch - start) / timedelta(days=1), 1.0)
    days_after = max((end - event.launch) / timedelta(days=1), 1 / 24)
    complete = by_day[(by_day.index >= launch_day) & (by_day.index < now.astimezone(zone).date())]
    return Backlash(
        event.name, event.launch, str(zone), now, event.days,
        "all sources" if event.sources is None else ", ".join(sorted(event.sources)),
        len(before), len(after),
        (round(len(before) / days_before, 2), round(len(after) / days_after, 2)),
        (_median(before["compound"]), _median(after["compound"])),
        figures, about_of_negative, _trend(complete), by_day, _by_source(frame),
        _storms(frame, start, end, zone), _themes(frame, event, by_day, launch_day),
        launch_chart(list(by_day.index), list(by_day["posts"]), list(by_day["negative"]),
                     [None if pd.isna(m) else float(m) for m in by_day["median_compound"]],
                     launch_day),
        sparkline(list(by_day.index), [None if pd.isna(s) else float(s)
                                       for s in by_day["negative_share"]], launch_day))


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

def _frame(rows: list[dict[str, Any]], event: WatchedEvent, zone: ZoneInfo) -> pd.DataFrame:
    columns = ["id", "source", "url", "author", "title", "text", "published_at", "compound",
               "angry", "churn", "complaint", "change", "severity", "category", "language"]
    frame = pd.DataFrame(rows, columns=columns)
    known = frame["language"].isna() | (frame["language"] == "en")
    frame["compound"] = frame["compound"].astype(float).where(known)
    frame["negative"] = (frame["compound"] <= NEGATIVE).fillna(False).astype(bool)
    frame["angry"] = frame["angry"].fillna(False).astype(bool)
    frame["churn"] = frame["churn"].astype(float).fillna(0.0) >= CHURN
    frame["complaint"] = frame["complaint"].astype(float).fillna(0.0) >= COMPLAINT
    frame["flagged"] = frame["severity"].notna()
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    frame["after"] = frame["published_at"] >= pd.Timestamp(event.launch)
    talk = frame["change"].astype(float).fillna(0.0) >= CHANGE
    named = pd.Series([event.names(title, text) for title, text in
                       zip(frame["title"], frame["text"], strict=True)], index=frame.index,
                      dtype=bool)
    frame["about"] = named | (talk & frame["after"])
    local = frame["published_at"].dt.tz_convert(zone)
    frame["day"] = local.dt.date
    frame["weekday"] = local.dt.day_of_week
    return frame


def _figure(before: pd.Series, after: pd.Series, weights: list[float]) -> Figure:
    was = weighted_share(list(before), weights)
    now = wilson(float(after.sum()), len(after))
    return Figure(was, now, change(was, now))


def _by_day(frame: pd.DataFrame, start: datetime, end: datetime,
            zone: ZoneInfo) -> pd.DataFrame:
    """Every local day of the window, quiet days included (0 posts, no shares)."""
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rows = []
    for day in days:
        group = frame[frame["day"] == day]
        posts = len(group)
        rows.append({"posts": posts, "negative": int(group["negative"].sum()),
                     "negative_share": group["negative"].mean() if posts else None,
                     "complaints": int(group["complaint"].sum()),
                     "angry": int(group["angry"].sum()), "churn": int(group["churn"].sum()),
                     "flagged": int(group["flagged"].sum()), "about": int(group["about"].sum()),
                     "median_compound": _median(group["compound"])})
    return pd.DataFrame(rows, index=pd.Index(days, name="day"),
                        columns=["posts", "negative", "negative_share", "complaints", "angry",
                                 "churn", "flagged", "about", "median_compound"])


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


def _by_source(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for source, group in frame.groupby("source"):
        before, after = group[~group["after"]], group[group["after"]]
        rows.append({"source": source, "posts_before": len(before), "posts_after": len(after),
                     "negative_share_before": _share(before), "negative_share_after":
                     _share(after), "about_after": int(after["about"].sum()),
                     "angry_after": int(after["angry"].sum()),
                     "churn_after": int(after["churn"].sum())})
    table = pd.DataFrame(rows, columns=["source", "posts_before", "posts_after",
                                        "negative_share_before", "negative_share_after",
                                        "about_after", "angry_after", "churn_after"])
    return table.set_index("source").sort_values("posts_after", ascending=False)


def _storms(frame: pd.DataFrame, start: datetime, end: datetime, zone: ZoneInfo) -> list[Spike]:
    """Spikes of negative posts about the launch, each storm once: by the hour, and a slower
    rise by the day only where no hourly storm already tells of it."""
    negative = frame[frame["negative"] & frame["about"]]
    voices = list(negative["author"].fillna(negative["url"]))  # as storms.py counts them
    local_end = end.astimezone(zone)
    first_day = datetime.combine(start.astimezone(zone).date(), time(), zone)
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hourly = HOURLY.find(spikes.counts_per_period(negative["published_at"], "h", hour,
                                                  end.astimezone(UTC), keys=voices))
    daily = DAILY.find(spikes.counts_per_period(negative["published_at"], "D", first_day,
                                                local_end, keys=voices))
    daily = [d for d in daily if not any(h.start < d.end and d.start < h.end for h in hourly)]
    return sorted(hourly + daily, key=lambda s: s.start)


def _themes(frame: pd.DataFrame, event: WatchedEvent, by_day: pd.DataFrame,
            launch_day: date) -> list[Theme]:
    """What people are unhappy about since the launch: complaints and anger, in any scored
    language; a merely negative post (a sad story) or the launch announcement is none."""
    unhappy = frame["complaint"] | frame["angry"] | frame["churn"] | (
        frame["flagged"] & (frame["category"] != "praise"))
    after = frame[frame["after"] & unhappy]
    groups = group_complaints(list(zip(after["id"], after["text"], strict=True)),
                              launch_words=event.keywords)
    days = [d for d in by_day.index if d >= launch_day]
    day_of = dict(zip(after["id"], after["day"], strict=True))
    themes = []
    for group in groups:
        seen = [day_of[key] for key in group.keys]
        themes.append(Theme(group, group.count / max(len(after), 1),
                            tuple(seen.count(d) for d in days)))
    return themes


def _median(values: pd.Series) -> float | None:
    known = values.dropna()
    return round(float(known.median()), 3) if len(known) else None


def _share(group: pd.DataFrame) -> float | None:
    return round(float(group["negative"].mean()), 3) if len(group) else None


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
