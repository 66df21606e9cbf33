"""The daily digest that user-relations staff start the day with: what it says, gathered from
the store (its formats and files are in ``monitor.reports.render``).

Built from the store for a calendar day in the configured time zone, with the clock passed in
(``now``), so a flag raised that day is in that day's digest whenever it is made or re-made:
nothing flagged ages out before a late send. Most urgent first: the headline figures, the
critical and high posts by thread, the medium and low ones in brief, a 14-day chart, the
sources that need a look, then praise to pass on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.backlash.events import WatchedEvent, find_event, watched
from monitor.config import Config
from monitor.followup import answered_line
from monitor.health import Health, assess
from monitor.model import SHOWN, STORM_SOURCE, is_praise, is_storm_source, is_system_source
from monitor.queue import OPEN_STATES, is_overdue, thread_title
from monitor.quoting import quote
from monitor.reports.charts import Day, daily_chart
from monitor.scoring.lexicons import is_scored
from monitor.store import Store
from monitor.store.followup import Answered
from monitor.themes import ThemeWeek, week_bounds, weekly

SEVERITY_ORDER = ("critical", "high", "medium", "low")
URGENT = ("critical", "high")
THEMES_SHOWN = 5  # the week's top recurring complaint themes in the digest
CHART_DAYS = 14
AVERAGE_DAYS = 7


@dataclass(frozen=True, slots=True)
class CaseRef:
    id: int
    state: str
    assignee: str | None
    due_at: datetime | None      # local time
    overdue: bool


@dataclass(frozen=True, slots=True)
class Item:
    """One flagged post as the digest shows it (and the CSV lists it)."""

    post_id: int
    severity: str
    category: str | None
    tags: tuple[str, ...]
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    source: str
    source_kind: str | None
    title: str | None
    thread_title: str | None     # the thread's (a blog comment's: the post it is on)
    text: str
    quote: str                   # the text, or the title of a post that is only a title
    author: str | None
    author_url: str | None
    url: str | None              # http(s) only: a post's link never becomes javascript:
    published_at: datetime       # local time
    flagged_at: datetime         # local time
    thread: str
    case: CaseRef | None
    scores: dict[str, Any]
    praise: bool

    @property
    def short_quote(self) -> str:
        return quote(self.text or self.title or "", 140)

    @property
    def storm(self) -> bool:
        return is_storm_source(self.source)


@dataclass(frozen=True, slots=True)
class Thread:
    """The urgent posts of one thread, so a reader sees a pile-on as one story; a storm's
    thread also lists the posts behind it."""

    title: str | None
    url: str | None
    source: str
    items: tuple[Item, ...]          # the worst first, the latest first among equals
    behind: tuple[Item, ...] = ()    # a storm's: the day's flagged posts about its launch

    @property
    def severity(self) -> str:
        return min((i.severity for i in self.items), key=_rank)

    @property
    def storm(self) -> bool:
        return is_storm_source(self.source)

    @property
    def cases(self) -> list[CaseRef]:
        return list({i.case.id: i.case for i in self.items if i.case is not None}.values())


@dataclass(frozen=True, slots=True)
class Trend:
    """A day's figure against the mean of the ``days`` before it (None: nothing to compare;
    a store younger than a week compares with the days it has)."""

    value: float | None
    average: float | None
    days: int = AVERAGE_DAYS

    @property
    def change(self) -> float | None:
        if self.value is None or not self.average:
            return None
        return self.value / self.average - 1

    def versus(self, share: bool = False) -> str:
        """``+35% vs 7-day avg 8``; for a share, the difference in points."""
        if self.average is None:
            return "nothing earlier to compare"
        if share:
            average = f"{self.days}-day avg {self.average:.0%}"
            if self.value is None:
                return average
            points = round((self.value - self.average) * 100)
            return f"{points:+d} pts vs {average}" if points else f"same as {average}"
        average = f"{self.days}-day avg {self.average:.1f}".removesuffix(".0")
        change = self.change
        if change is None or round(change * 100) == 0:
            return average if change is None else f"same as {average}"
        return f"{change:+.0%} vs {average}"


@dataclass(frozen=True)
class Digest:
    day: date
    timezone: str
    made_at: datetime                       # local time
    posts: Trend
    flagged: Trend                          # flags that need a person (praise is not)
    negative: Trend                         # share of the day's scored posts
    by_severity: dict[str, int]
    new_cases: int
    overdue: int
    urgent: list[Thread] = field(default_factory=list)
    others: list[Item] = field(default_factory=list)
    praise: list[Item] = field(default_factory=list)     # every praise post of the day
    praise_limit: int = 5
    troubled: list[Health] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)
    chart: bytes | None = None
    unscored: dict[str, int] = field(default_factory=dict)  # language -> posts not scored
    themes: list[ThemeWeek] = field(default_factory=list)   # the week's top complaints
    answered: Answered | None = None        # the week's answered cases: won back or not

    @property
    def answered_text(self) -> str:
        """"answered in the last 7 days: 30; won back 12, still unhappy 5, quiet 13", or ""."""
        if self.answered is None or not self.answered.answered:
            return ""
        return answered_line(self.answered, "in the last 7 days")

    @property
    def themes_shown(self) -> list[ThemeWeek]:
        """The week's top recurring themes (``THEMES_SHOWN``), then every theme marked fixed
        that came back, even if few: that is what "fix everything twice" must not miss."""
        top = [t for t in self.themes if t.this_week][:THEMES_SHOWN]
        return top + [t for t in self.themes if t.returning and t not in top]

    @property
    def unscored_text(self) -> str:
        """"4 posts not scored (language de: 3, es: 1)": stored and counted, but no language
        model reads them, so nothing in them can be flagged but shouting and swearing."""
        if not self.unscored:
            return ""
        total = sum(self.unscored.values())
        each = ", ".join(f"{code}: {n}" for code, n in self.unscored.items())
        return f"{total} post{'s' * (total != 1)} not scored (language {each})"

    @property
    def quiet(self) -> bool:
        """Nothing needs a person: no flag today, no overdue case."""
        return not self.urgent and not self.others and not self.overdue

    @property
    def waiting(self) -> list[Item]:
        """The critical and high posts whose case is open: what needs a person (a resolved
        or dismissed case's posts are listed, but wait for nobody)."""
        return [i for t in self.urgent for i in t.items
                if i.case is not None and i.case.state in OPEN_STATES]

    @property
    def items(self) -> list[Item]:
        """Every flagged post of the day, in the digest's order (the CSV's rows)."""
        return [i for t in self.urgent for i in t.items] + self.others + self.praise

    @property
    def praise_shown(self) -> list[Item]:
        """The warmest praise, as many as ``digest.praise`` says."""
        return self.praise[:self.praise_limit]

    @property
    def summary(self) -> str:
        """What the reader must know first, in one sentence."""
        if self.quiet:
            return "Nothing needs you today."
        parts = []
        urgent = sum(len(t.items) for t in self.urgent)
        waiting = self.waiting
        cases = len({i.case.id for i in waiting if i.case is not None})
        if cases:
            threads = len({i.thread for i in waiting})
            parts.append(f"{_n(cases, 'critical or high case')} need{'s' * (cases == 1)} a "
                         f"person ({_n(len(waiting), 'post')} in {_n(threads, 'thread')})")
        elif urgent:
            parts.append(f"{_n(urgent, 'critical or high post')}, none in an open case")
        if self.others:
            parts.append(f"{len(self.others)} {'more ' * bool(urgent)}flagged medium or low")
        if self.overdue:
            parts.append(f"{_n(self.overdue, 'case')} overdue")
        return "; ".join(parts) + "."

    @property
    def headline(self) -> str:
        """One line for a subject: what needs a person, worst first."""
        if self.quiet:
            return "nothing needs you today"
        parts = [f"{n} {s}" for s, n in self.by_severity.items() if n]
        if self.overdue:
            parts.append(f"{self.overdue} overdue")
        return ", ".join(parts)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which ``day`` starts and ends in ``zone``."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def last_whole_day(now: datetime, zone: ZoneInfo) -> date:
    """The day a digest made at ``now`` reports by default: yesterday in ``zone``, the last
    day that is over (a digest of today would miss the rest of today for good)."""
    return now.astimezone(zone).date() - timedelta(days=1)


def build(store: Store, day: date, zone: ZoneInfo, health: list[Health] | None = None, *,
          now: datetime | None = None, praise: int = 5,
          events: Sequence[WatchedEvent] = ()) -> Digest:
    """The digest of ``day`` as the store holds it at ``now``; ``health`` adds the sources that
    are broken or quiet, ``praise`` caps the praise shown, ``events`` (the launches watched)
    tell which posts are behind a storm. The monitor's alerts about itself are left out: they
    are for whoever runs it, not for the people who answer."""
    now = now or datetime.now(UTC)
    start, end = day_bounds(day, zone)
    items = [_item(row, zone, now) for row in store.flagged_between(start, end)
             if not is_system_source(row["source"])]
    attention = [i for i in items if not i.praise]
    urgent = [_behind(t, attention, events)
              for t in _threads(i for i in attention if i.severity in URGENT)]
    others = sorted((i for i in attention if i.severity not in URGENT),
                    key=lambda i: (_rank(i.severity), i.scores["compound"] or 0.0, i.post_id))
    kudos = sorted((i for i in items if i.praise),
                   key=lambda i: (-(i.scores["compound"] or 0.0), i.post_id))
    days = _days(store, day, zone)
    history = _history(days[:-1])
    counts = {s: sum(i.severity == s for i in attention) for s in SEVERITY_ORDER}
    troubled = [h for h in health or [] if h.state in ("broken", "quiet")]
    troubled.sort(key=lambda h: (h.state != "broken", h.name))
    return Digest(
        day=day, timezone=str(zone), made_at=now.astimezone(zone),
        posts=Trend(days[-1].posts, _mean(d.posts for d in history), len(history)),
        flagged=Trend(len(attention), _mean(sum(d.flags.values()) for d in history),
                      len(history)),
        negative=Trend(days[-1].negative_share, _mean(
            d.negative_share for d in history if d.negative_share is not None), len(history)),
        by_severity=counts, new_cases=store.cases_opened(start, end),
        overdue=store.cases_overdue(now), urgent=urgent, others=others,
        praise=kudos, praise_limit=praise, troubled=troubled, days=days,
        chart=daily_chart(days, day) if any(d.posts or d.flags for d in days) else None,
        unscored={code: n for code, n in sorted(store.languages_between(start, end).items())
                  if not is_scored(code)},
        themes=weekly(store, zone, day), answered=store.answered_between(*week_bounds(day, zone)))


def build_for(config: Config, store: Store, day: date, now: datetime) -> Digest:
    """``build`` with what the config says: time zone, source health, praise shown."""
    health = assess(config.sources, store.source_health(), now)
    return build(store, day, config.timezone, health, now=now,
                 praise=config.main.digest.praise,
                 events=watched(config.main.events, config.timezone, config.sources))


# --- building blocks -------------------------------------------------------------------------

def profile_url(kind: str | None, post_url: str | None, author: str | None) -> str | None:
    """The author's public profile, where the source kind says where it lives; derived from
    the post's own URL (so a self-hosted forum links to itself), None when unknown."""
    if not author or not post_url or author.strip("[]").lower() in ("deleted", "removed"):
        return None
    parts = urlsplit(post_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    origin = f"{parts.scheme}://{parts.netloc}"
    name = url_quote(author, safe="")
    if kind == "reddit":
        return f"{origin}/user/{name}"
    if kind == "hackernews":
        return f"{origin}/user?id={name}"
    if kind == "discourse":
        base = re.match(r"^(.*?)/t/[^/]+/\d+(?:/\d+)?/?$", parts.path)
        return f"{origin}{base.group(1)}/u/{name}" if base else None
    return None


def _item(row: dict[str, Any], zone: ZoneInfo, now: datetime) -> Item:
    case = None
    if row["case_id"] is not None:
        due = row["case_due_at"]
        case = CaseRef(row["case_id"], row["case_state"], row["case_assignee"],
                       due.astimezone(zone) if due else None,
                       is_overdue(row["case_state"], due, row["case_first_response_at"], now))
    tags = tuple(row["tags"] or ())
    severity = row["severity"]
    url = row["url"] if urlsplit(row["url"] or "").scheme in ("http", "https") else None
    return Item(
        post_id=row["id"], severity=severity, category=row["category"], tags=tags,
        rules=tuple(row["rules"] or ()), reasons=tuple(row["reasons"] or ()),
        source=row["source"], source_kind=row["source_kind"], title=row["title"],
        thread_title=thread_title(row["title"], row["author"], row["thread_title"]),
        text=row["text"], quote=quote(row["text"] or row["title"] or ""), author=row["author"],
        author_url=profile_url(row["source_kind"], row["url"], row["author"]), url=url,
        published_at=row["published_at"].astimezone(zone),
        flagged_at=row["flagged_at"].astimezone(zone),
        thread=f"{row['source']}\0{row['thread_id'] or row['external_id']}", case=case,
        scores={k: row[k] for k in (*SHOWN, "worst_sentence")},
        praise=is_praise(severity, row["category"], tags))


def _threads(items: Iterable[Item]) -> list[Thread]:
    """Posts grouped by thread, each led by its worst post (the latest of equals, as a case
    is shown in the queue); the worst threads first, a storm first of all among them."""
    grouped: dict[str, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.thread, []).append(item)
    threads = []
    for members in grouped.values():
        members.sort(key=_worst_first)
        first = min(members, key=lambda i: (i.published_at, i.post_id))
        title = next((i.thread_title for i in members if i.thread_title), None)
        threads.append(Thread(quote(title, 120) if title else None, first.url, first.source,
                              tuple(members)))
    threads.sort(key=lambda t: (_rank(t.severity), not t.storm, -len(t.items),
                                min(i.scores["compound"] or 0.0 for i in t.items)))
    return threads


def _behind(thread: Thread, items: Sequence[Item], events: Sequence[WatchedEvent]) -> Thread:
    """A storm's thread with the posts behind it: the day's flagged posts about its launch
    published since the storm began (as the storm counted them, and as it holds back their
    notices). Cheap: the day's posts are at hand, and no relation is stored for them."""
    event = find_event(events, thread.source.removeprefix(STORM_SOURCE)) \
        if thread.storm else None
    if event is None:
        return thread
    began = min(i.published_at for i in thread.items)
    behind = [i for i in items if not i.storm and i.published_at >= began
              and event.mentions(i.source, i.title, i.text)]
    return replace(thread, behind=tuple(sorted(behind, key=_worst_first)))


def _worst_first(item: Item) -> tuple[int, float, int]:
    return _rank(item.severity), -item.published_at.timestamp(), -item.post_id


def _days(store: Store, day: date, zone: ZoneInfo) -> list[Day]:
    """The chart's days, the digest's day last."""
    dates = [day - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    windows = [day_bounds(d, zone) for d in dates]
    counts = store.post_counts(windows)
    flags: dict[date, dict[str, int]] = {d: {} for d in dates}
    for row in store.flag_labels_between(windows[0][0], windows[-1][1]):
        if is_praise(row["severity"], row["category"], row["tags"] or ()):
            continue
        local = row["flagged_at"].astimezone(zone).date()
        if local in flags:
            flags[local][row["severity"]] = flags[local].get(row["severity"], 0) + 1
    return [Day(d, c.read, c.negative / c.scored if c.scored else None, flags[d])
            for d, c in zip(dates, counts, strict=True)]


def flagged_days(store: Store, since: datetime, until: datetime,
                 zone: ZoneInfo) -> dict[date, int]:
    """The posts flagged from ``since`` to ``until`` that need a person, per local day of
    ``zone``, newest first: each day's digest's own "Flagged" figure (praise and the
    monitor's alerts about itself are not counted, as in the digest). The web's digest
    archive lists these days."""
    days: Counter[date] = Counter()
    for row in store.flag_labels_between(since, until):
        if not is_praise(row["severity"], row["category"], row["tags"] or ()):
            days[row["flagged_at"].astimezone(zone).date()] += 1
    return dict(sorted(days.items(), reverse=True))


def _history(days: Sequence[Day]) -> list[Day]:
    """The last ``AVERAGE_DAYS`` before the digest's day, from the first day the store saw
    anything: a store started on Tuesday does not compare Friday with four empty days."""
    recent = list(days[-AVERAGE_DAYS:])
    while recent and not recent[0].posts and not recent[0].flags:
        recent.pop(0)
    return recent


def _mean(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return sum(found) / len(found) if found else None


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)

