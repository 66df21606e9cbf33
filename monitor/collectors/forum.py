"""HTML forums (phpBB, XenForo, vBulletin, or any board given CSS selectors), read like a
visitor reads them.

A source names a thread page, or a thread-list page whose thread links are followed. Forums
list posts oldest first and add replies at the end, so each thread remembers the last page
reached: the next pass starts there (one conditional GET when nothing changed) and follows
"next page" links from it, never re-reading the thread from the start.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import soupsieve
from bs4 import BeautifulSoup, Tag
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from monitor.collectors.http import HttpClient, redact
from monitor.collectors.text import html_to_text, utc_from_epoch
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post
from monitor.units import TimeZoneName

log = logging.getLogger(__name__)

SEEN_PER_THREAD = 500
"""Post ids remembered per thread: far more than one page holds, so none comes back."""

MAX_THREADS_REMEMBERED = 500
"""Threads whose progress the cursor keeps (the most recently visited)."""

_NEXT = "link[rel~='next'], a[rel~='next']"

PRESETS: dict[str, dict[str, str]] = {
    # phpBB 3.x prosilver, and Forumotion boards (phpBB-derived markup).
    "phpbb": {
        "post": "div.post",
        "skip": ".post-ignore, .deleted",
        "author": ".postprofile .username, .postprofile .username-coloured, p.author strong",
        "time": "p.author",
        "body": "div.content, div.post-entry",
        "permalink": "p.author a[href*='#p'], h3 a[href*='#']",
        "next": f"{_NEXT}, .pagination li.next a",
        "thread_links": "a.topictitle",
        "title": "h2.topic-title, h1.page-title",
        "exclude": "blockquote, .signature, .signature_div",
    },
    # XenForo 2 (article.message) and XenForo 1 (li.message).
    "xenforo": {
        "post": "article.message--post, ol.messageList > li.message",
        "skip": ".message--deleted, .is-ignored, .deleted",
        "author": ".message-name, .messageUserInfo .username",
        "time": "time.u-dt, .DateTime",
        "body": ".message-body .bbWrapper, .messageText",
        "permalink": ".message-attribution a[href*='post-'], a.datePermalink",
        "next": f"{_NEXT}, a.pageNav-jump--next",
        "thread_links": ".structItem-title a[data-tp-primary], h3.title a.PreviewTooltip",
        "title": "h1.p-title-value, .titleBar h1",
        "exclude": "blockquote.bbCodeBlock--quote, .bbCodeQuote, .bbCodeBlock-expandLink, "
                   ".message-signature",
    },
    # vBulletin 4 (li.postcontainer postbits).
    "vbulletin": {
        "post": "li.postcontainer",
        "skip": ".postbitdeleted, .postbit_deleted, .postbitignored, .postbit_ignored",
        "author": ".username_container .username, .username",
        "time": ".posthead .date, .postdate, .userinfo_extra .userstats dd",
        "body": "div[id^='post_message_'], blockquote.postcontent",
        "permalink": "a.postcounter, a[name^='post'][href]",
        "next": _NEXT,
        "thread_links": "a[id^='thread_title_']",
        "title": "#pagetitle h1, h1",
        "exclude": ".bbcode_quote, .signature, .tapatalkSignatur",
    },
    "custom": {"time": "time", "next": _NEXT, "title": "h1"},
}


class ForumSelectors(BaseModel):
    """CSS selectors; each given one replaces the engine preset's. In a list "a, b" for one
    element (author, time, body, permalink, next, title), ``a`` is tried first, then ``b``."""

    model_config = ConfigDict(extra="forbid")
    post: str | None = Field(None, description="one post's container element")
    author: str | None = Field(None, description="inside a post: the author's name")
    time: str | None = Field(None, description="inside a post: when it was written (a "
                             "`datetime`/`data-time` attribute is preferred to the text)")
    body: str | None = Field(None, description="inside a post: what the author wrote")
    permalink: str | None = Field(None, description="inside a post: a link to that post")
    next: str | None = Field(None, description="on a page: the link to the next page")
    thread_links: str | None = Field(None, description="on a thread-list page: links to the "
                                     "threads to follow")
    title: str | None = Field(None, description="on a page: the thread title (default: the "
                              "page <title>)")
    exclude: str | None = Field(None, description="inside a body: dropped before taking its "
                                "text (quotes of other posts, signatures)")
    skip: str | None = Field(None, description="posts matching this are not stored (deleted "
                             "or hidden placeholders)")

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
    url: HttpUrl = Field(description="a thread page, or a thread-list page (forum index)")
    engine: Literal["phpbb", "xenforo", "vbulletin", "custom"] = Field(
        "custom", description="selector preset; `custom` needs selectors.post and body")
    selectors: ForumSelectors = Field(default_factory=ForumSelectors,
                                      description="CSS selectors overriding the preset's")
    max_pages: int = Field(5, ge=1, le=100, description="pages read per thread per pass "
                           "(following next-page links)")
    max_threads: int = Field(20, ge=1, le=500, description="threads followed from a "
                             "thread-list page per pass")
    delay: float = Field(1.0, ge=0, le=300, description="seconds between two requests to the "
                         "forum's host (robots.txt Crawl-delay wins when longer)")
    robots: bool = Field(True, description="obey the forum's robots.txt")
    timezone: TimeZoneName = Field("UTC", description="zone of dates shown as text without "
                                   "an offset")
    dayfirst: bool | None = Field(None, description="read 01.02.2020 as 1 February; default: "
                                  "by the page's language (month first only for en/en-US)")

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
    Options: ClassVar[type[BaseModel]] = ForumOptions

    def __init__(self, name: str, options: ForumOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http
        self.selectors = options.resolved()
        self._css = {key: soupsieve.compile(value) for key, value in self.selectors.items()}
        self._tries = {key: _alternatives(value) for key, value in self.selectors.items()}
        self.zone = ZoneInfo(options.timezone)
        self.host = _host(str(options.url))

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
            elif page.soup is not None and self._posts_of(page.soup):
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
        if _host(link) != self.host:
            run.problems.append(f"next page {redact(link)} (on {redact(page_url)}) is on another "
                                "host; not followed")
            return None
        return link

    def _read_page(self, run: _Pass, page: _Page, seen: list[str], required: bool) -> None:
        soup = page.soup
        assert soup is not None
        elements = self._posts_of(soup)
        if not elements:
            self._no_posts(run, page, required)
            return
        run.matched += 1
        base = _base_url(soup, page.final)
        thread_id, first_page = _thread_id(soup, base, page.final)
        title = self._title(soup)
        dayfirst = self.options.dayfirst if self.options.dayfirst is not None \
            else _dayfirst(soup)
        known = set(seen)
        for index, element in enumerate(elements):
            if "skip" in self._css and self._css["skip"].match(element):
                continue
            following = elements[index + 1] if index + 1 < len(elements) else None
            try:
                post = self._post(self._scope(element, following), base, page.final,
                                  thread_id, title, dayfirst, run)
            except Exception as error:  # one malformed post never stops the rest
                run.problems.append(f"skipped a post on {redact(page.url)} "
                                    f"({type(error).__name__}: {error})")
                continue
            if post is None or post.external_id in known:
                continue
            if not (first_page and index == 0):  # all but the opening post answer the thread
                post = replace(post, parent_id=thread_id)
            known.add(post.external_id)
            seen.append(post.external_id)
            run.posts.append(post)

    def _scope(self, element: Tag, following: Tag | None) -> list[Tag]:
        """Where a post's parts are: its container, and when broken markup made the parser
        close that container early (Forumotion boards do this), what comes after it up to
        the next post, as far as the first body found there."""
        body = self._css["body"]
        if body.match(element) or body.select_one(element) is not None:
            return [element]
        stop = {id(following), *(id(a) for a in following.parents)} if following else set()
        scope, node = [element], element
        while node is not None and id(node) not in stop:
            for sibling in node.next_siblings:
                if not isinstance(sibling, Tag):
                    continue
                if id(sibling) in stop:
                    return scope
                scope.append(sibling)
                if body.match(sibling) or body.select_one(sibling) is not None:
                    return scope
            node = node.parent
        return [element]  # no body anywhere before the next post

    def _first(self, key: str, scope: list[Tag]) -> Tag | None:
        """What ``key``'s first matching alternative finds first within ``scope``."""
        return next(iter(self._all(key, scope)), None)

    def _all(self, key: str, scope: list[Tag]) -> list[Tag]:
        """Everything ``key``'s selector finds within ``scope``: by alternative, then in page
        order (``scope[0]`` itself is the container, never a match)."""
        found: list[Tag] = []
        for css in self._tries.get(key, ()):
            for node in scope:
                if node is not scope[0] and css.match(node):
                    found.append(node)
                found += css.select(node)
        return found

    def _post(self, scope: list[Tag], base: str, page_url: str, thread_id: str,
              title: str | None, dayfirst: bool, run: _Pass) -> Post | None:
        element = scope[0]
        body = self._first("body", scope)
        if body is None:
            raise ValueError(f"no body (selector '{self.selectors['body']}' matched nothing "
                             f"in post {_element_id(element) or '?'})")
        author_tag = self._first("author", scope)
        author = _squeeze(author_tag.get_text(" ")) if author_tag else None
        author = author or _squeeze(str(element.get("data-author") or "")) or None
        published = self._time(self._all("time", scope), dayfirst)
        link_tag = self._first("permalink", scope)
        href = link_tag.get("href") if link_tag else None
        permalink = clean_url(urljoin(base, str(href))) if href else None
        if "exclude" in self._css:
            for noise in self._css["exclude"].select(body):
                noise.decompose()
        text = html_to_text(str(body))
        if not text:  # an advert, an image-only or emptied post: nothing to score
            log.debug("post %s has no text; skipped", _element_id(element))
            return None
        identifier = _element_id(element)
        if published is None:
            run.undated += 1
        seed = f"{thread_id}\n{author}\n{text}"
        return Post(
            source=self.name,
            external_id=identifier or permalink or
            "sha1:" + hashlib.sha1(seed.encode("utf-8", "replace")).hexdigest(),
            url=permalink or (f"{clean_url(urldefrag(page_url).url)}#{identifier}"
                              if identifier else thread_id),
            author=author,
            title=title,
            text=text,
            published_at=published or run.fetched_at,
            thread_id=thread_id,
        )

    def _time(self, tags: list[Tag], dayfirst: bool) -> datetime | None:
        """Machine-readable attributes first (``datetime``, XenForo's ``data-time``), then a
        date in the text, read in the configured zone."""
        for tag in tags:
            for candidate in (tag, *tag.select("[datetime], [data-time]")):
                if when := self._attribute_time(candidate):
                    return when
            for text in (str(tag.get("title") or ""), tag.get_text(" ")):
                if when := text_time(text, dayfirst, self.zone):
                    return when if when <= datetime.now(UTC) + timedelta(days=1) else None
        return None

    def _attribute_time(self, tag: Tag) -> datetime | None:
        for name in ("data-time", "data-timestamp"):
            value = str(tag.get(name) or "")
            if value.isdigit():
                return utc_from_epoch(value)
        value = str(tag.get("datetime") or "").strip()
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
        except ValueError:
            return None
        if when is None:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=self.zone)).astimezone(UTC)

    # --- pages -----------------------------------------------------------------------------

    def _fetch(self, run: _Pass, url: str, known: dict[str, Any] | None) -> _Page:
        """Conditional GET; a page whose bytes did not change is not parsed again."""
        known = known or {}
        response = self.http.get(url, etag=known.get("etag"),
                                 last_modified=known.get("last_modified"),
                                 robots=self.options.robots, delay=self.options.delay)
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
                next_tag = self._first("next", [soup])
                href = next_tag.get("href") if next_tag else None
                base = _base_url(soup, response.url)
                state["next"] = clean_url(urldefrag(urljoin(base, str(href))).url) if href \
                    else None
                run.changed = True
        run.pages[url] = page.state
        return page

    def _posts_of(self, soup: BeautifulSoup) -> list[Tag]:
        return self._css["post"].select(soup)

    def _thread_links(self, page: _Page) -> list[str]:
        """Thread URLs on a thread-list page, in page order (newest activity first, as
        forums sort), on the forum's own host, each once."""
        if "thread_links" not in self._css or page.soup is None:
            return []
        base = _base_url(page.soup, page.final)
        links: list[str] = []
        for tag in self._css["thread_links"].select(page.soup):
            if tag.get("href"):
                link = clean_url(urljoin(base, str(tag["href"])))
                if _host(link) == self.host and link not in links:
                    links.append(link)
        return links

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

    def _title(self, soup: BeautifulSoup) -> str | None:
        tag = self._first("title", [soup])
        title = _squeeze(tag.get_text(" ")) if tag else ""
        if not title and soup.title:
            title = _squeeze(soup.title.get_text(" "))
        return title or None


