"""The daily flagged-posts digest, written as HTML and Markdown into ``reports/``.

Built from the store, not from a pass, so a flag raised on a day is in that day's digest
whenever the digest is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.health import Health
from monitor.quoting import quote
from monitor.store import Store

SEVERITY_ORDER = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Digest:
    day: date
    timezone: str
    posts_read: int
    flagged: list[dict[str, Any]]
    troubled: list[Health] = field(default_factory=list)

    @property
    def by_severity(self) -> dict[str, int]:
        counts = {s: 0 for s in SEVERITY_ORDER}
        for row in self.flagged:
            counts[row["severity"]] = counts.get(row["severity"], 0) + 1
        return counts


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which ``day`` starts and ends in ``zone``."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def build(store: Store, day: date, zone: ZoneInfo, health: list[Health] | None = None) -> Digest:
    """The digest of ``day``; ``health`` adds the sources that are broken or quiet."""
    start, end = day_bounds(day, zone)
    rows = store.flagged(start, end)
    for row in rows:
        row["quote"] = quote(row["text"])
        row["local_time"] = row["published_at"].astimezone(zone)
    troubled = [h for h in health or [] if h.state in ("broken", "quiet")]
    troubled.sort(key=lambda h: (h.state != "broken", h.name))
    return Digest(day, str(zone), store.count_posts_seen(start, end), rows, troubled)


def write(digest: Digest, folder: Path) -> list[Path]:
    """Write ``YYYY-MM-DD.html`` and ``.md`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in ("html", "md"):
        path = folder / f"{digest.day.isoformat()}.{suffix}"
        text = _env().get_template(f"digest.{suffix}.j2").render(d=digest)
        tmp = path.with_suffix(f".{suffix}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a digest
        written.append(path)
    return written


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(value: Any) -> str:
    """Post text shown literally in Markdown: no links, markup or raw HTML from a post."""
    return _MD_SPECIAL.sub(r"\\\1", str(value))


def _env() -> Environment:
    env = Environment(loader=PackageLoader("monitor.reports", "templates"),
                      autoescape=select_autoescape(["html.j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["md"] = md_escape
    return env
