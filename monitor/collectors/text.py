"""Turning what services send (HTML bodies, assorted timestamps) into plain text and UTC."""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, datetime
from html.parser import HTMLParser

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
_KEEP_SPACE = frozenset(("pre", "textarea"))
_VOID = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link",
                   "menuitem", "meta", "param", "source", "track", "wbr", "basefont", "bgsound",
                   "command", "frame", "image", "isindex", "nextid", "spacer"))
_ASCII_SPACE = str.maketrans("", "", " \n\t\f\r")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str | None) -> str:
    """Plain text of an HTML fragment; scripts and styles dropped, paragraphs kept apart.

    Read by the standard library's tokenizer straight into text, no tree built (a bs4 tree
    cost six times the tokenizing, a third of a feed's parse): the text is what bs4 with
    html.parser gave. Linear in the markup; markup past ``MAX_HTML`` is not read, and
    ``CUT_MARK`` says so."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return tidy(html)
    reader = _TextReader()
    reader.feed(html[:MAX_HTML])
    reader.close()
    text = tidy(reader.text())
    if len(html) <= MAX_HTML:
        return text
    return f"{text[:MAX_TEXT - len(CUT_MARK) - 2].rstrip()}\n\n{CUT_MARK}".lstrip()


class _TextReader(HTMLParser):
    """Tokens to text as bs4's tree would read: an end tag closes the latest open element of
    its name and all opened inside it (none open: ignored), void elements hold nothing, a
    run of ASCII whitespace between tags is one space (one line break if it holds one)
    outside ``pre``; scripts, styles, templates, comments and declarations are dropped, a
    ``<br>`` is a line break and each block has a blank line around it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities decoded as HTML5 says
        self.pieces: list[str] = []
        self.data: list[str] = []
        self.open: list[str] = []  # the stack of open elements; a count per name beside it
        self.counts: dict[str, int] = {}
        self.skipping = 0  # open elements whose content is dropped
        self.keeping = 0  # open pre/textarea: whitespace kept as it is

    def text(self) -> str:
        self.flush()
        return "".join(self.pieces)

    def flush(self) -> None:
        """One text run ended (a tag, comment or declaration follows): keep it."""
        if not self.data:
            return
        run = "".join(self.data)
        self.data.clear()
        if self.skipping:
            return
        if not self.keeping and not run.translate(_ASCII_SPACE):
            run = "\n" if "\n" in run else " "
        self.pieces.append(run)

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.flush()
        if tag in _VOID:
            if tag == "br" and not self.skipping:
                self.pieces.append("\n")
            return
        self.open.append(tag)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in _KEEP_SPACE:
            self.keeping += 1
        if tag in _BLOCK and not self.skipping:
            self.pieces.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        self.flush()
        if not self.counts.get(tag):  # never scanned for: each scan pops what it passes
            return
        while self.open:
            name = self.open.pop()
            self.counts[name] -= 1
            if name in _SKIPPED:
                self.skipping -= 1
            elif name in _KEEP_SPACE:
                self.keeping -= 1
            if name in _BLOCK and not self.skipping:
                self.pieces.append("\n\n")
            if name == tag:
                return

    def unknown_decl(self, data: str) -> None:
        self.flush()
        if data[:6].upper() == "CDATA[" and not self.skipping:
            self.pieces.append(data[6:])

    def handle_comment(self, data: str) -> None:
        self.flush()

    def handle_decl(self, decl: str) -> None:
        self.flush()

    def handle_pi(self, data: str) -> None:
        self.flush()


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
