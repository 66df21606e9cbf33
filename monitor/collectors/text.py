"""Turning what services send (HTML bodies, assorted timestamps) into plain text and UTC."""

from __future__ import annotations

import calendar
import re
import time
import warnings
from datetime import UTC, datetime

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

MAX_TEXT = 100_000
"""Characters kept of one post: a hostile multi-megabyte body must not bloat the store."""

MAX_HTML = 4 * MAX_TEXT
"""Characters of markup parsed for one post: tag-dense HTML costs seconds per megabyte."""

_BLOCK = ("p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "tr")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment; scripts and styles dropped, paragraphs kept apart."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return tidy(html)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        # The newline: html.parser drops a bare "&T" at the very end ("AT&T" -> "ATT").
        soup = BeautifulSoup(html[:MAX_HTML] + "\n", "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    for br in soup("br"):
        br.replace_with("\n")
    for block in soup(_BLOCK):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    return tidy(soup.get_text())


def tidy(text: str) -> str:
    """Spaces collapsed, lines trimmed, blank runs cut to one, length capped at MAX_TEXT."""
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()[:MAX_TEXT]


def utc_from_struct(value: time.struct_time | None) -> datetime | None:
    """feedparser's ``*_parsed`` values are already UTC struct_times."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None



def utc_from_epoch(seconds: float | int | str | None) -> datetime | None:
    """Unix seconds (Reddit's ``created_utc``, Algolia's ``created_at_i``) as aware UTC."""
    try:
        return datetime.fromtimestamp(float(seconds), UTC) if seconds is not None else None
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def utc_from_iso(value: str | None) -> datetime | None:
    """An ISO 8601 / RFC 3339 time (``Z`` allowed); a naive one is taken as UTC."""
    if not value or not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
