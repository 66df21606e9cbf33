"""Post text cut for a digest line, a Slack message or an e-mail: whole words, one line."""

from __future__ import annotations

QUOTE_CHARS = 280


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` on one line, cut at a word boundary near ``limit``, with an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(",.;:") + " …"
