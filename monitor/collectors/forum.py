"""HTML forums (phpBB, XenForo, vBulletin, or any board given CSS selectors), read like a
visitor reads them.

A source names a thread page, or a thread-list page whose thread links are followed. Forums
list posts oldest first and add replies at the end, so each thread remembers the last page
reached: the next pass starts there (one conditional GET when nothing changed) and follows
"next page" links from it, never re-reading the thread from the start. What a page of each
engine looks like is ``forum_page``'s business; which pages to read, and what is new, is this
module's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import soupsieve
from bs4 import BeautifulSoup
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from monitor.collectors.forum_page import PRESETS, PageReader
from monitor.collectors.forum_urls import clean_url
from monitor.collectors.http import HttpClient, on_allowed_host, redact
from monitor.collectors.text import html_to_text
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post
from monitor.units import TimeZoneName

SEEN_PER_THREAD = 500
"""Post ids remembered per thread: far more than one page holds, so none comes back."""

MAX_THREADS_REMEMBERED = 500
"""Threads whose progress the cursor keeps (the most recently visited)."""


class ForumSelectors(BaseModel):
    """CSS selectors; each given one replaces the engine preset's. In a list "a, b" for one
    element (author, time, body, permalink, next, title), ``a`` is tried first, then ``b``."""

    model_config = ConfigDict(extra="forbid")
    post: str | None = Field(None, description="one post's container")
    author: str | None = Field(None, description="inside a post: the author's name")
    time: str | None = Field(None, description=(
        "inside a post: when it was written (a `datetime`/`data-time` attribute wins over the "
        "text)"))
    body: str | None = Field(None, description="inside a post: what the author wrote")
    permalink: str | None = Field(None, description="inside a post: the link to that post")
    next: str | None = Field(None, description="the next-page link")
    thread_links: str | None = Field(None, description="threads on a thread-list page")
    title: str | None = Field(None, description="the thread title; else the page `<title>`")
    exclude: str | None = Field(None, description=(
        "dropped from a body: quotes of other posts, signatures"))
    skip: str | None = Field(None, description="posts not stored (deleted or hidden ones)")

    @field_validator("*")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                soupsieve.compile(value)
            except Exception as error:  # soupsieve's SelectorSyntaxError, or worse
                raise ValueError(f"not a usable CSS selector ({str(error).splitlines()[0]})") \
                    from None
        return value


class ForumOptions(BaseModel):
    """Keys of a ``forum`` source besides name/kind/interval/tags."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl = Field(description=(
        "a thread page, or a thread-list page (forum or subforum index) whose thread links are "
        "followed"))
    engine: Literal["phpbb", "xenforo", "vbulletin", "custom"] = Field("custom", description=(
        "selector preset: `phpbb` (phpBB 3.x prosilver; also Forumotion boards), `xenforo` "
        "(XenForo 2 and 1), `vbulletin` (vBulletin 4), or `custom` (then `selectors.post` and "
        "`selectors.body` are required)"))
    selectors: ForumSelectors = Field(default_factory=ForumSelectors, description=(
        "CSS selectors (the keys below), each overriding the preset's; for a one-element key, "
        "`a, b` tries `a` first, then `b`"))
    max_pages: int = Field(5, ge=1, le=100, description=(
        "pages read per thread per pass, following \"next page\" links"))
    max_threads: int = Field(20, ge=1, le=500, description=(
        "threads followed from a thread-list page per pass"))
    delay: float = Field(1.0, ge=0, le=300, description=(
        "seconds between two requests to the forum's host (a longer robots.txt `Crawl-delay` "
        "wins)"))
    robots: bool = Field(True, description="obey the forum's robots.txt")
    timezone: TimeZoneName = Field("UTC", description=(
        "zone of dates shown as text without an offset (e.g. `Europe/Berlin`)"))
    dayfirst: bool | None = Field(None, description=(
        "read `01.02.2020` as 1 February; none: by the page's language (month first only when "
        "its `lang` is `en`/`en-US`)"))
    allow_hosts: list[str] = Field(default_factory=list, description=(
        "other hosts (`host` or `host:port`) whose thread and next-page links are followed "
        "and that pages may redirect to; none: only the forum's own host"))

    @model_validator(mode="after")
    def _custom_has_selectors(self) -> ForumOptions:
        if self.engine == "custom" and not (self.selectors.post and self.selectors.body):
            raise ValueError("engine 'custom' needs selectors.post and selectors.body (or use "
                             "engine: phpbb, xenforo or vbulletin)")
        return self

    def resolved(self) -> dict[str, str]:
        """The preset's selectors with the ones given in the config on top."""
        given = self.selectors.model_dump(exclude_none=True)
        return {**PRESETS[self.engine], **given}


