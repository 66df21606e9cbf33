"""Reddit archive dumps: newline-delimited JSON of submissions (``RS_*``) and comments
(``RC_*``) as Pushshift and Arctic Shift publish them, one API ``data`` object per line.

An imported post later read live must be the same post, so every field is built as
``collectors/reddit.py`` builds it from the API (``tests/test_import_formats.py`` compares the
two on praw's recorded listings):

- ``external_id``: the fullname, ``name`` when the record has it, else ``t3_``/``t1_`` + id
  (older Pushshift comments carry no ``name``);
- ``url``: https://www.reddit.com + ``permalink``; without one, the collector's own fallback
  (``/comments/{id}/`` for a submission, ``/r/{sub}/comments/{link}/_/{id}/`` for a comment);
- ``thread_id``: the submission's fullname (a comment's ``link_id``); ``parent_id``: None for
  a submission, a comment's ``parent_id`` (else its ``link_id``);
- ``title``: a submission's title; a comment's ``link_title`` when the record has one, else
  the title of its submission if that was read earlier (``thread_titles``), else None;
- text through the collector's ``clean``, ``reach`` as the collector counts it.

Unlike the live collector, which never stores a deleted author's item, a dump's item whose
author deleted their account but whose words remain is kept with author None: the words are
what an import is for. A deleted or removed body has no words: Skipped, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from monitor.collectors.reddit import WEB, clean, title_text
from monitor.collectors.text import MAX_TEXT, utc_from_epoch
from monitor.imports import Skipped, json_records
from monitor.model import Post

MAX_TITLES = 2_000_000
"""Submission titles remembered for later comments at most (~200 MB): past that, comments of
newer submissions get no title rather than the import eating the machine."""

_GONE_AUTHORS = frozenset(("[deleted]", "[removed]", ""))
_GONE_WORDS = {"[deleted]": "deleted by its author", "[removed]": "removed by moderators"}


def read(lines: Iterator[tuple[int, bytes | None]], name: str, source: str,
         thread_titles: MutableMapping[str, str]) -> Iterator[Post | Skipped]:
    """Each line of a dump as a Post, or a Skipped saying why not."""
    for where, record in json_records(lines, name):
        if isinstance(record, Skipped):
            yield record
        elif not isinstance(record, dict):
            yield Skipped(where, "not one JSON object")
        else:
            try:
                yield _to_post(record, source, thread_titles)
            except _Skip as why:
                yield Skipped(where, str(why))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                yield Skipped(where, f"not a Reddit submission or comment "
                                     f"({type(error).__name__}: {error})"[:200])


class _Skip(Exception):
    """A record that is well formed but has nothing to import; the message says why."""


def _to_post(data: Mapping[str, Any], source: str,
            thread_titles: MutableMapping[str, str] | None = None) -> Post:
    """One dump record as the live collector's Post (see the module docstring); raises
    ``_Skip`` for a record with no words, KeyError/TypeError/ValueError for a broken one."""
    comment = "body" in data or "link_id" in data
    item_id = str(data["id"])
    fullname = str(data.get("name") or ("t1_" if comment else "t3_") + item_id)
    title = None if comment else _title(data.get("title")) or None
    if title is not None and thread_titles is not None and (
            len(thread_titles) < MAX_TITLES or fullname in thread_titles):
        thread_titles[fullname] = title  # even of a removed post: its comments may remain
    words = data.get("body" if comment else "selftext")
    if isinstance(words, str):
        gone = _GONE_WORDS.get(words.strip())
        if gone is None and words.startswith("[ Removed by Reddit"):
            gone = "removed by Reddit"
        if gone:
            raise _Skip(f"{'comment' if comment else 'submission'} {gone}: no words to score")
    published = utc_from_epoch(data.get("created_utc"))
    if published is None:
        raise _Skip(f"no usable created_utc ({str(data.get('created_utc'))[:40]!r})")
    author = data.get("author")
    author = None if author is None or str(author) in _GONE_AUTHORS else str(author)
    if not comment:
        text = _clean(words)
        if title is None and not text:
            raise _Skip("submission with neither title nor text")
        permalink = data.get("permalink") or f"/comments/{item_id}/"
        return Post(source=source, external_id=fullname, url=WEB + permalink, author=author,
                    title=title, text=text, published_at=published, thread_id=fullname,
                    parent_id=None, reach=_reach(data.get("score"), data.get("num_comments")))
    if not isinstance(words, str):
        raise _Skip("comment without a body")
    link_id = str(data["link_id"])
    if not link_id.startswith("t3_"):
        raise ValueError(f"link_id {link_id[:30]!r} is not a submission's fullname")
    permalink = data.get("permalink") or (
        f"/r/{data['subreddit']}/comments/{link_id.removeprefix('t3_')}/_/{item_id}/")
    title = _title(data.get("link_title")) or (
        thread_titles.get(link_id) if thread_titles is not None else None) or None
    return Post(source=source, external_id=fullname, url=WEB + permalink, author=author,
                title=title, text=_clean(words), published_at=published, thread_id=link_id,
                parent_id=str(data.get("parent_id") or link_id),
                reach=_reach(data.get("score"), None))


def _reach(score: Any, replies: Any) -> int | None:
    """As the collector counts it: score plus replies, never below 0 (dumps carry no replies
    of a comment, as the live /comments listing carries none)."""
    if not isinstance(score, int):
        return None
    return max(0, score + (replies if isinstance(replies, int) else 0))


_NEEDS_CLEAN = re.compile("[&\\[\n\t\r\f\v\u00a0\u00ad\u200b\u200c\u200d\u2060\ufeff]|  ")
_NEEDS_TIDY = re.compile("[\n\t\r\f\v\u00a0]|  ")


def _clean(markdown: Any) -> str:
    """``reddit.clean``, without its work when the text has nothing for it to do (no entity,
    link, line break, run of spaces or invisible character): most comments, at a million
    lines a file. The tests hold the two equal."""
    if type(markdown) is str and len(markdown) <= MAX_TEXT and not _NEEDS_CLEAN.search(markdown):
        return markdown.strip()
    return clean(markdown)


def _title(title: Any) -> str:
    """``reddit.title_text``, the same way."""
    if type(title) is str and len(title) <= MAX_TEXT and not _NEEDS_TIDY.search(title):
        return title.strip()
    return title_text(title)