def _alternatives(selector: str) -> list[soupsieve.SoupSieve]:
    """A selector list split at its top-level commas, each part compiled on its own."""
    parts, current, depth, quote = [], "", 0, ""
    for char in selector:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    try:
        return [soupsieve.compile(part.strip()) for part in [*parts, current] if part.strip()]
    except Exception:  # a split we got wrong: the list as a whole is valid (checked earlier)
        return [soupsieve.compile(selector)]


def _layout_error(selector: str, url: str, links: str | None = None) -> SourceError:
    also = f" (nor thread_links '{links}')" if links else ""
    return SourceError(f"forum layout changed: selector '{selector}' matched nothing{also} on "
                       f"{redact(url)}; check `engine`/`selectors`", retryable=False)


# --- URLs ----------------------------------------------------------------------------------

_SESSION_PARAMS = {"sid", "s", "phpsessid", "sessionid", "sess"}
_SESSION_VALUE = re.compile(r"[0-9a-fA-F]{32}")
_PAGE_PARAMS = {"start", "page"}


def clean_url(url: str) -> str:
    """The URL without a session id (phpBB ``sid=``, vBulletin ``s=``): the same page must
    have the same URL on every pass, and session ids must not be stored."""
    return _drop_params(url, _is_session)


def _is_session(name: str, value: str) -> bool:
    return name in _SESSION_PARAMS and bool(_SESSION_VALUE.fullmatch(value))


