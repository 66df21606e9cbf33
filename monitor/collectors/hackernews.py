"""Hacker News stories and comments that match a query, via the public Algolia search API.

``search_by_date`` lists hits newest first, and ``numericFilters=created_at_i>=N`` lets the
API stop at our cursor, so one pass asks only for what is new. The cursor keeps the newest
``created_at_i`` seen and the objectIDs seen at exactly that second: the filter is inclusive
(a hit posted in the same second as the last one we read is not lost) and those IDs are
skipped (so the last one is not read twice).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from monitor.collectors.http import HttpClient, redact
from monitor.collectors.text import html_to_text, utc_from_epoch
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post
from monitor.units import Duration

log = logging.getLogger(__name__)

ITEM_URL = "https://news.ycombinator.com/item?id={}"
_TAGS = re.compile(r"^[\w(),-]+$")
_FUTURE_SLACK = 86400
"""Seconds a hit may be dated ahead of our clock (clock skew) before it counts as bogus."""


class HackerNewsOptions(BaseModel):
    """Keys of a ``hackernews`` source besides name/kind/interval/tags."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, description=(
        "the words to search for, e.g. `acme`; a phrase in quotes: `'\"acme cloud\"'`. Algolia "
        "tolerates typos and matches word beginnings, so let your rules confirm the product "
        "name"))
    tags: str = Field("(story,comment)", description=(
        "which kinds of item: a list means any of them (`[story, comment, poll]`); a string is "
        "passed to Algolia as is (comma = and, parentheses = or)"))
    api_url: HttpUrl = Field(HttpUrl("https://hn.algolia.com/api/v1"),
                             description="base of the HN Search API")
    hits_per_page: int = Field(100, ge=1, le=1000, description="hits per request")
    max_pages: int = Field(10, ge=1, le=1000, description="pages read at most per pass")
    backfill: Duration | None = Field(None, gt=0, description=(
        "first pass only: how far back to read, e.g. `7d`; none means only the newest "
        "`max_pages` pages"))

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = "(" + ",".join(str(tag) for tag in value) + ")"
        if isinstance(value, str) and not _TAGS.match(value):
            raise ValueError(f"not an Algolia tag filter: {value!r} (e.g. story, comment, "
                             "(story,comment), ask_hn)")
        return value



def search_url(api_url: str, query: str, tags: str, since: int | None, hits_per_page: int,
               page: int) -> str:
    """The request for one page; parameters always in this order, so URLs are reproducible."""
    params = [("query", query), ("tags", tags)]
    if since is not None:
        params.append(("numericFilters", f"created_at_i>={since}"))
    params += [("hitsPerPage", str(hits_per_page)), ("page", str(page))]
    return f"{api_url.rstrip('/')}/search_by_date?{urlencode(params)}"


