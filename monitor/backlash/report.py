"""``monitor backlash EVENT``: how a launch is going down, for the marketing lead who shipped it.

The posts that talk about the launch (``events.py``), the N days before against the
days after: volume, negative share, mean compound, angry and churn posts, by day and by
source; the storms (spikes of negative posts, ``spikes.py``); and what people are angry
about (``themes.py``), so the team can fix causes and not only answer people. Built from
the store, so it can be made at any time, as often as wanted.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from monitor.backlash import spikes
from monitor.backlash.events import WatchedEvent
from monitor.backlash.spikes import DAILY, HOURLY, Spike
from monitor.backlash.storms import CHURN, NEGATIVE
from monitor.backlash.themes import Complaint, group_complaints
from monitor.reports.charts import launch_chart
from monitor.reports.render import environment
from monitor.store import Store

COMPLAINT = 0.5
"""A post whose complaint signal reaches this reports a problem (the scorer's own threshold)."""

FIGURES = ("posts", "negative", "negative_share", "mean_compound", "complaints", "angry", "churn",
           "flagged")


@dataclass(frozen=True)
class Backlash:
    event: str
    launch: datetime
    timezone: str
    made_at: datetime
    days: int
    before: dict[str, float]          # per-day averages over the days before the launch
    after: dict[str, float]           # ... and over the days after (up to now)
    by_day: pd.DataFrame              # local day -> FIGURES, with a "period" column
    by_source: pd.DataFrame           # source -> FIGURES before and after
    spikes: list[Spike] = field(default_factory=list)
    complaints: list[Complaint] = field(default_factory=list)
    chart_png: bytes = b""

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.event.lower()).strip("-") or "event"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for other tools (``--format json``)."""
        days = self.by_day.reset_index().assign(day=lambda d: d["day"].astype(str))
        return {
            "event": self.event, "launch": self.launch.isoformat(), "timezone": self.timezone,
            "made_at": self.made_at.isoformat(), "days": self.days,
            "before": self.before, "after": self.after,
            "by_day": _records(days), "by_source": _records(self.by_source.reset_index()),
            "spikes": [{"start": s.start.isoformat(), "end": s.end.isoformat(),
                        "peak_at": s.peak_at.isoformat(), "count": s.count, "total": s.total,
                        "baseline": s.baseline, "score": s.score, "summary": s.describe()}
                       for s in self.spikes],
            "complaints": [{"label": c.label, "phrases": list(c.phrases), "count": c.count,
                            "posts": list(c.keys), "quotes": list(c.quotes)}
                           for c in self.complaints],
        }


def build(store: Store, event: WatchedEvent, zone: ZoneInfo, now: datetime) -> Backlash:
    """The report on ``event`` as of ``now``."""
    start, end = event.window
    end = min(end, now)
    rows = [r for r in store.event_candidates(start, end, event.keywords)
            if event.mentions(r["source"], r["title"], r["text"])]
    frame = _frame(rows, event.launch, zone)
    by_day = _by_day(frame, start, end, zone)
    negative = frame[frame["negative"]]
    voices = list(negative["author"].fillna(negative["url"]))  # as storms.py counts them
    first_day = datetime.combine(start.astimezone(zone).date(), time(), zone)
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    storms = [settings.find(spikes.counts_per_period(negative["published_at"], settings.freq,
                                                     begin, end, keys=voices))
              for settings, begin in ((DAILY, first_day), (HOURLY, hour))]
    # what people are unhappy about: complaints and anger, in any scored language; a merely
    # negative post (news of a death, a sad story) or a launch announcement is not a complaint
    unhappy = frame["complaint"] | frame["angry"] | frame["churn"] | (
        frame["flagged"] & (frame["category"] != "praise"))
    after = frame[frame["after"] & unhappy]
    complaints = group_complaints(list(zip(after["id"], after["text"], strict=True)),
                                  ignore=event.keywords)
    return Backlash(event.name, event.launch, str(zone), now, event.days,
                    _per_day(frame[~frame["after"]], max((event.launch - start).days, 1)),
                    _per_day(frame[frame["after"]],
                             max((end - event.launch) / timedelta(days=1), 1 / 24)),
                    by_day, _by_source(frame),
                    sorted(storms[0] + storms[1], key=lambda s: s.start),
                    complaints, _chart(by_day, event.launch.astimezone(zone).date()))


def _chart(by_day: pd.DataFrame, launch: date) -> bytes:
    return launch_chart(list(by_day.index), list(by_day["posts"]), list(by_day["negative"]),
                        [None if pd.isna(m) else float(m) for m in by_day["mean_compound"]],
                        launch)


def write(report: Backlash, folder: Path) -> list[Path]:
    """``backlash-<event>.html`` (chart inline) and ``.md`` (chart beside it, ``.png``)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"backlash-{report.slug}"
    written = []
    for suffix, content in (("png", report.chart_png),
                            ("html", _render("backlash.html.j2", report)),
                            ("md", _render("backlash.md.j2", report))):
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