@dataclass
class _Page:
    """One fetched page: ``soup`` is None when it did not change since the last pass."""

    url: str    # as requested: the key of its state in the cursor
    final: str  # after redirects: what its relative links are relative to
    soup: BeautifulSoup | None
    state: dict[str, Any]


@dataclass
class _Pass:
    """What one collection gathers as it goes."""

    fetched_at: datetime
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    undated: int = 0
    matched: int = 0       # pages where the post selector found posts
    broken: list[str] = field(default_factory=list)  # non-empty pages where it found none
    changed: bool = False  # some page was new or different


class ForumCollector:
    """``kind: forum``: new posts of one thread, or of the threads a thread-list page links."""

    Options: ClassVar[type[BaseModel]] = ForumOptions

    def __init__(self, name: str, options: ForumOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http
        self.selectors = options.resolved()
        self.reader = PageReader(name, self.selectors, ZoneInfo(options.timezone),
                                 options.dayfirst)

    def collect(self, cursor: Cursor | None) -> Fetch:
        cursor = dict(cursor or {})
        known_pages: dict[str, Any] = cursor.get("pages") or {}
        # Copies: updated below, and the caller's cursor must stay as it was.
        threads = {key: dict(state) for key, state in (cursor.get("threads") or {}).items()}
        run = _Pass(datetime.now(UTC))
        start = clean_url(str(self.options.url))
        # "thread" or "list", as the first pass found the page; a new url is found afresh.
        mode = cursor.get("mode") if cursor.get("start") == start else None
        if mode == "thread":
            self._thread(run, start, threads, known_pages, required=True)
        else:
            # Until the mode is known the page is read in full, even if it did not change.
            page = self._fetch(run, start, known_pages.get(start) if mode else None)
            if page.soup is None and mode == "list":
                pending = [key for key, state in threads.items() if state.get("pending")]
                links = pending[: self.options.max_threads]
            elif page.soup is not None and self.reader.posts_of(page.soup):
                mode = "thread"
                self._thread(run, start, threads, known_pages, required=True, first=page)
                links = []
            elif page.soup is not None and (found := self._thread_links(page)):
                mode, links = "list", found[: self.options.max_threads]
            else:
                if page.soup is not None:
                    self._no_posts(run, page, required=True, listing=True)
                links = []
            for link in links:
                self._thread(run, link, threads, known_pages, required=False)
            if mode == "list" and run.broken and not run.matched:
                raise _layout_error(self.selectors["post"], run.broken[0])
        if run.undated:
            run.problems.append(f"{run.undated} post(s) had no readable time; used the fetch "
                                "time (check selectors.time / timezone)")
        threads = dict(list(threads.items())[-MAX_THREADS_REMEMBERED:])
        for state in threads.values():  # keep conditional GET for threads not visited now
            if state.get("page") in known_pages and state["page"] not in run.pages:
                run.pages[state["page"]] = known_pages[state["page"]]
        new_cursor = {"start": start, "mode": mode, "pages": run.pages, "threads": threads}
        unchanged = not run.changed and not run.posts
        return Fetch(tuple(run.posts), new_cursor, tuple(run.problems), unchanged=unchanged)

    # --- one thread ----------------------------------------------------------------------

    def _thread(self, run: _Pass, key: str, threads: dict[str, dict[str, Any]],
                known_pages: dict[str, Any], required: bool, first: _Page | None = None) -> None:
        """Read a thread from the page last reached, following next links up to max_pages.

        ``required``: the source is this one thread, so failing to read its first page fails
        the source; a thread found on a list page only costs a problem.
        """
        state = threads.pop(key, {})
        threads[key] = state  # re-inserted last: the most recently visited are kept
        seen: list[str] = list(state.get("seen") or [])
        url: str | None = state.get("page") or key
        # A later pass re-checks the page it stopped at, then reads up to max_pages more.
        budget = self.options.max_pages + (1 if state.get("page") else 0)
        visited: set[str] = set()
        read = 0  # pages fetched without error
        while url is not None and url not in visited and len(visited) < budget:
            visited.add(url)
            try:
                page = first if first is not None and url == first.url \
                    else self._fetch(run, url, known_pages.get(url))
            except SourceError as error:
                if url != key and not read and not error.retryable:
                    # The page we stopped at is gone (posts deleted, thread pruned or moved).
                    run.problems.append(f"{error}; reading the thread from its first page")
                    url = key
                    continue
                if required and not read:
                    raise
                run.problems.append(f"page not read: {error}")
                break
            state["page"] = url
            if page.soup is not None:
                self._read_page(run, page, seen, required=required and not read)
            read += 1
            url = self._follow(run, url, page.state.get("next"))
        state["seen"] = seen[-SEEN_PER_THREAD:]
        state["pending"] = url is not None and url not in visited

    def _follow(self, run: _Pass, page_url: str, link: str | None) -> str | None:
        """The next page to read, if it stays on the forum's host."""
        if not link:
            return None
        if not self._allowed(link):
            run.problems.append(f"next page {redact(link)} (on {redact(page_url)}) is on another "
                                "host; not followed")
            return None
        return link

    def _read_page(self, run: _Pass, page: _Page, seen: list[str], required: bool) -> None:
        assert page.soup is not None
        found = self.reader.read(page.soup, page.url, page.final, run.fetched_at)
        if found is None:
            self._no_posts(run, page, required)
            return
        run.matched += 1
        run.problems += found.problems
        run.undated += found.undated
        known = set(seen)
        for post in found.posts:
            if post.external_id not in known:
                known.add(post.external_id)
                seen.append(post.external_id)
                run.posts.append(post)

    # --- pages -----------------------------------------------------------------------------

    def _fetch(self, run: _Pass, url: str, known: dict[str, Any] | None) -> _Page:
        """Conditional GET; a page whose bytes did not change is not parsed again."""
        known = known or {}
        response = self.http.get(url, etag=known.get("etag"),
                                 last_modified=known.get("last_modified"),
                                 robots=self.options.robots, delay=self.options.delay,
                                 allow_hosts=self.options.allow_hosts)
        if response.not_modified:
            page = _Page(url, response.url, None, dict(known))
        else:
            digest = hashlib.sha256(response.content).hexdigest()
            state = {"etag": response.headers.get("etag"),
                     "last_modified": response.headers.get("last-modified"),
                     "sha256": digest, "next": known.get("next")}
            if digest == known.get("sha256"):
                page = _Page(url, response.url, None, state)
            else:
                charset = re.search(r"charset=[\"']?([\w.:-]+)",
                                    response.headers.get("content-type", ""), re.IGNORECASE)
                soup = BeautifulSoup(response.content, "html.parser",
                                     from_encoding=charset[1] if charset else None)
                page = _Page(url, response.url, soup, state)
                state["next"] = self.reader.next_page(soup, response.url)
                run.changed = True
        run.pages[url] = page.state
        return page

    def _thread_links(self, page: _Page) -> list[str]:
        """Thread URLs on a thread-list page, in page order, on the forum's own host, each
        once."""
        if page.soup is None:
            return []
        links = self.reader.thread_links(page.soup, page.final)
        return [link for link in dict.fromkeys(links) if self._allowed(link)]

    def _allowed(self, link: str) -> bool:
        """Links found on a page are followed only to the forum's host or ``allow_hosts``."""
        return on_allowed_host(link, str(self.options.url), self.options.allow_hosts)

    def _no_posts(self, run: _Pass, page: _Page, required: bool, listing: bool = False) -> None:
        """No post on a page: blank pages happen; a page with content means the layout
        changed (or the selectors are wrong), which must not pass as "nothing new"."""
        assert page.soup is not None
        if not html_to_text(str(page.soup.body or page.soup)):
            run.problems.append(f"empty page at {redact(page.url)}")
            return
        if required:
            links = self.selectors.get("thread_links") if listing else None
            raise _layout_error(self.selectors["post"], page.url, links)
        run.broken.append(page.url)
        run.problems.append(f"no posts found on {redact(page.url)} (selector "
                            f"'{self.selectors['post']}')")


def _layout_error(selector: str, url: str, links: str | None = None) -> SourceError:
    also = f" (nor thread_links '{links}')" if links else ""
    return SourceError(f"forum layout changed: selector '{selector}' matched nothing{also} on "
                       f"{redact(url)}; check `engine`/`selectors`", retryable=False)