class HackerNewsCollector:
    Options: ClassVar[type[BaseModel]] = HackerNewsOptions

    def __init__(self, name: str, options: HackerNewsOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http

    def collect(self, cursor: Cursor | None) -> Fetch:
        opts = self.options
        floor, seen = _floor(cursor, opts.backfill)
        newest, newest_ids = floor, set(seen)
        posts: list[Post] = []
        problems: list[str] = []
        read: set[str] = set()
        received, nb_hits, nb_pages, page, at_cursor = 0, 0, 1, 0, False
        while page < min(nb_pages, opts.max_pages) and not at_cursor:
            url = search_url(str(opts.api_url), opts.query, opts.tags, floor,
                             opts.hits_per_page, page)
            try:
                hits, nb_hits, nb_pages = _search_page(self.http, url)
            except SourceError as error:
                if page == 0:
                    raise
                # The old cursor: the next pass reads all of this again (the store keeps
                # each post once), so the pages not read now are not lost.
                problems.append(f"page {page} failed, read again next pass: {error}")
                return Fetch(tuple(posts), cursor, tuple(problems))
            received += len(hits)
            for hit in hits:
                try:
                    object_id, stamp = _identity(hit)
                except ValueError as error:
                    problems.append(f"skipped a hit ({error})")
                    continue
                if floor is not None and stamp < floor:
                    at_cursor = True  # newest first: the rest is older still
                    continue
                if (stamp == floor and object_id in seen) or object_id in read:
                    continue
                read.add(object_id)
                if newest is None or stamp > newest:
                    newest, newest_ids = stamp, {object_id}
                elif stamp == newest:
                    newest_ids.add(object_id)
                try:
                    post = self._post(hit, object_id, stamp)
                except Exception as error:  # one bad hit never stops the rest
                    problems.append(f"skipped hit {object_id} ({type(error).__name__}: "
                                    f"{error})")
                    continue
                if post is None:
                    log.debug("%s: hit %s has no author or text (deleted)", self.name, object_id)
                else:
                    posts.append(post)
            if not hits:
                break
            page += 1
        if floor is not None and not at_cursor and (page < nb_pages or nb_hits > received):
            problems.append(
                f"read {received} of {nb_hits} hits newer than the cursor (max_pages="
                f"{opts.max_pages}, hits_per_page={opts.hits_per_page}; Algolia serves at most "
                "1000 per query): the older ones are skipped; poll more often or raise max_pages")
        new_cursor = None if newest is None else {"created_at_i": newest,
                                                  "ids": sorted(newest_ids)}
        return Fetch(tuple(posts), new_cursor, tuple(problems))

    def _post(self, hit: Mapping[str, Any], object_id: str, stamp: int) -> Post | None:
        """One hit as a Post; None for a deleted one (no author, or nothing written)."""
        tags = hit.get("_tags")
        is_comment = "comment" in tags if isinstance(tags, list) else \
            hit.get("comment_text") is not None
        title = _str(hit.get("story_title") if is_comment else hit.get("title"))
        text = html_to_text(_str(hit.get("comment_text" if is_comment else "story_text")))
        if not text and not is_comment and title:
            # A link story's only words are its title; the link goes along so rules can
            # match a domain or a repository name.
            link = _str(hit.get("url"))
            text = f"{title}\n\n{link}" if link else title
        author = _str(hit.get("author"))
        if not author or not text:
            return None
        published = utc_from_epoch(stamp)
        if published is None:
            raise ValueError(f"created_at_i {stamp} is not a time")
        counts = [hit.get("points")] + ([] if is_comment else [hit.get("num_comments")])
        counts = [n for n in counts if isinstance(n, int) and not isinstance(n, bool)]
        thread = hit.get("story_id") if is_comment else object_id
        parent = hit.get("parent_id")
        return Post(
            source=self.name,
            external_id=object_id,
            url=ITEM_URL.format(object_id),
            author=author,
            title=title,
            text=text,
            published_at=published,
            thread_id=None if thread is None else str(thread),
            parent_id=None if parent is None else str(parent),
            reach=sum(counts) if counts else None,
        )


def _floor(cursor: Cursor | None, backfill: float | None) -> tuple[int | None, frozenset[str]]:
    """The lowest created_at_i to ask for, and the IDs already read at exactly that second."""
    stamp = (cursor or {}).get("created_at_i")
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        return stamp, frozenset(str(i) for i in (cursor or {}).get("ids") or ())
    if backfill is not None:
        return int(time.time() - backfill), frozenset()
    return None, frozenset()


def _search_page(http: HttpClient, url: str) -> tuple[list[Any], int, int]:
    """One page of hits with Algolia's nbHits and nbPages; anything else is a SourceError."""
    response = http.get(url)
    try:
        document = json.loads(response.content)
    except ValueError as error:  # truncated, not JSON, not UTF-8
        raise SourceError(f"not a readable search response ({type(error).__name__}: "
                          f"{str(error)[:200]}) from {redact(response.url)}") from None
    hits = document.get("hits") if isinstance(document, dict) else None
    if not isinstance(hits, list):
        raise SourceError(f"not an Algolia search response (no hits list) from "
                          f"{redact(response.url)}", retryable=False)
    return hits, _int(document.get("nbHits")), _int(document.get("nbPages"))


def _identity(hit: Any) -> tuple[str, int]:
    """objectID and created_at_i, which the cursor needs; a hit without them is a problem."""
    if not isinstance(hit, dict):
        raise ValueError(f"not an object: {type(hit).__name__}")
    object_id, stamp = hit.get("objectID"), hit.get("created_at_i")
    if not isinstance(object_id, str | int) or isinstance(object_id, bool) or \
            not str(object_id).strip():
        raise ValueError("no objectID")
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise ValueError(f"hit {object_id} has no created_at_i")
    if stamp > time.time() + _FUTURE_SLACK:  # it would move the cursor past everything to come
        raise ValueError(f"hit {object_id} has created_at_i {stamp}, in the future")
    return str(object_id).strip(), stamp


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str | None:
    """A non-blank string, stripped, else None: JSON fields may be null, "" or numbers."""
    return (value.strip() or None) if isinstance(value, str) else None