def thread_url(url: str) -> str:
    """A thread's URL without its page number, so every page names the same thread:
    ``?start=`` / ``?page=``, XenForo ``/page-2``, vBulletin ``/page2`` and ``-2.html``
    (vBSEO), Forumotion ``/t7p15-title``."""
    parts = urlsplit(_drop_params(clean_url(urldefrag(url).url), lambda k, v: k in _PAGE_PARAMS))
    path = re.sub(r"/page-\d+/?$", "/", parts.path)  # XenForo: /threads/slug.1/page-2
    path = re.sub(r"/page\d+/?$", "", path)  # vBulletin 4: /threads/1-slug/page2
    path = re.sub(r"(/\d+-[^/]*?)-\d+(\.html?)$", r"\1\2", path)
    path = re.sub(r"(/t\d+)p\d+(-[^/]*)$", r"\1\2", path)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _drop_params(url: str, drop: Callable[[str, str], bool]) -> str:
    """``url`` without the query parameters ``drop(lowercased name, value)`` picks; an URL
    with none of them is returned as it was (re-encoding could change what it names)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not drop(k.lower(), v)]
    if len(kept) == len(pairs):
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))


def _thread_id(soup: BeautifulSoup, base: str, page_url: str) -> tuple[str, bool]:
    """The thread's URL (its canonical link when it has one) and whether this is page 1."""
    canonical = soup.select_one("link[rel~='canonical'][href]")
    shown = clean_url(urldefrag(urljoin(base, str(canonical["href"]))).url) if canonical \
        else clean_url(urldefrag(page_url).url)
    thread = thread_url(shown)
    return thread, thread == shown


