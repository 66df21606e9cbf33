"""Post text cut for a digest line, a Slack message or an e-mail: whole words, one line; and
text from outside made safe to print on a terminal."""

from __future__ import annotations

import re

QUOTE_CHARS = 280

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
BIDI_CONTROLS = re.compile(f"[{_BIDI}]")
"""The bidi controls: marks, embeddings, overrides and isolates (they reorder what follows)."""

_UNSHOWABLE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
"""Control characters but newline and tab, and the bidi controls."""


def for_terminal(text: str) -> str:
    """``text`` from outside (a post, a server's error) as a terminal may print it: without
    control characters (an escape sequence can rewrite the screen or fake a link, a carriage
    return overwrite the line) or bidi controls (they reorder what follows); newlines and tabs
    stay."""
    return _UNSHOWABLE.sub("", text)


def one_line(text: str) -> str:
    """``text`` from outside (a post, its author) as one line of a message or a report: line
    breaks and runs of whitespace become one space (an author's newline cannot forge a line, a
    header or a list item), and control and bidi characters are dropped as ``for_terminal``
    drops them (a mail reader or a ``cat`` of a report would run an escape sequence)."""
    return for_terminal(" ".join(text.split()))


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` on one line, cut at a word boundary near ``limit``, with an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(",.;:") + " …"
