"""RSS, Atom, RDF and JSON Feed sources, blog comment feeds included.

WordPress publishes every comment at ``/comments/feed/`` (use that as a source ``url``) and
each post's comments at the feed named in the post's ``wfw:commentRss``; ``follow_comments``
also polls those per-post feeds, each with its own conditional GET.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urldefrag, urljoin

import feedparser
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from monitor.collectors.http import (
    DeadlineExceeded,
    HttpClient,
    Response,
    on_allowed_host,
    redact,
    time_left,
)
from monitor.collectors.text import html_to_text, utc_from_struct
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class RssOptions(BaseModel):
    """Keys of an ``rss`` source besides name/kind/interval/tags."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl = Field(description="the feed; for WordPress comments use "
                         "`https://blog.example.com/comments/feed/`")
    follow_comments: bool = Field(False, description=(
        "also poll each entry's own comment feed (`wfw:commentRss`, as WordPress publishes per "
        "post); comments keep the post as their thread"))
    max_comment_feeds: int = Field(default=20, ge=0, le=500, description=(
        "how many per-post comment feeds (the newest posts') are followed"))
    allow_hosts: list[str] = Field(default_factory=list, description=(
        "other hosts (`host` or `host:port`) the feed may redirect to and comment feeds may "
        "be on; none: only the feed's own host"))


