"""Reddit: new posts and comments of subreddits, and Reddit-wide searches (the API client is
``reddit_api``).

Incremental per listing (a subreddit's new posts, its new comments, one search): the cursor
keeps the newest item's fullname and ``created_utc``; a pass pages back (``after``) until it
meets that item or an older one. A first pass reads back ``backfill``; every pass reads at most
``max_items`` per listing. One failing listing is a problem; the source fails only when all do.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)

from monitor.collectors.http import HttpClient
from monitor.collectors.reddit_api import (
    FAILURES,
    PAGE,
    Fatal,
    Listing,
    connect,
    explain,
    page,
    scrub,
)
from monitor.collectors.text import MAX_TEXT, tidy, utc_from_epoch
from monitor.errors import SourceError
from monitor.model import Cursor, Fetch, Post
from monitor.units import Duration

if TYPE_CHECKING:
    import praw

WEB = "https://www.reddit.com"
"""Where people read a post: Post.url points here whatever ``api_url`` is."""

_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")


class RedditOptions(BaseModel):
    """Keys of a ``reddit`` source besides name/kind/interval/tags."""

    model_config = ConfigDict(extra="forbid")
    subreddits: list[str] = Field(default_factory=list, description=(
        "subreddit names (`askreddit` or `r/askreddit`) whose new posts are read"))
    search: list[str] = Field(default_factory=list, description=(
        "Reddit-wide search queries (a product name, a domain), read newest first"))
    comments: bool = Field(True, description=(
        "also read each subreddit's new comments (`/r/{sub}/comments`)"))
    backfill: Duration = Field(7 * 86400.0, gt=0, description=(
        "how far back the first pass reads (`30m`, `12h`, `7d`, or seconds)"))
    max_items: int = Field(300, ge=1, le=1000, description=(
        "items read per listing per pass at most"))
    client_id: str | None = Field(None, description="app id, normally `${REDDIT_CLIENT_ID}`")
    client_secret: SecretStr | None = Field(None, description=(
        "app secret, normally `${REDDIT_CLIENT_SECRET}`; never logged"))
    praw_site: str | None = Field(None, description=(
        "a `praw.ini` site to take credentials from when `client_id`/`client_secret` are not "
        "set"))
    user_agent: str | None = Field(None, min_length=7, description=(
        "User-Agent sent to Reddit (at least 7 characters); none: `http.user_agent`"))
    timeout: float = Field(16.0, gt=0, le=300, description="seconds to wait for one answer")
    api_url: HttpUrl = Field(HttpUrl("https://oauth.reddit.com"), description=(
        "advanced: another base URL for the API (tests, proxies)"))
    auth_url: HttpUrl = Field(HttpUrl("https://www.reddit.com"), description=(
        "advanced: another base URL for the token endpoint (tests, proxies)"))

    @field_validator("subreddits")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        cleaned = []
        for name in names:
            bare = re.sub(r"^/?r/", "", name.strip()).strip("/")
            if not _SUBREDDIT.match(bare):
                raise ValueError(f"not a subreddit name: {name!r} (e.g. askreddit or r/askreddit)")
            cleaned.append(bare)
        return list(dict.fromkeys(cleaned))

    @field_validator("search")
    @classmethod
    def _queries(cls, queries: list[str]) -> list[str]:
        if any(not q.strip() for q in queries):
            raise ValueError("a search query is empty")
        return list(dict.fromkeys(q.strip() for q in queries))

    @field_validator("client_id", "client_secret", "praw_site", "user_agent", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """``${REDDIT_CLIENT_ID:-}`` with the variable unset gives "": that is "not set"."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _something_to_read(self) -> RedditOptions:
        if not self.subreddits and not self.search:
            raise ValueError("give subreddits, search, or both")
        return self


@dataclass
class _Outcome:
    posts: list[Post]
    state: dict[str, Any] | None  # what the cursor keeps for this listing next time
    problems: list[str]
    failed: bool = False
    retryable: bool = True


