"""Turning what services send (HTML bodies, assorted timestamps) into plain text and UTC."""

from __future__ import annotations

import calendar
import re
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

from bs4 import BeautifulSoup, CData, MarkupResemblesLocatorWarning, NavigableString, Tag
from bs4.element import PageElement

MAX_TEXT = 100_000
"""Characters kept of one post: a hostile multi-megabyte body must not bloat the store."""

MAX_HTML = 256 * 1024
"""Characters of markup read of one post (256 KiB): parsing is linear, but a 10 MB entry would
still cost seconds and hundreds of MB for text cut to ``MAX_TEXT`` anyway."""

CUT_MARK = "[cut: entry over 256 KiB]"
"""Ends the text of a post whose markup was cut at ``MAX_HTML``, so a reader knows."""

_BLOCK = frozenset(("p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
                    "tr"))
_SKIPPED = frozenset(("script", "style", "noscript", "template"))
_TEXT_TYPES = (NavigableString, CData)  # what get_text() reads: no comments, no doctype
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment; scripts and styles dropped, paragraphs kept apart.

    Linear in the markup: the tree is read in one pass, never edited (bs4 finds an element's
    place among its siblings by scanning them, so inserting a break beside each of 10,000
    paragraphs took seconds). Markup past ``MAX_HTML`` is not read; ``CUT_MARK`` says so."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return tidy(html)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        # The newline: html.parser drops a bare "&T" at the very end ("AT&T" -> "ATT").
        soup = BeautifulSoup(html[:MAX_HTML] + "\n", "html.parser")
    text = tidy("".join(_text_pieces(soup)))
    if len(html) <= MAX_HTML:
        return text
    return f"{text[:MAX_TEXT - len(CUT_MARK) - 2].rstrip()}\n\n{CUT_MARK}".lstrip()


def _text_pieces(soup: BeautifulSoup) -> Iterator[str]:
    """The document's strings in order, a line break for ``<br>`` and a blank line around
    each block; an explicit stack, so nesting 100,000 deep costs no recursion."""
    todo: list[PageElement | str] = list(reversed(soup.contents))
    while todo:
        node = todo.pop()
        if type(node) is str:  # a block's closing blank line
            yield node
        elif isinstance(node, Tag):
            if node.name in _SKIPPED:
                continue
            if node.name == "br":
                yield "\n"
                continue
            if node.name in _BLOCK:
                yield "\n\n"
                todo.append("\n\n")
            todo.extend(reversed(node.contents))
        elif type(node) in _TEXT_TYPES:
            yield str(node)


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