class RssCollector:
    Options: ClassVar[type[BaseModel]] = RssOptions

    parse_pool: ParsePool | None = None
    """Set by the pipeline for a pass of many feeds: documents are read (parsed, entries made
    posts) in its worker processes, on every core; None: on the collecting thread."""

    def __init__(self, name: str, options: RssOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http

    def collect(self, cursor: Cursor | None) -> Fetch:
        cursor = dict(cursor or {})
        fetched_at = datetime.now(UTC)
        home, allow = str(self.options.url), self.options.allow_hosts

        def read(response: Response) -> _Read:
            args = (response, self.name, fetched_at, self.options.follow_comments)
            if self.parse_pool is None:
                return read_feed(*args)
            return self.parse_pool.run(read_feed, *args)

        main = _poll(self.http, home, cursor.get("feed"), allow, read)
        problems: list[str] = []
        posts: list[Post] = []
        # Copies: the states are updated below, and the caller's cursor must stay as it was.
        comment_feeds: dict[str, dict[str, Any]] = {
            url: dict(state) for url, state in (cursor.get("comments") or {}).items()}
        if main.read is not None:
            problems += main.read.problems
            for entry in main.read.entries:
                if entry.post is not None:
                    posts.append(entry.post)
                else:  # one bad entry never stops the rest
                    problems.append(f"skipped an entry ({entry.error})")
            for entry in _oldest_first(main.read.entries, _read_date) \
                    if self.options.follow_comments else ():
                if entry.comments is not None:
                    feed_url, thread_id, title = entry.comments
                    if not on_allowed_host(feed_url, home, allow):  # a feed names any URL
                        problems.append(f"comment feed {redact(feed_url)} is on another host; "
                                        "not followed (see allow_hosts)")
                        continue
                    known = comment_feeds.pop(feed_url, {})
                    comment_feeds[feed_url] = {**known, "thread_id": thread_id, "title": title}
            # Keep the newest posts' comment feeds: they were (re)inserted last above.
            limit = self.options.max_comment_feeds
            comment_feeds = dict(list(comment_feeds.items())[-limit:] if limit else [])
        for feed_url, state in comment_feeds.items() if self.options.follow_comments else ():
            if not on_allowed_host(feed_url, home, allow):  # remembered before allow_hosts shrank
                continue
            try:
                polled = _poll(self.http, feed_url, state.get("feed"), allow, read)
            except SourceError as error:
                problems.append(f"comment feed failed: {error}")
                continue
            state["feed"] = polled.validators
            if polled.read is None:
                continue
            for entry in polled.read.entries:
                if entry.post is None:
                    problems.append(f"skipped a comment ({entry.error})")
                    continue
                posts.append(_as_comment(entry.post, state["thread_id"], state.get("title")))
        new_cursor: dict[str, Any] = {"feed": main.validators}
        if self.options.follow_comments:
            new_cursor["comments"] = comment_feeds
        unchanged = main.read is None and not posts
        return Fetch(tuple(posts), new_cursor, tuple(problems), unchanged=unchanged)


def _post(entry: Mapping[str, Any], base: str, fetched_at: datetime, source: str) -> Post:
    link = urljoin(base, entry.get("link") or "") if entry.get("link") else base
    published = _dated(entry) or fetched_at
    reply_to = entry.get("thr_in-reply-to") or {}
    thread_id = reply_to.get("href") or (urldefrag(link).url if "#comment" in link else None)
    parent_id = reply_to.get("ref") or thread_id  # a comment answers at least its thread
    comments = str(entry.get("slash_comments") or "")
    return Post(
        source=source,
        external_id=_entry_id(entry, base),
        url=link,
        author=_author(entry),
        title=html_to_text(entry.get("title")) or None,
        text=html_to_text(_body(entry)),
        published_at=published,
        thread_id=thread_id,
        parent_id=parent_id,
        reach=int(comments) if comments.isdigit() else None,
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    """One feed entry, read: its post (or why it was skipped), its date, and its comment
    feed as (absolute URL, the entry's id, its title as text) when comments are followed."""

    post: Post | None
    error: str | None
    dated: datetime | None
    comments: tuple[str, str, str | None] | None


@dataclass(frozen=True, slots=True)
class _Read:
    """A fetched document read into entries: plain values, cheap to send between processes
    (feedparser's result is a tree of dicts ten times the size)."""

    entries: tuple[_Entry, ...]
    problems: tuple[str, ...]


def read_feed(response: Response, source: str, fetched_at: datetime,
              comments: bool) -> _Read:
    """Parse ``response`` and make its entries posts: all of a feed's CPU, in one call that a
    ``ParsePool`` worker can run (its arguments and answer pickle; SourceError is raised as
    for any unreadable feed)."""
    parsed, problems = parse_feed(response)
    base = response.url
    entries = []
    for entry in parsed.entries:
        try:
            post, error = _post(entry, base, fetched_at, source), None
        except Exception as failure:
            post, error = None, f"{type(failure).__name__}: {failure}"
        link = None
        if comments and entry.get("wfw_commentrss"):
            link = (urljoin(base, entry["wfw_commentrss"]), _entry_id(entry, base),
                    html_to_text(entry.get("title")) or None)
        entries.append(_Entry(post, error, _dated(entry), link))
    return _Read(tuple(entries), problems)


def _read_date(entry: _Entry) -> datetime | None:
    return entry.dated


class _Polled:
    """One feed URL after a conditional GET: ``read`` is None when it did not change."""

    def __init__(self, url: str, validators: dict[str, str | None],
                 read: _Read | None = None) -> None:
        self.url, self.validators, self.read = url, validators, read


def _poll(http: HttpClient, url: str, known: Mapping[str, Any] | None,
          allow_hosts: list[str], read: Callable[[Response], _Read]) -> _Polled:
    known = known or {}
    response = http.get(url, etag=known.get("etag"), last_modified=known.get("last_modified"),
                        allow_hosts=allow_hosts)
    if response.not_modified:
        return _Polled(response.url, dict(known))
    digest = hashlib.sha256(response.content).hexdigest()
    validators = {"etag": response.headers.get("etag"),
                  "last_modified": response.headers.get("last-modified"), "sha256": digest}
    if digest == known.get("sha256"):  # servers' conditional GET is unreliable; bodies are not
        return _Polled(response.url, validators)
    return _Polled(response.url, validators, read(response))


class ParsePool:
    """Feed documents read in worker processes, so a large pass parses on every core
    (feedparser and our HTML reading are pure Python: threads share one core under the GIL).

    Workers are forked from a forkserver (a clean, single-threaded process that has imported
    this module once): never forked from the pass itself, whose threads may hold locks. A
    parse that outlives its source's deadline gets DeadlineExceeded and its worker is killed;
    a worker that dies (killed, or crashed by a document) breaks the pool, and each parse that
    was in it is tried again alone in a fresh process, so only the document that kills its
    process fails. ``close()`` ends every worker; the pipeline closes the pool at the end of
    its pass.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._alone: set[ProcessPoolExecutor] = set()  # one-off pools of parses retried
        self._closed = False

    def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """``work(*args)`` in a worker, within this thread's source deadline."""
        with self._lock:
            if self._closed:
                raise SourceError("the pass ended before the feed was parsed")
            if self._pool is None:
                self._pool = _new_pool(self.workers)
            pool = self._pool
        try:
            return self._wait(pool, pool.submit(_in_worker, work, args))
        except (BrokenProcessPool, CancelledError, RuntimeError):
            # a worker died (killed, or crashed by a document), or another thread stopped
            # the pool for a stuck parse (RuntimeError: before this submit): try it alone
            self._discard(pool)
        except OSError as error:  # no process could be started (a limit): parse it here
            log.warning("feed parsed on its fetching thread: no worker process (%s)", error)
            return work(*args)
        with self._lock:
            if self._closed:
                raise SourceError("the pass ended before the feed was parsed")
            alone = _new_pool(1)  # whatever broke the pool breaks only this one now
            self._alone.add(alone)
        try:
            return self._wait(alone, alone.submit(_in_worker, work, args))
        except (BrokenProcessPool, CancelledError, RuntimeError):
            raise SourceError("the feed could not be parsed: its parser process died "
                              "(out of memory? a crash?)") from None
        finally:
            with self._lock:
                self._alone.discard(alone)
            _end(alone)

    def _wait(self, pool: ProcessPoolExecutor, future: Future[Any]) -> Any:
        left = time_left()
        try:
            answer = future.result(timeout=None if left is None else max(0.0, left))
        except FutureTimeout:
            self._discard(pool)  # its worker may be stuck for good; the others' parses retry
            raise DeadlineExceeded("deadline exceeded: the feed was still being parsed "
                                   "(http.source_deadline); its parser was stopped") from None
        if isinstance(answer, _Failed):
            raise SourceError(answer.message, answer.retryable)
        return answer

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Stop ``pool``'s workers; the next ``run`` starts a new pool."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _end(pool)

    def close(self) -> None:
        """End every worker (a parse still running is stopped); later ``run`` calls fail."""
        with self._lock:
            self._closed = True
            ending = [pool for pool in (self._pool, *self._alone) if pool is not None]
            self._pool = None
            self._alone.clear()
        for pool in ending:
            _end(pool)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Failed:
    """A SourceError raised in a worker, sent back whole (pickling one loses ``retryable``)."""

    message: str
    retryable: bool


def _in_worker(work: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return work(*args)
    except SourceError as error:
        return _Failed(str(error), error.retryable)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])  # once, when the forkserver starts
    return ProcessPoolExecutor(workers, context, initializer=_start_worker,
                               initargs=(os.getpid(),))


def _start_worker(owner: int) -> None:
    """Ctrl-C is the pass's to handle; a worker whose pass was killed ends by itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_without, args=(owner,), daemon=True).start()


def _exit_without(owner: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was taken by another user's process: ours is gone
            os._exit(1)


def _end(pool: ProcessPoolExecutor) -> None:
    """Shut ``pool`` down and stop its workers now, busy or not: none outlives it."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # private: guarded
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(5)


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


def parse_feed(response: Response) -> tuple[Any, tuple[str, ...]]:
    """Parse fetched bytes; a malformed but readable feed is used, with a problem noted.

    What the bytes are decides, not the server's label: feeds are often sent as text/html,
    text/plain or with no Content-Type, and feedparser would call each of those malformed and
    read an undeclared UTF-8 feed as ISO-8859-1. So the type becomes application/xml, keeping
    only a charset the server names (RFC 7303: else BOM, XML declaration, UTF-8).
    """
    headers = {k.lower(): v for k, v in response.headers.items()}
    declared = headers.get("content-type", "")
    kind = declared.split(";")[0].strip().lower() or "no Content-Type"
    if "json" in kind or response.content.lstrip()[:1] == b"{":
        parsed, problems = _parse_json_feed(response, kind)
        return parsed, problems + _keep_newest(parsed)
    charset = _CHARSET.search(declared)
    headers["content-type"] = "application/xml" + (f"; charset={charset[1]}" if charset else "")
    headers["content-location"] = urljoin(response.url, headers.get("content-location", ""))
    content, replaced = _repair_utf8(response.content, charset[1] if charset else None)
    # A stream, never bytes: feedparser would try bytes as a file name, a str as a URL. No
    # sanitising or link rewriting of entry HTML: html_to_text keeps only its text, and both
    # passes cost seconds and hundreds of MB on one multi-megabyte entry (bench/text.py).
    parsed = feedparser.parse(io.BytesIO(content), response_headers=headers,
                              sanitize_html=False, resolve_relative_uris=False)
    reason = ""
    if parsed.bozo and not (replaced and isinstance(
            parsed.bozo_exception, feedparser.CharacterEncodingOverride)):
        reason = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"[:200]
    if replaced:
        reason = (f"{replaced} byte(s) that are not UTF-8 replaced by U+FFFD"
                  + (f"; {reason}" if reason else ""))
    if not parsed.entries and not parsed.get("version"):
        why = reason or ("empty response" if not response.content.strip() else "no feed found")
        raise SourceError(f"not a readable feed ({kind}; {why}) at {redact(response.url)}",
                          retryable=False)
    problems = (f"feed is malformed but readable ({reason})", *_drop_fragments(parsed)) \
        if reason else ()
    return parsed, problems + _keep_newest(parsed)


MAX_ENTRIES = 1000
"""Entries read of one feed document. Real feeds hold tens; a 16 MiB one of 100,000 entries
would hold 100,000 posts in memory through scoring and storing."""


def _keep_newest(parsed: Any) -> tuple[str, ...]:
    """Cut ``parsed`` to its ``MAX_ENTRIES`` newest entries (in feed order), saying so."""
    total = len(parsed.entries)
    if total <= MAX_ENTRIES:
        return ()
    newest = {id(entry) for entry in _oldest_first(parsed.entries)[-MAX_ENTRIES:]}
    parsed["entries"] = [entry for entry in parsed.entries if id(entry) in newest]
    return (f"feed holds {total} entries: the newest {MAX_ENTRIES} are read",)


_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)""",
                           re.IGNORECASE)


def _repair_utf8(content: bytes, charset: str | None) -> tuple[bytes, int]:
    """A UTF-8 document with a few bad bytes: each bad byte becomes U+FFFD in place.

    feedparser, finding the bytes not valid UTF-8, re-decodes the whole document as another
    charset (windows-1252), so one stray byte turns every entry's é into Ã©. Repaired when the
    document says UTF-8 (Content-Type, BOM, XML declaration) or says nothing and its other
    non-ASCII text is valid UTF-8; any other charset is left to feedparser. Returns the bytes
    and how many characters were replaced.
    """
    if content.startswith(codecs.BOM_UTF8):
        label: str | None = "utf-8"
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return content, 0
    else:
        found = _XML_ENCODING.match(content[:1024])
        label = charset or (found[1].decode("ascii") if found else None)
    if label is not None and label.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return content, 0
    try:
        content.decode("utf-8")
        return content, 0
    except UnicodeDecodeError:
        text = content.decode("utf-8", "replace")
    replaced = text.count("\ufffd")
    if label is None and sum(ord(c) > 127 for c in text) - replaced <= replaced:
        return content, 0  # undeclared and mostly not UTF-8: feedparser guesses the charset
    return text.encode("utf-8"), replaced


def _drop_fragments(parsed: Any) -> tuple[str, ...]:
    """In a malformed feed (often one cut short in transfer), an entry with neither id nor
    link among entries that have them is a fragment of the one that broke off: stored, it would
    sit beside the real entry once the feed comes whole. It is left for that next fetch."""
    def named(entry: Mapping[str, Any]) -> bool:
        return bool(entry.get("id") or entry.get("link"))

    if not any(named(e) for e in parsed.entries):
        return ()
    whole = [e for e in parsed.entries if named(e)]
    dropped = len(parsed.entries) - len(whole)
    parsed["entries"] = whole
    return (f"skipped {dropped} entries cut off (no id, no link)",) if dropped else ()


def _parse_json_feed(response: Response, kind: str) -> tuple[Any, tuple[str, ...]]:
    """JSON Feed 1.0/1.1 (jsonfeed.org), shaped like feedparser's result for ``_post``."""
    try:
        document = json.loads(response.content)
    except ValueError as error:  # bad JSON or bad UTF-8
        raise SourceError(f"not a readable feed ({kind}; {type(error).__name__}: "
                          f"{str(error)[:200]}) at {redact(response.url)}", False) from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or "jsonfeed.org/version/" not in str(document.get("version")):
        raise SourceError(f"not a readable feed ({kind}; JSON but not a JSON Feed) at "
                          f"{redact(response.url)}", retryable=False)
    entries = [_json_entry(item) for item in items if isinstance(item, dict)]
    problems = ("skipped JSON Feed items that are not objects",) if len(entries) < len(items) \
        else ()
    feed = feedparser.FeedParserDict(title=_str(document.get("title")))
    return feedparser.FeedParserDict(version="json", bozo=False, entries=entries, feed=feed), \
        problems