class RedditCollector:
    """``kind: reddit``: each listing (subreddit posts, its comments, a search) read back to
    its own place in the cursor."""

    Options: ClassVar[type[BaseModel]] = RedditOptions

    def __init__(self, name: str, options: RedditOptions, http: HttpClient) -> None:
        self.name, self.options, self.http = name, options, http

    def listings(self) -> list[Listing]:
        """What one pass reads, in order; each has its own place in the cursor."""
        found = []
        for sub in self.options.subreddits:
            found.append(Listing(f"r/{sub.lower()}/new", f"r/{sub}/new"))
            if self.options.comments:
                found.append(Listing(f"r/{sub.lower()}/comments", f"r/{sub}/comments"))
        for query in self.options.search:
            found.append(Listing(f"search:{query}", "r/all/search",
                                 {"q": query, "sort": "new", "t": "all"}))
        return found

    def collect(self, cursor: Cursor | None) -> Fetch:
        known: Mapping[str, Any] = (cursor or {}).get("listings") or {}
        now = time.time()
        # praw is not thread-safe: one Reddit (and one HTTP session) per pass, never shared.
        reddit, session = connect(self.options, self.http.user_agent)
        outcomes: list[tuple[Listing, _Outcome]] = []
        try:
            for listing in self.listings():
                state = known.get(listing.key)
                outcomes.append((listing, self._read(reddit, listing,
                                                     state if _valid(state) else None, now)))
        except Fatal as error:
            raise SourceError(scrub(f"reddit: {error}", self.options), error.retryable) from None
        finally:
            session.close()
        posts = [post for _, outcome in outcomes for post in outcome.posts]
        problems = [scrub(p, self.options) for _, outcome in outcomes for p in outcome.problems]
        if all(outcome.failed for _, outcome in outcomes) and not posts:
            raise SourceError("reddit: every listing failed: " + "; ".join(problems[:5]),
                              any(outcome.retryable for _, outcome in outcomes))
        states = {listing.key: outcome.state for listing, outcome in outcomes if outcome.state}
        return Fetch(tuple(posts), {"listings": states}, tuple(problems))

    def _read(self, reddit: praw.Reddit, listing: Listing, state: dict[str, Any] | None,
              now: float) -> _Outcome:
        """One listing, newest first, back to the cursor (or the backfill window)."""
        cutoff = now - self.options.backfill
        limit = self.options.max_items
        posts: list[Post] = []
        problems: list[str] = []
        newest: tuple[float, int, str] | None = None
        after: str | None = None
        seen = 0
        reached = False
        while not reached and seen < limit:
            try:
                children, after = page(reddit, listing, after, min(PAGE, limit - seen), self.http,
                                       self.name)
            except FAILURES as error:
                message, retryable = explain(error)
                # Pages already read are kept, but the cursor stays: the gap is read next time.
                return _Outcome(posts, state, [*problems, f"{listing.key}: {message}"], True,
                                retryable)
            for child in children:
                if seen >= limit:
                    break
                seen += 1
                try:
                    kind, data, mark = _parts(child)
                except ValueError as error:
                    problems.append(f"{listing.key}: skipped an item ({error})")
                    continue
                if _is_older(mark, state, cutoff):
                    reached = True
                    break
                newest = max(newest or mark, mark)
                try:
                    post = self._post(kind, data)
                except (ValueError, TypeError, KeyError) as error:
                    problems.append(f"{listing.key}: skipped {mark[2]} "
                                    f"({type(error).__name__}: {error})")
                    continue
                if post is not None:
                    posts.append(post)
            if not children or not after:
                reached = True
        if not reached and state is not None:
            problems.append(f"{listing.key}: read max_items ({limit}) without reaching the "
                            "last pass's newest item; older new items were skipped")
        new_state = {"fullname": newest[2], "created": newest[0]} if newest else state
        return _Outcome(posts, new_state, problems)

    def _post(self, kind: str, data: Mapping[str, Any]) -> Post | None:
        """A Post, or None for a deleted or removed item (never stored)."""
        if _gone(data):
            return None
        published = utc_from_epoch(data.get("created_utc"))
        if published is None:
            raise ValueError("no created_utc")
        fullname = str(data["name"])
        if kind == "t3":
            permalink = data.get("permalink") or f"/comments/{data['id']}/"
            return Post(source=self.name, external_id=fullname, url=WEB + permalink,
                        author=str(data["author"]), title=title_text(data.get("title")) or None,
                        text=clean(data.get("selftext")), published_at=published,
                        thread_id=fullname, parent_id=None,
                        reach=_reach(data.get("score"), data.get("num_comments")))
        link_id = str(data["link_id"])
        permalink = data.get("permalink") or (  # older listings carry none: build Reddit's own
            f"/r/{data['subreddit']}/comments/{link_id.removeprefix('t3_')}/_/{data['id']}/")
        return Post(source=self.name, external_id=fullname, url=WEB + permalink,
                    author=str(data["author"]), title=title_text(data.get("link_title")) or None,
                    text=clean(data.get("body")), published_at=published, thread_id=link_id,
                    parent_id=str(data.get("parent_id") or link_id),
                    reach=_reach(data.get("score"), _reply_count(data.get("replies"))))

