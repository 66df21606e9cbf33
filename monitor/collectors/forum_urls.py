"""Forum URLs: one page, one URL, on every pass.

Forums put session ids and page numbers into their links; the cursor keys pages and threads by
URL, so those are taken out (and session ids must never be stored anyway).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup, Tag

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


def thread_of(soup: BeautifulSoup, base: str, page_url: str) -> tuple[str, bool]:
    """The thread's URL (its canonical link when it has one) and whether this is page 1."""
    canonical = soup.select_one("link[rel~='canonical'][href]")
    shown = clean_url(urldefrag(urljoin(base, str(canonical["href"]))).url) if canonical \
        else clean_url(urldefrag(page_url).url)
    thread = thread_url(shown)
    return thread, thread == shown


def base_url(soup: BeautifulSoup, url: str) -> str:
    """What relative links on the page are relative to: ``<base href>`` wins, as in a
    browser (vBulletin pages set one)."""
    base = soup.find("base", href=True)
    return urljoin(url, str(base["href"])) if isinstance(base, Tag) else url


def host(url: str) -> str:
    """The host a link stays on: ``www.`` and case do not make another one."""
    name = (urlsplit(url).hostname or "").lower()
    return name[4:] if name.startswith("www.") else name
