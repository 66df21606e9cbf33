"""Fix everything twice: complaint themes tracked across weeks, linked to the cases they come
from, marked fixed, and called out when they come back.

``track`` groups the complaint posts of the cases of the last days (``group_complaints``,
English and French together) and files each group as a theme with its cases
(``monitor.store.themes``). The daemon runs it every day, ``monitor run`` when the last run is
a day old (``track_if_due``). ``weekly`` is what the digest shows: the themes of a week, their
trend against the week before, and the fixed ones that came back. ``export_records``,
``to_csv`` and ``to_json`` are ``monitor themes export``'s, for the product team's tracker.

**A theme's key** (``theme_key``) is the words of its label (the group's first
``KEY_PHRASES`` phrases), folded (lower case, no accents), without a plural -s, sorted and
joined by "-": "Dark mode / contrast" and "contrast / dark modes" are both
``contrast-dark-mode``, so the same complaint found again next week is the same theme. The
grouping runs again on each window, and may name the same complaint a little differently;
so a group takes an existing theme, in this order, when (1) its key is that theme's, (2) half
its cases or more are already linked to that theme (the windows overlap: most of a week's
posts are grouped again the next day), or (3) that theme's key words, two at least, are all
among the words of the group's phrases (``dark-mode`` for "contrast / dark mode / settings").

Limits: a complaint named by other words, with new cases only (next month's posts about "night
theme"), is a new theme; two complaints that share their first two phrases are one; the
phrases are English for a group in both languages, French for a French one, so the same
complaint written only in French, then only in English, makes two themes unless the term map
(``monitor/scoring/languages/fr/terms.txt``) translates its words.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from monitor import csvsafe
from monitor.scoring.lexicons import fold
from monitor.store.themes import FoundTheme, Link

KEY_PHRASES = 2
KEY_CHARS = 200  # the column's width
TRACK_EVERY = timedelta(days=1)
MAX_THEMES = 20  # groups kept per tracking run
MAX_POSTS = 2000  # the latest complaint posts grouped per run: memory grows with their square
WORD = re.compile(r"[^\W\d_]{2,}")
TRENDS = ("new", "up", "steady", "down")


def _word(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(phrases: Sequence[str]) -> set[str]:
    return {_word(w) for phrase in phrases for w in WORD.findall(fold(phrase))}


def theme_key(label: str | Sequence[str]) -> str:
    """The stable key of a theme from its label ("dark mode / contrast") or its phrases; what
    a user types (a key, a label, its words in any order) gives the same key."""
    phrases = label.split("/") if isinstance(label, str) else list(label)[:KEY_PHRASES]
    return "-".join(sorted(_words(phrases)))[:KEY_CHARS]


@dataclass(frozen=True)
class Tracked:
    """What a tracking run did."""

    posts: int  # complaint posts grouped
    themes: int  # themes found
    links: int  # links of cases made or moved to a later post


def track(store: Any, config: Any, now: datetime, days: int = 7) -> Tracked:
    """Group the complaint posts of cases published in the last ``days`` and file the themes
    and their links. The configured launches' keywords are ``launch_words``: a launch's name,
    which most posts use, names no theme."""
    from monitor.backlash.themes import group_complaints  # scikit-learn: only when tracking

    rows = store.complaint_posts(now - timedelta(days=days), now)[-MAX_POSTS:]
    by_post = {r["post_id"]: r for r in rows}
    keywords = [k for event in config.main.events for k in event.keywords]
    groups = group_complaints(
        [(r["post_id"], "\n".join(filter(None, (r["title"], r["text"])))) for r in rows],
        max_groups=MAX_THEMES, launch_words=keywords)
    linked = store.themes_of_cases(sorted({r["case_id"] for r in rows}))
    known = {t["key"] for t in store.list_themes()}
    found: dict[str, tuple[str, dict[int, Link]]] = {}
    for group in groups:
        links = [Link(by_post[p]["case_id"], p, by_post[p]["published_at"]) for p in group.keys]
        key = _existing(group.phrases, [link.case_id for link in links], known, linked)
        label, latest = found.setdefault(key, (group.label, {}))
        for link in links:
            if link.case_id not in latest or latest[link.case_id].at < link.at:
                latest[link.case_id] = link
        known.add(key)
    themes = [FoundTheme(key, label, tuple(latest.values()))
              for key, (label, latest) in found.items()]
    return Tracked(len(rows), len(themes), store.save_themes(themes, now))


def _existing(phrases: Sequence[str], case_ids: Sequence[int], known: set[str],
              linked: dict[int, set[str]]) -> str:
    """The key of the theme a group is (see the module docstring), or its own new key."""
    key = theme_key(phrases) or "theme"
    if key in known:
        return key
    shared = Counter(theme for case_id in set(case_ids) for theme in linked.get(case_id, ()))
    most = min(shared, key=lambda theme: (-shared[theme], theme), default=None)
    if most is not None and 2 * shared[most] >= len(set(case_ids)):
        return most
    words = _words(phrases)
    within = [k for k in known if len(k.split("-")) >= 2 and set(k.split("-")) <= words]
    return min(within, key=lambda k: (-len(k.split("-")), k)) if within else key


def track_if_due(store: Any, config: Any, now: datetime) -> Tracked | None:
    """``track`` when the last run is ``TRACK_EVERY`` old (or there was none); else None,
    after one cheap read: ``monitor run`` and the daemon's hourly look call it."""
    last = store.themes_tracked_at()
    if last is not None and now - last < TRACK_EVERY:
        return None
    return track(store, config, now)