def _json_entry(item: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON Feed item under feedparser's key names; wrong-typed fields are left out."""
    authors = item.get("authors") or [item.get("author")]  # 1.1, else 1.0
    if not isinstance(authors, list):
        authors = []
    names = [_str(a.get("name")) for a in authors if isinstance(a, dict)]
    html = _str(item.get("content_html")) or _str(item.get("content_text"))
    identifier = item.get("id")
    return {
        "id": str(identifier) if isinstance(identifier, str | int) else None,
        "link": _str(item.get("url")) or _str(item.get("external_url")),
        "title": _str(item.get("title")),
        "content": [{"value": html}] if html else [],
        "summary": _str(item.get("summary")),
        "author_detail": {"name": next((n for n in names if n), None)},
        "published_parsed": _json_date(item.get("date_published")),
        "updated_parsed": _json_date(item.get("date_modified")),
    }


def _str(value: object) -> str | None:
    """A non-empty string, else None: JSON from strangers may hold anything anywhere."""
    return value if isinstance(value, str) and value else None


def _json_date(value: object) -> time.struct_time | None:
    """RFC 3339 as UTC, in the struct_time form feedparser uses; a bad date is no date."""
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).timetuple()


def _entry_id(entry: Mapping[str, Any], base: str) -> str:
    if entry.get("id"):
        return str(entry["id"])
    if entry.get("link"):
        return urljoin(base, entry["link"])
    # Author and date too: two "+1" comments by different people are different posts.
    stamp = entry.get("published") or entry.get("updated") or ""
    seed = f"{entry.get('title', '')}\n{_body(entry)}\n{_author(entry) or ''}\n{stamp}"
    return "sha1:" + hashlib.sha1(seed.encode("utf-8", "replace")).hexdigest()


