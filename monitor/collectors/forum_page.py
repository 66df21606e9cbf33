"""Reading one forum page: which elements are posts, and each post's author, time, words
and link, by CSS selectors: an engine's preset (phpBB, XenForo, vBulletin) with a source's
own selectors on top.

Kept apart from the collector, which decides which pages to read and what is new: this module
only knows what a page of each engine looks like.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urldefrag, urljoin
from zoneinfo import ZoneInfo

import soupsieve
from bs4 import BeautifulSoup, Tag

from monitor.collectors.forum_urls import base_url, clean_url, thread_of
from monitor.collectors.http import redact
from monitor.collectors.text import html_to_text, utc_from_epoch
from monitor.model import Post

log = logging.getLogger(__name__)

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


@dataclass
class PagePosts:
    """What one page holds: its posts in page order (every one but a thread's opening post
    answers the thread), the posts that could not be read, and how many had no time."""

    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    undated: int = 0


class PageReader:
    """Reads forum pages with one source's selectors (``selectors``: the preset's with the
    source's own on top); ``dayfirst`` None: read dates by the page's language."""

    def __init__(self, source: str, selectors: dict[str, str], zone: ZoneInfo,
                 dayfirst: bool | None) -> None:
        self.source, self.selectors, self.zone, self.dayfirst = source, selectors, zone, dayfirst
        self._css = {key: soupsieve.compile(value) for key, value in selectors.items()}
        self._tries = {key: _alternatives(value) for key, value in selectors.items()}

    def posts_of(self, soup: BeautifulSoup) -> list[Tag]:
        """The elements the ``post`` selector finds."""
        return self._css["post"].select(soup)

    def read(self, soup: BeautifulSoup, url: str, final: str,
             fetched_at: datetime) -> PagePosts | None:
        """The posts of the page at ``url`` (``final`` after redirects); None when the ``post``
        selector finds nothing. An undated post gets ``fetched_at``."""
        elements = self.posts_of(soup)
        if not elements:
            return None
        found = PagePosts()
        base = base_url(soup, final)
        thread, first_page = thread_of(soup, base, final)
        title = self.title(soup)
        dayfirst = self.dayfirst if self.dayfirst is not None else _dayfirst(soup)
        for index, element in enumerate(elements):
            if "skip" in self._css and self._css["skip"].match(element):
                continue
            following = elements[index + 1] if index + 1 < len(elements) else None
            try:
                post = self._post(self._scope(element, following), base, final, thread, title,
                                  dayfirst, fetched_at, found)
            except Exception as error:  # one malformed post never stops the rest
                found.problems.append(f"skipped a post on {redact(url)} "
                                      f"({type(error).__name__}: {error})")
                continue
            if post is None:
                continue
            if not (first_page and index == 0):  # all but the opening post answer the thread
                post = replace(post, parent_id=thread)
            found.posts.append(post)
        return found

    def next_page(self, soup: BeautifulSoup, final: str) -> str | None:
        """The next page's URL, as the ``next`` selector finds its link."""
        tag = self._first("next", [soup])
        href = tag.get("href") if tag else None
        return clean_url(urldefrag(urljoin(base_url(soup, final), str(href))).url) if href \
            else None

    def thread_links(self, soup: BeautifulSoup, final: str) -> list[str]:
        """The links the ``thread_links`` selector finds on a thread-list page, in page order
        (newest activity first, as forums sort)."""
        if "thread_links" not in self._css:
            return []
        base = base_url(soup, final)
        return [clean_url(urljoin(base, str(tag["href"])))
                for tag in self._css["thread_links"].select(soup) if tag.get("href")]

    def title(self, soup: BeautifulSoup) -> str | None:
        tag = self._first("title", [soup])
        title = _squeeze(tag.get_text(" ")) if tag else ""
        if not title and soup.title:
            title = _squeeze(soup.title.get_text(" "))
        return title or None

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
              title: str | None, dayfirst: bool, fetched_at: datetime,
              found: PagePosts) -> Post | None:
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
            found.undated += 1
        seed = f"{thread_id}\n{author}\n{text}"
        return Post(
            source=self.source,
            external_id=identifier or permalink or
            "sha1:" + hashlib.sha1(seed.encode("utf-8", "replace")).hexdigest(),
            url=permalink or (f"{clean_url(urldefrag(page_url).url)}#{identifier}"
                              if identifier else thread_id),
            author=author,
            title=title,
            text=text,
            published_at=published or fetched_at,
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