def _base_url(soup: BeautifulSoup, url: str) -> str:
    """What relative links on the page are relative to: ``<base href>`` wins, as in a
    browser (vBulletin pages set one)."""
    base = soup.find("base", href=True)
    return urljoin(url, str(base["href"])) if isinstance(base, Tag) else url


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


# --- posts ---------------------------------------------------------------------------------


def _element_id(element: Tag) -> str | None:
    """XenForo's ``data-content="post-123"``, else the element id (``p453``, ``post_123``)."""
    for name in ("data-content", "id"):
        value = str(element.get(name) or "").strip()
        if value:
            return value
    return None


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _dayfirst(soup: BeautifulSoup) -> bool:
    """Whether 01.02.2020 is 1 February: everywhere but in US English."""
    lang = str(soup.html.get("lang") or "") if soup.html else ""
    return lang.lower().replace("_", "-") not in ("en", "en-us")


_MONTH = r"[^\W\d_]{3,10}\.?"
_DATE_TEXT = re.compile(
    r"(?:\d{4}-\d{1,2}-\d{1,2}"                                  # 2009-01-21
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"                          # 21.01.2009, 26/10/13
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"         # Jan 21st, 2009
    rf"|\d{{1,2}}(?:\.|st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}})"     # 21. Jan 2009
    r"(?:,?\s*(?:at|um|à)?\s*\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp]\.?[Mm]\b\.?)?)?")


def text_time(text: str, dayfirst: bool, zone: ZoneInfo) -> datetime | None:
    """A date written for people ("21.01.2009, 05:42", "Sep 18, 2020 at 8:56 AM") as UTC.

    Only a full date is read: words like "Yesterday" or "Heute" would need the page's
    language and the server's clock, and a wrong date is worse than the fetch time.
    """
    from dateutil import parser

    found = _DATE_TEXT.search(text)
    if not found:
        return None
    written = re.sub(r"\b(?:at|um|à)\b", " ", found[0])
    try:
        when = parser.parse(written, dayfirst=dayfirst)
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError
        return None
    return (when if when.tzinfo else when.replace(tzinfo=zone)).astimezone(UTC)