def _frame(rows: list[dict[str, Any]], launch: datetime, zone: ZoneInfo) -> pd.DataFrame:
    columns = ["id", "source", "url", "author", "title", "text", "published_at", "compound",
               "angry", "churn", "complaint", "severity", "category", "language"]
    frame = pd.DataFrame(rows, columns=columns)
    known = frame["language"].isna() | (frame["language"] == "en")
    frame["compound"] = frame["compound"].astype(float).where(known)
    frame["negative"] = (frame["compound"] <= NEGATIVE).fillna(False).astype(bool)
    frame["angry"] = frame["angry"].fillna(False).astype(bool)
    frame["churn"] = frame["churn"].astype(float).fillna(0.0) >= CHURN
    frame["complaint"] = frame["complaint"].astype(float).fillna(0.0) >= COMPLAINT
    frame["flagged"] = frame["severity"].notna()
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    frame["after"] = frame["published_at"] >= pd.Timestamp(launch)
    frame["day"] = frame["published_at"].dt.tz_convert(zone).dt.date
    return frame


def _figures(group: pd.DataFrame) -> pd.Series:
    posts = len(group)
    return pd.Series({
        "posts": posts, "negative": int(group["negative"].sum()),
        "negative_share": float(group["negative"].mean()) if posts else 0.0,
        "mean_compound": float(group["compound"].mean()) if group["compound"].notna().any()
        else None,
        "complaints": int(group["complaint"].sum()),
        "angry": int(group["angry"].sum()), "churn": int(group["churn"].sum()),
        "flagged": int(group["flagged"].sum())})


def _by_day(frame: pd.DataFrame, start: datetime, end: datetime,
            zone: ZoneInfo) -> pd.DataFrame:
    """Every local day of the window, quiet days included (0 posts, not missing)."""
    days = pd.date_range(start.astimezone(zone).date(), end.astimezone(zone).date(), freq="D")
    table = pd.DataFrame([_figures(frame[frame["day"] == d.date()]) for d in days],
                         index=pd.Index([d.date() for d in days], name="day"))
    return table


def _per_day(frame: pd.DataFrame, days: float) -> dict[str, float]:
    figures = _figures(frame)
    out = {k: round(float(figures[k]) / days, 2) for k in ("posts", "negative", "complaints",
                                                             "angry", "churn", "flagged")}
    out["negative_share"] = round(float(figures["negative_share"]), 3)
    mean = figures["mean_compound"]
    out["mean_compound"] = None if mean is None or pd.isna(mean) else round(float(mean), 3)
    return out


def _by_source(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for source, group in frame.groupby("source"):
        before, after = group[~group["after"]], group[group["after"]]
        rows.append({"source": source, "posts_before": len(before), "posts_after": len(after),
                     "negative_share_before": _share(before), "negative_share_after":
                     _share(after), "angry_after": int(after["angry"].sum()),
                     "churn_after": int(after["churn"].sum())})
    table = pd.DataFrame(rows, columns=["source", "posts_before", "posts_after",
                                        "negative_share_before", "negative_share_after",
                                        "angry_after", "churn_after"])
    return table.set_index("source").sort_values("posts_after", ascending=False)


def _share(group: pd.DataFrame) -> float | None:
    return round(float(group["negative"].mean()), 3) if len(group) else None


def _render(template: str, report: Backlash) -> str:
    chart = base64.b64encode(report.chart_png).decode("ascii")
    zone = ZoneInfo(report.timezone)
    return environment("monitor.backlash").get_template(template).render(
        r=report, chart=chart, local=lambda t: t.astimezone(zone))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


