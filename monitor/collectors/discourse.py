"""Discourse forums through their public JSON API: the latest posts, one category, or a search.

Why post ids: Discourse numbers every post of a site from one increasing sequence, so "the
highest post id seen" is a cursor no edit, bump or pinned topic can fool. Three ways to find
new posts, cheapest first:

- no ``category``/``search``: ``/posts.json`` (newest posts of the whole site, paged with
  ``?before=``), read down to the cursor;
- ``category``: that category's topic list (newest bump first, pinned topics on top), and in
  each topic bumped since the last pass its post ids above the cursor;
- ``search``: ``/search.json`` newest first; the hits are only blurbs, so the full posts are
  fetched from their topics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    model_validator,
)

from monitor.collectors.http import HttpClient, redact
from monitor.collectors.text import html_to_text, utc_from_iso
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post
from monitor.units import Duration

CHUNK = 20
"""Post ids asked for in one ``/t/{id}/posts.json`` request (what Discourse's own UI asks)."""

MAX_LIST_PAGES = 50
"""Pages of a topic list or of search results read in one pass, whatever they say."""


class DiscourseOptions(BaseModel):
    """Keys of a ``discourse`` source besides name/kind/interval/tags."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl = Field(description="the forum's base URL, e.g. `https://meta.discourse.org`")
    category: str | None = Field(
        None, pattern=r"^[\w-]+(/[\w-]+)*$", description=(
            "only this category: its id (`12`) or `slug/id` as in its URL (`support/12`)"))
    search: str | None = Field(None, min_length=1, description=(
        "only posts matching this Discourse search (e.g. `login broken`); `order:latest` is "
        "added unless the query has an `order:`"))
    api_key: SecretStr | None = Field(None, description=(
        "sent as the `Api-Key` header, for private or login-only forums; use `${ENV_VAR}`"))
    api_username: str | None = Field(None, min_length=1, description=(
        "sent as `Api-Username` (needs `api_key`)"))
    max_posts: int = Field(200, ge=1, le=5000, description=(
        "posts read per pass at most; also bounds how many topics are opened"))
    backfill: Duration | None = Field(None, gt=0, description=(
        "first pass only: nothing older than this (`7d`, `12h`)"))
    allow_hosts: list[str] = Field(default_factory=list, description=(
        "other hosts (`host` or `host:port`) the forum may redirect to (the API key is never "
        "sent to another origin); none: only the forum's own host"))

    @model_validator(mode="after")
    def _one_way(self) -> DiscourseOptions:
        if self.category and self.search:
            raise ValueError("use category or search, not both (search can say #category)")
        if self.api_username and not self.api_key:
            raise ValueError("api_username needs api_key")
        return self


@dataclass
class _Pass:
    """One collection's bookkeeping: what is new, what is left of the budget, what was seen."""

    since: int                     # highest post id of earlier passes; 0 on the first
    cutoff: datetime | None        # first pass with a backfill window: nothing older
    budget: int
    top: int = 0                   # highest post id seen in this pass
    cut: bool = False              # the budget ran out before the cursor was reached
    taken: dict[int, tuple[Mapping[str, Any], str | None, str | None]] = field(
        default_factory=dict)      # post id -> (post, topic title, topic slug)
    numbers: dict[tuple[int, int], int] = field(default_factory=dict)  # (topic, number) -> id
    problems: list[str] = field(default_factory=list)

    def remember(self, item: Mapping[str, Any]) -> None:
        """Note a post's number, so replies to it get its id as parent."""
        ids = (item.get("topic_id"), item.get("post_number"), item.get("id"))
        if all(_is_int(i) for i in ids):
            self.numbers[ids[0], ids[1]] = ids[2]

    def take(self, item: Mapping[str, Any], title: str | None, slug: str | None) -> bool:
        """Keep a post newer than the cursor; False once the cursor, window or budget ends."""
        post_id = item.get("id")
        if not _is_int(post_id):
            self.problems.append("skipped a post without an id")
            return True
        if post_id <= self.since:
            return False
        when = utc_from_iso(item.get("created_at"))
        if self.cutoff and when and when < self.cutoff:
            return False
        if self.budget <= 0:
            self.cut = self.cut or bool(self.since)
            return False
        self.remember(item)
        if post_id not in self.taken:
            self.budget -= 1
            self.top = max(self.top, post_id)
            self.taken[post_id] = (item, title, slug)
        return True


class DiscourseCollector:
    """New posts of one Discourse forum (see the module docstring for the three ways in)."""

    Options: ClassVar[type[BaseModel]] = DiscourseOptions

    def __init__(self, name: str, options: DiscourseOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http
        self.base = str(options.url).rstrip("/")
        self.headers: dict[str, str] = {}
        if options.api_key:
            self.headers["Api-Key"] = options.api_key.get_secret_value()
        if options.api_username:
            self.headers["Api-Username"] = options.api_username

    def collect(self, cursor: Cursor | None) -> Fetch:
        """Posts above the cursor's post id; the new cursor is the highest id seen."""
        cursor = cursor or {}
        since = cursor.get("last_post_id")
        since = since if _is_int(since) else 0
        backfill = self.options.backfill
        run = _Pass(since, datetime.now(UTC) - timedelta(seconds=backfill)
                    if backfill and not since else None, self.options.max_posts)
        new_cursor: dict[str, Any] = {}
        if self.options.search:
            self._search(run, self.options.search)
        elif self.options.category:
            bumped = self._category(run, self.options.category, utc_from_iso(
                cursor.get("bumped_at")))
            new_cursor["bumped_at"] = bumped.isoformat() if bumped else None
        else:
            self._latest_posts(run)
        if run.cut:
            run.problems.append(f"over {self.options.max_posts} new posts since the last pass; "
                                "older ones were not read (raise max_posts or poll more often)")
        posts = []
        for post_id in sorted(run.taken):
            item, title, slug = run.taken[post_id]
            try:
                post = self._post(item, title, slug, run.numbers)
            except (KeyError, TypeError, ValueError) as error:  # one bad post, not the pass
                run.problems.append(f"skipped post {post_id} ({type(error).__name__}: {error})")
                continue
            if post is not None:
                posts.append(post)
        new_cursor["last_post_id"] = max(run.since, run.top)
        return Fetch(tuple(posts), new_cursor, tuple(run.problems),
                     unchanged=not run.taken and not run.problems)

    # --- the three ways in ---------------------------------------------------------------

    def _latest_posts(self, run: _Pass) -> None:
        """Newest first, page by page (``before`` is inclusive), down to the cursor."""
        url = f"{self.base}/posts.json"
        while True:
            page = _list(self._get(url), "latest_posts", url, required=True)
            ids = [p["id"] for p in page if isinstance(p, Mapping) and _is_int(p.get("id"))]
            for item in page:  # first, so a reply's parent on the same page is known
                if isinstance(item, Mapping):
                    run.remember(item)
            known = len(run.taken)
            for item in page:
                if isinstance(item, Mapping) and not run.take(
                        item, item.get("topic_title"), item.get("topic_slug")):
                    return
            if not ids or min(ids) <= 1 or len(run.taken) == known:
                return  # the forum's first post, or a server that ignores ``before``
            before = min(ids) - 1
            if run.budget <= 0:
                run.cut = run.cut or before > run.since > 0
                return
            url = f"{self.base}/posts.json?before={before}"

    def _category(self, run: _Pass, category: str, watermark: datetime | None) -> datetime | None:
        """Walk the topic list until a topic last bumped before the previous pass."""
        path = f"/c/{category}.json" if category.isdigit() else f"/c/{category}/l/latest.json"
        url: str | None = self.base + path
        newest, visited, opened = watermark, set(), 0
        while url and url not in visited and len(visited) < MAX_LIST_PAGES:
            visited.add(url)
            document = self._get(url)
            listing = document.get("topic_list") if isinstance(document, Mapping) else None
            if not isinstance(listing, Mapping):
                raise SourceError(f"unexpected answer from {redact(url)} (no topic_list); is "
                                  "this a Discourse category?", retryable=False)
            for topic in _list(listing, "topics", url, required=True):
                if not isinstance(topic, Mapping) or not _is_int(topic.get("id")):
                    continue
                bumped = utc_from_iso(topic.get("bumped_at") or topic.get("last_posted_at"))
                seen = bumped is not None and (
                    (watermark is not None and bumped <= watermark)
                    or (run.cutoff is not None and bumped < run.cutoff))
                if seen and topic.get("pinned"):  # pinned topics stay on top of the list
                    continue
                # Opened topics count too: ones with nothing new cost a request each.
                if seen or run.budget <= 0 or opened >= self.options.max_posts:
                    run.cut = run.cut or (not seen and bool(run.since))
                    return newest
                if bumped and (newest is None or bumped > newest):
                    newest = bumped
                opened += 1
                self._topic(run, topic["id"])
            more = listing.get("more_topics_url")
            url = self._next_page(more) if isinstance(more, str) else None
        return newest

    def _search(self, run: _Pass, query: str) -> None:
        """Search hits newest first; their full posts come from their topics."""
        if "order:" not in query:
            query += " order:latest"
        for page in range(1, MAX_LIST_PAGES + 1):
            params = {"q": query, **({"page": page} if page > 1 else {})}
            url = f"{self.base}/search.json?{urlencode(params)}"
            document = self._get(url)
            if isinstance(document, list):  # Discourse before 2015: [{type, results}]
                run.problems.append(f"{redact(url)} answered in the old list format, which "
                                    "has no posts; nothing read")
                return
            topics = {t["id"]: t for t in _list(document, "topics", url)
                      if isinstance(t, Mapping) and _is_int(t.get("id"))}
            hits = [h for h in _list(document, "posts", url) if isinstance(h, Mapping)]
            new: dict[int, list[int]] = {}
            for hit in hits:
                if _is_int(hit.get("id")) and _is_int(hit.get("topic_id")) and \
                        hit["id"] > run.since:
                    new.setdefault(hit["topic_id"], []).append(hit["id"])
            for topic_id, ids in new.items():
                topic = topics.get(topic_id, {})
                self._topic_posts(run, topic_id, ids, [], topic.get("title"), topic.get("slug"))
            more = _mapping(document.get("grouped_search_result")).get("more_full_page_results")
            if not more or sum(map(len, new.values())) < len(hits) or run.budget <= 0:
                return

    # --- topics --------------------------------------------------------------------------

    def _topic(self, run: _Pass, topic_id: int) -> None:
        """One topic: the post ids above the cursor, from its first chunk or fetched."""
        url = f"{self.base}/t/{topic_id}.json"
        try:
            document = self._get(url)
        except SourceError as error:
            if error.retryable:  # fail the pass: the next one retries with the same cursor
                raise
            run.problems.append(f"skipped topic {topic_id}: {error}")
            return
        document = _mapping(document)
        stream = _mapping(document.get("post_stream"))
        chunk = [p for p in _items(stream.get("posts")) if isinstance(p, Mapping)]
        ids = _items(stream.get("stream")) or [p.get("id") for p in chunk]
        self._topic_posts(run, topic_id, ids, chunk, document.get("title"),
                          document.get("slug"))

    def _topic_posts(self, run: _Pass, topic_id: int, ids: list[Any],
                     chunk: list[Mapping[str, Any]], title: str | None,
                     slug: str | None) -> None:
        """Take the newest of ``ids`` above the cursor the budget allows, fetching the rest."""
        for item in chunk:
            run.remember(item)
        wanted = sorted({i for i in ids if _is_int(i) and i > run.since} - set(run.taken))
        if len(wanted) > run.budget:
            run.cut = run.cut or bool(run.since)
            wanted = wanted[len(wanted) - run.budget:]
        have = {p["id"]: p for p in chunk if _is_int(p.get("id"))}
        missing = [i for i in wanted if i not in have]
        for start in range(0, len(missing), CHUNK):
            query = "&".join(f"post_ids[]={i}" for i in missing[start:start + CHUNK])
            url = f"{self.base}/t/{topic_id}/posts.json?{query}"
            try:
                fetched = _items(_mapping(_mapping(self._get(url)).get("post_stream")).get(
                    "posts"))
            except SourceError as error:
                if error.retryable:
                    raise
                run.problems.append(f"skipped posts of topic {topic_id}: {error}")
                continue
            for item in fetched:
                if isinstance(item, Mapping) and _is_int(item.get("id")):
                    have[item["id"]] = item
                    run.remember(item)
        for post_id in reversed(wanted):  # newest first, as the budget counts
            if post_id in have and not run.take(have[post_id], title, slug):
                break

    def _next_page(self, more: str) -> str | None:
        """``more_topics_url`` is site-relative and, on current Discourse, lacks ``.json``."""
        if not more.startswith("/") or more.startswith("//"):
            return None
        parts = urlsplit(more)
        path = parts.path if parts.path.endswith(".json") else parts.path + ".json"
        origin = urlsplit(self.base)
        return f"{origin.scheme}://{origin.netloc}{path}" + (f"?{parts.query}" if parts.query
                                                             else "")

    # --- one request, one post -----------------------------------------------------------

    def _get(self, url: str) -> Any:
        """GET JSON; the key goes in headers only (never in the URL, so never in a message)."""
        response = self.http.get(url, headers=self.headers,
                                 allow_hosts=self.options.allow_hosts)
        try:
            return json.loads(response.content)
        except ValueError as error:  # cut off, an HTML error page, bad UTF-8
            raise SourceError(f"not valid JSON from {redact(url)} ({type(error).__name__}: "
                              f"{str(error)[:120]})") from None

    def _post(self, item: Mapping[str, Any], title: str | None, slug: str | None,
              numbers: Mapping[tuple[int, int], int]) -> Post | None:
        """One Discourse post; None for what is not someone's public words."""
        if item.get("deleted_at") or item.get("hidden") or item.get("user_deleted"):
            return None
        if item.get("post_type", 1) != 1:  # moderator notes, small actions, staff whispers
            return None
        post_id, topic_id, number = (int(item[k]) for k in ("id", "topic_id", "post_number"))
        published = utc_from_iso(item.get("created_at"))
        if published is None:
            raise ValueError(f"created_at {item.get('created_at')!r} is not a time")
        slug = item.get("topic_slug") or slug or "topic"
        title = item.get("topic_title") or title
        # The opening post is the thread itself: not a reply, so its title counts as its words.
        reply = number > 1
        parent = numbers.get((topic_id, item.get("reply_to_post_number") or 0), topic_id)
        return Post(
            source=self.name,
            external_id=str(post_id),
            url=f"{self.base}/t/{slug}/{topic_id}/{number}",
            author=item.get("username") or item.get("name") or None,
            title=title.strip() or None if isinstance(title, str) else None,
            text=html_to_text(item.get("cooked")),
            published_at=published,
            thread_id=str(topic_id),
            parent_id=str(parent) if reply else None,
            reach=_reach(item),
        )


def _reach(item: Mapping[str, Any]) -> int | None:
    """Replies plus likes (``like_count``, else the like action's count), where given."""
    likes = item.get("like_count")
    if not _is_int(likes):
        actions = _items(item.get("actions_summary"))
        likes = next((a.get("count") for a in actions if isinstance(a, Mapping)
                      and a.get("id") == 2 and _is_int(a.get("count"))), None)
    counts = [n for n in (item.get("reply_count"), likes) if _is_int(n)]
    return sum(counts) if counts else None


def _list(document: Any, key: str, url: str, required: bool = False) -> list[Any]:
    """``document[key]`` as a list; anything else is not the Discourse API we know."""
    value = document.get(key, None if required else []) if isinstance(document, Mapping) \
        else None
    if not isinstance(value, list):
        raise SourceError(f"unexpected answer from {redact(url)} (no {key} list); is this "
                          "a Discourse forum?", retryable=False)
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    """JSON from strangers may hold anything anywhere: an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

