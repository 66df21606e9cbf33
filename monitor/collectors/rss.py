"""RSS, Atom, RDF and JSON Feed sources, blog comment feeds included.

WordPress publishes every comment at ``/comments/feed/`` (use that as a source ``url``) and
each post's comments at the feed named in the post's ``wfw:commentRss``; ``follow_comments``
also polls those per-post feeds, each with its own conditional GET.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urldefrag, urljoin

import feedparser
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from monitor.collectors.http import HttpClient, Response, redact
from monitor.collectors.text import html_to_text, utc_from_struct
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post

log = logging.getLogger(__name__)


class RssOptions(BaseModel):
    """Keys of an ``rss`` source besides name/kind/interval/tags."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    follow_comments: bool = False
    max_comment_feeds: int = Field(default=20, ge=0, le=500)


class RssCollector:
    Options: ClassVar[type[BaseModel]] = RssOptions

    def __init__(self, name: str, options: RssOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http

    def collect(self, cursor: Cursor | None) -> Fetch:
        cursor = dict(cursor or {})
        fetched_at = datetime.now(UTC)
        main = _poll(self.http, str(self.options.url), cursor.get("feed"))
        problems: list[str] = []
        posts: list[Post] = []
        comment_feeds: dict[str, dict[str, Any]] = dict(cursor.get("comments") or {})
        if main.parsed is not None:
            problems += main.problems
            for entry in main.parsed.entries:
                try:
                    posts.append(self._post(entry, main.url, fetched_at))
                except Exception as error:  # one bad entry never stops the rest
                    problems.append(f"skipped an entry ({type(error).__name__}: {error})")
                if self.options.follow_comments and entry.get("wfw_commentrss"):
                    feed_url = urljoin(main.url, entry["wfw_commentrss"])
                    known = comment_feeds.pop(feed_url, {})
                    comment_feeds[feed_url] = {**known, "thread_id": _entry_id(entry, main.url),
                                               "title": html_to_text(entry.get("title")) or None}
            # Keep the newest posts' comment feeds: later entries were added last above.
            comment_feeds = dict(list(comment_feeds.items())[-self.options.max_comment_feeds:])
        for feed_url, state in comment_feeds.items() if self.options.follow_comments else ():
            try:
                polled = _poll(self.http, feed_url, state.get("feed"))
            except SourceError as error:
                problems.append(f"comment feed failed: {error}")
                continue
            state["feed"] = polled.validators
            if polled.parsed is None:
                continue
            for entry in polled.parsed.entries:
                try:
                    post = self._post(entry, polled.url, fetched_at)
                except Exception as error:
                    problems.append(f"skipped a comment ({type(error).__name__}: {error})")
                    continue
                posts.append(_as_comment(post, state["thread_id"], state.get("title")))
        new_cursor: dict[str, Any] = {"feed": main.validators}
        if self.options.follow_comments:
            new_cursor["comments"] = comment_feeds
        unchanged = main.parsed is None and not posts
        return Fetch(tuple(posts), new_cursor, tuple(problems), unchanged=unchanged)

    def _post(self, entry: Mapping[str, Any], base: str, fetched_at: datetime) -> Post:
        link = urljoin(base, entry.get("link") or "") if entry.get("link") else base
        published = (utc_from_struct(entry.get("published_parsed"))
                     or utc_from_struct(entry.get("updated_parsed"))
                     or utc_from_struct(entry.get("created_parsed")) or fetched_at)
        reply_to = entry.get("thr_in-reply-to") or {}
        thread_id = reply_to.get("href") or (urldefrag(link).url if "#comment" in link else None)
        comments = str(entry.get("slash_comments") or "")
        return Post(
            source=self.name,
            external_id=_entry_id(entry, base),
            url=link,
            author=(entry.get("author") or "").strip() or None,
            title=html_to_text(entry.get("title")) or None,
            text=html_to_text(_body(entry)),
            published_at=published,
            thread_id=thread_id,
            parent_id=reply_to.get("ref"),
            reach=int(comments) if comments.isdigit() else None,
        )


class _Polled:
    """One feed URL after a conditional GET: ``parsed`` is None when it did not change."""

    def __init__(self, url: str, validators: dict[str, str | None], parsed: Any = None,
                 problems: tuple[str, ...] = ()) -> None:
        self.url, self.validators, self.parsed, self.problems = url, validators, parsed, problems


def _poll(http: HttpClient, url: str, known: Mapping[str, Any] | None) -> _Polled:
    known = known or {}
    response = http.get(url, etag=known.get("etag"), last_modified=known.get("last_modified"))
    if response.not_modified:
        return _Polled(response.url, dict(known))
    digest = hashlib.sha256(response.content).hexdigest()
    validators = {"etag": response.headers.get("etag"),
                  "last_modified": response.headers.get("last-modified"), "sha256": digest}
    if digest == known.get("sha256"):  # servers' conditional GET is unreliable; bodies are not
        return _Polled(response.url, validators)
    parsed, problems = parse_feed(response)
    return _Polled(response.url, validators, parsed, problems)


def parse_feed(response: Response) -> tuple[Any, tuple[str, ...]]:
    """Parse fetched bytes; a malformed but readable feed is used, with a problem noted."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    headers.setdefault("content-location", response.url)
    # A stream, never bytes: feedparser would try bytes as a file name, a str as a URL.
    parsed = feedparser.parse(io.BytesIO(response.content), response_headers=headers)
    if not parsed.bozo:
        return parsed, ()
    reason = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
    if parsed.entries or parsed.version:
        return parsed, (f"feed is malformed but readable ({reason[:200]})",)
    kind = headers.get("content-type", "unknown type").split(";")[0]
    raise SourceError(f"not a readable feed ({kind}; {reason[:200]}) at {redact(response.url)}",
                      retryable=False)


def _entry_id(entry: Mapping[str, Any], base: str) -> str:
    if entry.get("id"):
        return str(entry["id"])
    if entry.get("link"):
        return urljoin(base, entry["link"])
    seed = f"{entry.get('title', '')}\n{_body(entry)}"
    return "sha1:" + hashlib.sha1(seed.encode("utf-8", "replace")).hexdigest()


def _body(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or []
    if contents:
        return max((c.get("value") or "" for c in contents), key=len)
    return entry.get("summary") or entry.get("description") or ""


def _as_comment(post: Post, thread_id: str, title: str | None) -> Post:
    from dataclasses import replace

    return replace(post, thread_id=thread_id, parent_id=post.parent_id or thread_id,
                   title=title or post.title)