def _valid(state: Any) -> bool:
    return (isinstance(state, Mapping) and isinstance(state.get("fullname"), str)
            and isinstance(state.get("created"), int | float))


def _parts(child: Any) -> tuple[str, Mapping[str, Any], tuple[float, int, str]]:
    """Kind, data and the item's place in time: (created_utc, base-36 id, fullname)."""
    if not isinstance(child, Mapping) or child.get("kind") not in ("t1", "t3"):
        raise ValueError("not a post or a comment")
    data = child.get("data")
    if not isinstance(data, Mapping):
        raise ValueError("no data")
    try:
        created = float(data["created_utc"])
        fullname = str(data["name"])
        number = int(fullname.split("_", 1)[1], 36)
    except (KeyError, TypeError, ValueError, IndexError):
        raise ValueError("no created_utc or fullname") from None
    return child["kind"], data, (created, number, fullname)


def _is_older(mark: tuple[float, int, str], state: Mapping[str, Any] | None,
              cutoff: float) -> bool:
    """At or before where the last pass ended (or, first time, before the backfill window).

    Many comments share a second, so within the cursor's second the base-36 ids decide:
    Reddit numbers items in the order they are made.
    """
    created, number, fullname = mark
    if state is None:
        return created < cutoff
    if fullname == state["fullname"] or created < state["created"]:
        return True
    if created > state["created"]:
        return False
    kind, _, known = state["fullname"].partition("_")
    try:
        return fullname.startswith(kind + "_") and number < int(known, 36)
    except ValueError:
        return False


def _gone(data: Mapping[str, Any]) -> bool:
    """Deleted by its author or removed by moderators: a placeholder, not someone's words."""
    if data.get("author") in (None, "", "[deleted]") or data.get("removed_by_category"):
        return True
    words = data.get("body") if "body" in data else data.get("selftext")
    return isinstance(words, str) and words.strip() in ("[deleted]", "[removed]")


def _reply_count(replies: Any) -> int | None:
    """Direct replies, when the item carries them (thread pages do; /comments lists do not)."""
    if not isinstance(replies, Mapping):
        return None
    children = (replies.get("data") or {}).get("children") or []
    return sum(1 for c in children if isinstance(c, Mapping) and c.get("kind") == "t1")


def _reach(score: Any, replies: Any) -> int | None:
    if not isinstance(score, int):
        return None
    return max(0, score + (replies if isinstance(replies, int) else 0))


_LINK = re.compile(r"!?\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\((?:[^()\n]|\([^()\n]*\))*\)")
"""``[text](url)``: text may hold one level of brackets, the URL one of parentheses."""
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def clean(markdown: Any) -> str:
    """Reddit markdown as readers see its words: ``[text](url)`` -> text, entities decoded
    (``&#x200B;`` is how Reddit's editor writes an empty line), invisible characters dropped (a
    soft hyphen must not split a word a rule looks for), spaces tidied, length capped."""
    if not isinstance(markdown, str) or not markdown:
        return ""
    text = html.unescape(markdown[:4 * MAX_TEXT])
    return tidy(_INVISIBLE.sub("", _LINK.sub(r"\1", text)))


def title_text(title: Any) -> str:
    """Titles are plain text, shown as typed (no markdown, no entities): only tidied."""
    return tidy(title) if isinstance(title, str) else ""
