"""Launches to watch (config ``events``): which posts talk about one, and when it happened.

Shared by the backlash report, storm detection and inhibition, so all three agree on what
"a post about the new editor" means: a keyword as a whole word or phrase, in the title or the
text, case-insensitive, from the event's sources (or sources with its tags) if it names any.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config import Config, Event, LaunchMail, Source
from monitor.model import STORM_SOURCE, is_storm_source

NEGATIVE = -0.05
"""VADER's own line: a compound at or below it reads as negative."""

LEAK_GRACE = timedelta(days=1)
"""A case opened this long before a launch may still be about it: news of a launch leaks."""

FORMING_WAIT = 120.0
"""Seconds a notice of a negative post about a launch in its window waits at least: long
enough for the storm detector (every minute in the daemon) to see a storm form and fold the
first wave into the storm's one notice, instead of paging once per post."""


@dataclass(frozen=True)
class WatchedEvent:
    name: str
    launch: datetime          # UTC
    days: int
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    sources: frozenset[str] | None  # None: every source
    mail: LaunchMail | None = None  # the daily e-mail of its report (``report:``), if any

    @classmethod
    def of(cls, event: Event, zone: ZoneInfo, configured: Iterable[Source] = ()) -> WatchedEvent:
        """A date without a zone is in the configured time zone."""
        launch = event.date if event.date.tzinfo else event.date.replace(tzinfo=zone)
        words = sorted({k.strip() for k in event.keywords if k.strip()}, key=len, reverse=True)
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(
            r"\s+".join(map(re.escape, w.split())) for w in words) + r")(?!\w)", re.IGNORECASE)
        chosen: set[str] | None = None
        if event.sources or event.tags:
            chosen = set(event.sources) | {s.name for s in configured
                                           if set(s.tags) & set(event.tags)}
        return cls(event.name, launch.astimezone(UTC), event.days, tuple(words), pattern,
                   None if chosen is None else frozenset(chosen), event.report)

    @property
    def storm_source(self) -> str:
        return STORM_SOURCE + self.name

    @property
    def window(self) -> tuple[datetime, datetime]:
        """The days before the launch and the days after it."""
        return self.launch - timedelta(days=self.days), self.launch + timedelta(days=self.days)

    def mentions(self, source: str, title: str | None, text: str) -> bool:
        if is_storm_source(source):
            return False
        if self.sources is not None and source not in self.sources:
            return False
        return self.names(title, text)

    def may_storm(self, post_source: str, title: str | None, text: str, compound: float,
                  now: datetime) -> bool:
        """Whether a post could be part of a storm forming about this launch: negative, about
        it, and the launch's window open."""
        start, end = self.window
        return compound <= NEGATIVE and start <= now <= end and self.mentions(
            post_source, title, text)

    @property
    def case_span(self) -> tuple[datetime, datetime]:
        """When a case about this launch may have opened: from a leak before it to the end
        of its window."""
        return self.launch - LEAK_GRACE, self.window[1]

    def about_case(self, opened_at: datetime, posts: Iterable[Mapping[str, Any]]) -> bool:
        """Whether a case is about this launch: opened in ``case_span``, with a post that
        mentions it. The inbox's launch view asks the same in SQL (``monitor.store.web``);
        a storm's own case is about its launch whatever its posts say."""
        start, end = self.case_span
        return start <= opened_at <= end and any(
            self.mentions(p["source"], p.get("title"), p["text"]) for p in posts)

    def names(self, title: str | None, text: str | None) -> bool:
        """Whether a keyword is in the title or the text, as a whole word or phrase."""
        return bool((text and self.pattern.search(text)) or (title and self.pattern.search(title)))


def watched(config_events: Iterable[Event], zone: ZoneInfo,
            configured: Iterable[Source] = ()) -> list[WatchedEvent]:
    configured = list(configured)
    return [WatchedEvent.of(e, zone, configured) for e in config_events]


def case_launches(config: Config, event: str | None, opened_at: datetime,
                  posts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The configured launches a case is about, the latest first: a storm's own (``event``),
    or those it was opened around with a post that mentions them (``about_case``). The case
    page shows them, and a reply's {event} names the first: never a launch the case is not
    about."""
    if event:
        return [event]
    posts = list(posts)
    found = [e for e in watched(config.main.events, config.timezone, config.sources)
             if e.about_case(opened_at, posts)]
    return [e.name for e in sorted(found, key=lambda e: e.launch, reverse=True)]


def find_event(events: Iterable[WatchedEvent], name: str) -> WatchedEvent | None:
    """By name, case-insensitive."""
    return next((e for e in events if e.name.casefold() == name.casefold()), None)

