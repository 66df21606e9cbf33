"""WordPress exports (WXR, the XML of Tools > Export): each approved comment a Post.

The live collector reads a WordPress blog's comments from its comment feed,
``/comments/feed/`` (RSS 2.0, what the README tells users to watch). An imported comment must
be the post that feed later gives, so its fields are built as ``collectors/rss.py`` builds
them from that feed's item for the same comment:

- ``external_id``: the item's ``<guid>``, which WordPress writes as the post's guid +
  ``#comment-`` + comment id (``https://blog.example.com/?p=12#comment-34``), the post's guid
  being the WXR item's ``<guid>``;
- ``url``: the item's ``<link>``, the post's permalink + ``#comment-`` + id (the WXR item's
  ``<link>``; a blog that pages its comments adds ``comment-page-N/``, which a WXR does not
  say, so there the url differs, never the id);
- ``thread_id``: that link without its fragment, the post's permalink; ``parent_id``: the same,
  since an RSS comment item names no parent comment: a nested reply is threaded as the feed
  threads it, under its post;
- ``title``: the feed's "Comment on {post title} by {author}"; ``author`` the commenter's name;
- text: WordPress sends the comment through its display filters first (paragraphs, curly
  quotes); the common ones are done here (``_as_shown``) so the same words hash alike.

Only approved comments (``wp:comment_approved`` 1) on public posts are in the feed: spam,
trash, pending comments, pingbacks and trackbacks are Skipped with the reason.

Parsed streaming with defusedxml: a document type declaration (the door to entity bombs and
external entities; WordPress writes none) is refused before anything expands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urldefrag
from xml.etree.ElementTree import Element, ParseError

import zstandard
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from monitor.collectors.text import html_to_text
from monitor.errors import ConfigError
from monitor.imports import Opener, Skipped
from monitor.model import Post

_WP = "{http://wordpress.org/export/"
_COMMENT_TYPES = frozenset(("", "comment", "review"))  # in the comment feed; pingbacks too,
# but those are a site linking, not a person writing.
_PUBLIC = frozenset(("publish", "inherit"))  # inherit: an attachment, public with its post


def read(opener: Opener, path: Path, source: str) -> Iterator[Post | Skipped]:
    """Each comment of each item in a WXR file, as a Post or a Skipped."""
    name = path.name
    seen = 0
    try:
        with opener() as stream:
            events = iterparse(stream, events=("start", "end"), forbid_dtd=True,
                               forbid_entities=True, forbid_external=True)
            channel: Element | None = None
            for event, element in events:
                local = _local(element.tag)
                if event == "start":
                    if local == "channel" and channel is None:
                        channel = element
                    continue
                if local != "item" or _local_ns(element.tag) is not None:
                    continue
                seen += 1
                yield from _comments(element, source, f"{name}:item {seen}")
                if channel is not None:
                    channel.clear()  # items already read are let go: memory stays flat
                element.clear()
    except DefusedXmlException as error:
        raise ConfigError(
            f"refused: the XML declares a document type or entities ({type(error).__name__}); "
            "a WordPress export has none, and entities can expand to gigabytes "
            "(an 'entity bomb')", file=str(path)) from None
    except ParseError as error:
        if not seen:
            raise ConfigError(f"not well-formed XML ({error}); expected a WordPress export "
                              "(WXR)", file=str(path)) from None
        yield Skipped(f"{name}:line {error.position[0]}",
                      f"the XML breaks off here ({error}); the rest of the file was not read")
    except (OSError, zstandard.ZstdError) as error:
        raise ConfigError(f"read failed after item {seen} ({error})", file=str(path)) from None


def _comments(item: Element, source: str, where: str) -> Iterator[Post | Skipped]:
    comments = [child for child in item if _wp(child, "comment")]
    if not comments:
        return
    guid = _text(item.find("guid"))
    link = _text(item.find("link"))
    post_title = _text(item.find("title"))
    status = _child_text(item, "status")
    password = _child_text(item, "post_password")
    for comment in comments:
        comment_id = _child_text(comment, "comment_id")
        here = f"{where} comment {comment_id or '?'}"
        why = _unwanted(comment, status, password)
        if why:
            yield Skipped(here, why)
            continue
        if not comment_id or not guid or not link:
            yield Skipped(here, "no comment id, or its post has no guid or link")
            continue
        published = _gmt(_child_text(comment, "comment_date_gmt"))
        if published is None:
            yield Skipped(here, "no usable comment_date_gmt")
            continue
        author = _child_text(comment, "comment_author").strip() or None
        url = f"{link}#comment-{comment_id}"
        thread = urldefrag(url).url
        shown_title = html_to_text(_texturize(post_title))
        yield Post(source=source, external_id=f"{guid}#comment-{comment_id}", url=url,
                   author=author,
                   title=f"Comment on {shown_title} by {author or 'Anonymous'}",
                   text=html_to_text(_as_shown(_child_text(comment, "comment_content"))),
                   published_at=published, thread_id=thread, parent_id=thread)


def _unwanted(comment: Element, status: str, password: str) -> str | None:
    """Why the comment feed would not show this comment, or None."""
    approved = _child_text(comment, "comment_approved").strip()
    if approved != "1":
        state = {"0": "pending moderation", "": "pending moderation"}.get(approved, approved)
        return f"not an approved comment ({state})"
    kind = _child_text(comment, "comment_type").strip()
    if kind not in _COMMENT_TYPES:
        return f"a {kind}, not a comment"
    if status and status not in _PUBLIC:
        return f"on a post that is not public ({status})"
    if password:
        return "on a password-protected post: the feed shows no text"
    return None


def _gmt(value: str) -> datetime | None:
    """``comment_date_gmt`` ("2024-03-01 09:15:00", UTC); pending comments have zeros."""
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


_BLOCKS = re.compile(r"<(?:p|div|blockquote|ul|ol|pre|table|h[1-6])[\s>]", re.IGNORECASE)
_PARAGRAPHS = re.compile(r"\n\s*\n")


def _as_shown(content: str) -> str:
    """The comment as WordPress's feed shows it, for the filters that change its words:
    ``wpautop`` (a line break a ``<br />``, a blank line a paragraph) and ``wptexturize``'s
    common cases. Markup with blocks of its own is left to html_to_text."""
    content = _texturize(content.replace("\r\n", "\n").replace("\r", "\n"))
    if _BLOCKS.search(content):
        return content
    paragraphs = [p.strip("\n") for p in _PARAGRAPHS.split(content.strip())]
    return "".join(f"<p>{p.replace(chr(10), '<br />' + chr(10))}</p>\n" for p in paragraphs)


_TEXTURE = (
    (re.compile(r"\.\.\."), "\u2026"),
    (re.compile(r"---"), "\u2014"),
    (re.compile(r" -- "), " \u2014 "),
    (re.compile(r"--"), "\u2013"),
    (re.compile(r" - "), " \u2013 "),
    (re.compile(r"(?<=\w)'(?=\w)"), "\u2019"),            # don't, it's
    (re.compile(r"(?:^|(?<=[\s(\[{\"]))'"), "\u2018"),     # an opening single quote
    (re.compile(r"'"), "\u2019"),                         # any other: closing
    (re.compile(r"(?:^|(?<=[\s(\[{]))\""), "\u201c"),      # an opening double quote
    (re.compile(r"\""), "\u201d"),
)


def _texturize(text: str) -> str:
    """The common cases of WordPress's ``wptexturize`` (ellipses, dashes, quotes), on text
    outside tags; WordPress applies more (primes, ×) that rarely occur in comments."""
    if not any(mark in text for mark in ("'", '"', "--", "...", " - ")):
        return text
    pieces = re.split(r"(<[^>]*>)", text)
    for index in range(0, len(pieces), 2):
        piece = pieces[index]
        for pattern, replacement in _TEXTURE:
            piece = pattern.sub(replacement, piece)
        pieces[index] = piece
    return "".join(pieces)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _local_ns(tag: str) -> str | None:
    return tag[1:].partition("}")[0] if tag.startswith("{") else None


def _wp(element: Element, local: str) -> bool:
    return element.tag.startswith(_WP) and _local(element.tag) == local


def _child_text(element: Element, local: str) -> str:
    for child in element:
        if _wp(child, local):
            return child.text or ""
    return ""


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""