# --- the week ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThemeWeek:
    """A theme over a period and the one before it (a week for the digest, ``--days`` for
    ``monitor themes list``).

    ``trend``: "new" (first seen in the period, nothing before), "up", "down" or "steady"
    against the period before. ``back``: cases that came for it after it was marked fixed;
    ``returning``: it is marked fixed and came back, what the digest calls out.
    """

    key: str
    label: str
    this_week: int  # cases that came for it in the period
    last_week: int  # ... in the period before
    total: int  # cases ever linked
    trend: str
    first_seen_at: datetime
    last_seen_at: datetime
    fixed_at: datetime | None
    fixed_in: str | None
    fixed_note: str | None
    fixed_by: str | None
    back: int

    @property
    def returning(self) -> bool:
        return self.fixed_at is not None and self.back > 0


def summaries(store: Any, start: datetime, end: datetime) -> list[ThemeWeek]:
    """Every theme over [start, end) and the period of the same length before it, most cases
    first (then most before, then by key)."""
    this = store.theme_counts(start, end)
    last = store.theme_counts(start - (end - start), start)
    back = store.themes_back()
    found = []
    for t in store.list_themes():
        now, before = this.get(t["key"], 0), last.get(t["key"], 0)
        trend = ("new" if now and not before and t["first_seen_at"] >= start else
                 "up" if now > before else "down" if now < before else "steady")
        found.append(ThemeWeek(
            t["key"], t["label"], now, before, t["cases"], trend, t["first_seen_at"],
            t["last_seen_at"], t["fixed_at"], t["fixed_in"], t["fixed_note"], t["fixed_by"],
            back.get(t["key"], 0)))
    return sorted(found, key=lambda w: (-w.this_week, -w.last_week, w.key))


def week_bounds(week_end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the seven days of ``zone`` ending with ``week_end``."""
    start = datetime.combine(week_end - timedelta(days=6), time(), zone)
    end = datetime.combine(week_end + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def weekly(store: Any, zone: tzinfo, week_end: date) -> list[ThemeWeek]:
    """For the digest: the themes with cases in the week that ends with ``week_end`` (a day
    of ``zone``, included) or in the week before, most cases first, and every fixed theme
    that came back (``returning``: call it out) whenever its cases came."""
    start, end = week_bounds(week_end, zone)
    return [w for w in summaries(store, start, end) if w.this_week or w.last_week or w.returning]


# --- export --------------------------------------------------------------------------------

EXPORT_VERSION = 1
FIELDS = ("key", "label", "cases_total", "cases_this_week", "cases_last_week", "trend",
          "first_seen_at", "last_seen_at", "fixed_at", "fixed_in", "fixed_note", "fixed_by",
          "back_since_fix", "returning", "case_ids")


def export_records(store: Any, now: datetime, days: int = 7) -> list[dict[str, Any]]:
    """One record per theme (``FIELDS``, times UTC ISO 8601), over the last ``days``."""
    records = []
    for w in summaries(store, now - timedelta(days=days), now):
        records.append({
            "key": w.key, "label": w.label, "cases_total": w.total,
            "cases_this_week": w.this_week, "cases_last_week": w.last_week, "trend": w.trend,
            "first_seen_at": _iso(w.first_seen_at), "last_seen_at": _iso(w.last_seen_at),
            "fixed_at": _iso(w.fixed_at),
            "fixed_in": w.fixed_in, "fixed_note": w.fixed_note, "fixed_by": w.fixed_by,
            "back_since_fix": w.back, "returning": w.returning,
            "case_ids": sorted(c["id"] for c in store.theme_cases(w.key))})
    return records


def to_json(records: list[dict[str, Any]], now: datetime, days: int = 7) -> str:
    """The export's JSON document (the webhook's body): stable keys, version-numbered."""
    return json.dumps({"version": EXPORT_VERSION, "exported_at": _iso(now), "days": days,
                       "themes": records}, ensure_ascii=False, indent=2)


def to_csv(records: list[dict[str, Any]]) -> str:
    """One row per theme; case ids joined by "; "; a cell a spreadsheet would run as a
    formula (a label anyone's post may have given it) is made text (``monitor.csvsafe``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = {**record, "case_ids": "; ".join(map(str, record["case_ids"]))}
        writer.writerow({k: csvsafe.cell(v) if isinstance(v, str) else v
                         for k, v in row.items()})
    return out.getvalue()


def post(url: str, body: str, secret: str | None, headers: dict[str, str] | None = None,
         timeout: float = 10.0, now: datetime | None = None, *, store_id: str) -> None:
    """POST an export's JSON, signed as the webhook receiver signs (``X-Monitor-Signature``)
    when there is a ``secret``; a DeliveryError says why it failed. Its Idempotency-Key
    (``themes:<stamp>@<store id>``) holds the store's id (``Store.store_id``), as a notice's
    key does, so an intake never drops the export of another installation as a duplicate."""
    from monitor.receivers.webhook import post_json, sign

    data = body.encode()
    stamp = int((now or datetime.now(UTC)).timestamp())
    sent = {**(headers or {}), "Idempotency-Key": f"themes:{stamp}@{store_id}",
            "X-Monitor-Timestamp": str(stamp)}
    if secret:
        sent["X-Monitor-Signature"] = sign(secret, data, stamp)
    post_json(url, data, sent, timeout)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