def _author(entry: Mapping[str, Any]) -> str | None:
    """The author's name: feedparser's ``author`` is "Name (email)" for Atom and RSS."""
    detail = entry.get("author_detail") or {}
    return (detail.get("name") or entry.get("author") or "").strip() or None


def _dated(entry: Mapping[str, Any]) -> datetime | None:
    """Published, else updated, else created. Plain dict reads: feedparser's deprecated
    alias from published to updated would only add a warning."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        if when := utc_from_struct(dict.get(entry, key)):  # type: ignore[arg-type]
            return when
    return None


def _oldest_first(entries: Sequence[Any],
                  dated: Callable[[Any], datetime | None] = _dated) -> list[Any]:
    """Feeds list newest first by convention; dates, where an entry has one, decide."""
    earliest = datetime.min.replace(tzinfo=UTC)
    return sorted(reversed(entries), key=lambda entry: dated(entry) or earliest)


def _body(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or []
    if contents:
        return max((c.get("value") or "" for c in contents), key=len)
    return entry.get("summary") or entry.get("description") or ""


def _as_comment(post: Post, thread_id: str, title: str | None) -> Post:
    """A comment from a post's own comment feed belongs to that post (by its feed id)."""
    answers = post.parent_id if post.parent_id not in (None, post.thread_id) else thread_id
    return replace(post, thread_id=thread_id, parent_id=answers, title=title or post.title)
