"""Reddit's API through praw: the client for one pass, one page of a listing, and what a
failure means (one listing's problem, or the whole source's).

praw brings what Reddit's API asks of a client: the app-only OAuth token (client_credentials,
read-only), pacing by Reddit's ``x-ratelimit-*`` headers and retries of 5xx answers. The
listing JSON is read as it comes (``Reddit.request``), not as praw model objects: those fetch
lazily, so reading a field a listing did not carry would be a hidden request per item.
"""

from __future__ import annotations

import configparser
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import praw
import requests
from praw.exceptions import PRAWException
from prawcore import Requestor
from prawcore.exceptions import (
    BadJSON,
    Forbidden,
    NotFound,
    OAuthException,
    PrawcoreException,
    Redirect,
    RequestException,
    ResponseException,
    ServerError,
    TooManyRequests,
)

from monitor.collectors.http import HttpClient, retry_after_seconds, time_left
from monitor.errors import SourceError

if TYPE_CHECKING:
    from monitor.collectors.reddit import RedditOptions

log = logging.getLogger(__name__)

PAGE = 100
"""Reddit's largest page of a listing."""

MISSING_CREDENTIALS = (
    "reddit: no client_id/client_secret: set REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET and use "
    "client_id: ${REDDIT_CLIENT_ID} and client_secret: ${REDDIT_CLIENT_SECRET} in the source, "
    "or name a praw.ini site with praw_site (app: https://www.reddit.com/prefs/apps)")


@dataclass(frozen=True)
class Listing:
    """What one pass reads page by page: a subreddit's new posts or comments, or a search."""

    key: str  # its name in the cursor, and in problems
    path: str
    params: Mapping[str, str] = field(default_factory=dict)


class Fatal(Exception):
    """Every listing would fail the same way (credentials refused): stop the source."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotAListing(Exception):
    """The answer was JSON, but not a Reddit listing."""


FAILURES = (PrawcoreException, PRAWException, NotAListing)
"""What ``page`` raises when one listing failed (``explain`` says why)."""


class _Requestor(Requestor):
    """prawcore's requestor, with our ``timeout`` on every request: prawcore's session passes
    its own 16 s default to each call, and praw 8 does not hand its ``timeout`` setting on.

    Never follows a redirect: the token request carries the app's credentials, API requests
    the bearer token, and neither may reach another origin (prawcore already asks for no
    redirects on API calls; the token POST would follow them). A request never starts after
    the source's deadline, nor waits past it for one answer."""

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        left = time_left()
        if left is not None and left <= 0:
            raise SourceError("deadline exceeded: the source ran out of time "
                              "(http.source_deadline / pass_deadline)")
        kwargs["allow_redirects"] = False
        return super().request(*args, timeout=self.timeout if left is None
                               else min(self.timeout, left), **kwargs)


def connect(options: RedditOptions, user_agent: str) -> tuple[praw.Reddit, requests.Session]:
    """A read-only praw client for one pass, with its own HTTP session (praw is not
    thread-safe: a client is never shared); ``user_agent`` unless the options name one."""
    settings: dict[str, Any] = {
        "user_agent": options.user_agent or user_agent,
        "oauth_url": str(options.api_url).rstrip("/"),
        "reddit_url": str(options.auth_url).rstrip("/"),
        "check_for_updates": False,  # praw would ask PyPI on the first instance
    }
    site = None
    if options.client_id and options.client_secret:
        settings["client_id"] = options.client_id
        settings["client_secret"] = options.client_secret.get_secret_value()
    elif options.praw_site:
        site = options.praw_site
    else:
        raise SourceError(MISSING_CREDENTIALS, retryable=False)
    session = requests.Session()
    try:
        reddit = praw.Reddit(site, requestor_class=_Requestor,
                             requestor_kwargs={"session": session, "timeout": options.timeout},
                             **settings)
    except (PRAWException, configparser.Error, ValueError) as error:
        session.close()
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        where = f"with praw.ini site {site!r}" if site else "with these options"
        raise SourceError(scrub(f"reddit: praw cannot start {where} "
                                 f"({type(error).__name__}: {first})", options), False) from None
    reddit.read_only = True  # a praw.ini site with a password must still only read
    return reddit, session


def page(reddit: praw.Reddit, listing: Listing, after: str | None, limit: int,
         http: HttpClient, source: str) -> tuple[list[Any], str | None]:
    """One page of ``listing`` after the item ``after``: its children and the next ``after``.
    A 429 is waited out (Retry-After) up to the ``http`` retries settings; another failure
    raises one of FAILURES (or Fatal: the credentials were refused)."""
    params: dict[str, str | int] = {**listing.params, "limit": limit}
    if after:
        params["after"] = after
    tries = 0
    while True:
        try:
            answer = reddit.request(method="GET", path=listing.path, params=params)
            break
        except TooManyRequests as error:
            wait = retry_after_seconds(error.retry_after)
            if wait is None:
                wait = min(http.backoff * 2**tries, http.max_retry_after)
            if tries >= http.retries or wait > http.max_retry_after:
                raise
            log.info("%s: HTTP 429 on %s; retrying in %.1fs", source, listing.key, wait)
            time.sleep(wait)
            tries += 1
        except (ResponseException, OAuthException) as error:
            _raise_if_credentials(error)
            raise
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("children"), list):
        raise NotAListing
    after_name = data.get("after")
    return data["children"], after_name if isinstance(after_name, str) and after_name else None


def scrub(message: str, options: RedditOptions) -> str:
    """Belt and braces: whatever an exception said, the secret never reaches a log."""
    secret = options.client_secret
    if secret and secret.get_secret_value():
        message = message.replace(secret.get_secret_value(), "***")
    return message


def _raise_if_credentials(error: PrawcoreException) -> None:
    """The token endpoint said no: no listing can succeed, so the source fails at once."""
    if isinstance(error, OAuthException):
        raise Fatal(f"credentials refused ({error.error}); check client_id/client_secret",
                     retryable=False)
    response = getattr(error, "response", None)
    if response is not None and "/api/v1/access_token" in str(response.url):
        status = response.status_code
        raise Fatal(f"credentials refused (HTTP {status} from the token endpoint); check "
                     "client_id/client_secret", retryable=status >= 500 or status == 429)


def explain(error: Exception) -> tuple[str, bool]:
    """A one-line reason for a failed listing, and whether a later pass may do better."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(error, TooManyRequests):
        wait = f"; Reddit asks to wait {error.retry_after}s" if error.retry_after else ""
        return f"HTTP 429 rate limited{wait}", True
    if isinstance(error, NotFound):
        return "HTTP 404: no such subreddit, or it is banned", False
    if isinstance(error, Forbidden):
        return "HTTP 403: a private or quarantined subreddit", False
    if isinstance(error, Redirect):
        return f"redirected to {error.path} (a banned or unknown subreddit)", False
    if isinstance(error, BadJSON):
        return f"HTTP {status} with a body that is not valid JSON", True
    if isinstance(error, ServerError):
        return f"HTTP {status} (Reddit's servers; praw retried)", True
    if isinstance(error, NotAListing):
        return "the answer is not a Reddit listing", True
    if isinstance(error, ResponseException):
        return f"HTTP {status}", status is None or status >= 500
    if isinstance(error, RequestException):
        cause = error.original_exception
        return f"network error ({type(cause).__name__}: {str(cause)[:200]})", True
    return f"{type(error).__name__}: {str(error)[:200]}", True
