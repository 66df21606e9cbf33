"""The one HTTP client every collector shares: polite, bounded, and honest about failure.

Why one client: timeouts, the size cap, the User-Agent, retries and conditional GET are the
same for every source, and a collector that forgets one of them can hang a whole pass.
"""

from __future__ import annotations

import functools
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import certifi
import httpx

from monitor.errors import SourceError

log = logging.getLogger(__name__)

_SECRET_PARAM = re.compile(r"key|token|secret|pass|auth|sig", re.IGNORECASE)


def redact(url: str) -> str:
    """Hide credentials in a URL (user:password@, ?api_key=...) before it reaches a log."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal keeps its brackets, or the port would merge into it
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode(
        [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query, True)],
        safe="*",  # "api_key=***" in a log, not "api_key=%2A%2A%2A"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Read a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    """GET with timeouts, a body-size cap, conditional GET and retries on 5xx/429.

    Thread-safe (one httpx.Client underneath), so collectors running in parallel share it.
    """

    def __init__(
        self,
        user_agent: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        total_timeout: float = 60.0,
        max_bytes: int = 10 * 1024 * 1024,
        retries: int = 2,
        backoff: float = 1.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.total_timeout = total_timeout
        self.user_agent = user_agent
        self._sleep = sleep
        self._robots: dict[str, RobotFileParser] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=True,
            max_redirects=5,
            event_hooks={"request": [_keep_headers_home]},
            verify=_tls_context(),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        robots: bool = False,
        delay: float = 0.0,
    ) -> Response:
        """Fetch ``url``; a 304 comes back as a Response, every failure as SourceError.

        ``robots``: refuse a URL the site's robots.txt disallows for our User-Agent (pages
        scraped as a crawler would; APIs and feeds are meant for programs). ``delay``: at
        least this many seconds between requests to one host (a robots.txt Crawl-delay that
        asks for more wins).
        """
        if robots and not self.allowed(url):
            raise SourceError(f"robots.txt disallows {redact(url)} for our User-Agent; "
                              "skipped", retryable=False)
        if robots or delay:
            self._pace(url, max(delay, self._crawl_delay(url) if robots else 0.0))
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        try:
            shown = redact(url)
        except ValueError as error:  # e.g. "http://[broken": no request could be made of it
            raise SourceError(f"not a valid URL ({error})", retryable=False) from None
        attempt = 0
        while True:
            try:
                response = self._attempt(url, request_headers)
            except _Retryable as failure:
                if attempt >= self.retries:
                    raise SourceError(f"{failure.reason} from {shown} (gave up after "
                                      f"{attempt + 1} tries)") from None
                # Our own backoff is capped; only a wait the *server* asks for can be too long.
                wait = (failure.wait if failure.wait is not None
                        else min(self.backoff * 2**attempt, self.max_retry_after))
                if wait > self.max_retry_after:
                    raise SourceError(f"{failure.reason} from {shown}; server asks to wait "
                                      f"{wait:.0f}s, more than the {self.max_retry_after:.0f}s "
                                      "we wait within a pass") from None
                log.info("%s from %s; retrying in %.1fs", failure.reason, shown, wait)
                self._sleep(wait)
                attempt += 1
                continue
            except SourceError as error:
                raise SourceError(f"{error} ({shown})", error.retryable) from None
            return response

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets us fetch ``url`` (read once per site per client).

        As the big crawlers do: no robots.txt (4xx) allows everything; one that cannot be
        read (5xx, network) disallows everything until a later pass.
        """
        return self._robots_for(url).can_fetch(self.user_agent, url)

    def _crawl_delay(self, url: str) -> float:
        return float(self._robots_for(url).crawl_delay(self.user_agent) or 0.0)

    def _robots_for(self, url: str) -> RobotFileParser:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            parser = self._robots.get(origin)
        if parser is not None:
            return parser
        parser = RobotFileParser(origin + "/robots.txt")
        try:
            response = self.get(origin + "/robots.txt")
            parser.parse(response.content.decode("utf-8", "replace").splitlines())
        except SourceError as error:
            status = re.match(r"HTTP (\d+)", str(error))
            if status and 400 <= int(status.group(1)) < 500:
                parser.allow_all = True
            else:
                parser.disallow_all = True
        with self._lock:
            return self._robots.setdefault(origin, parser)

    def _pace(self, url: str, delay: float) -> None:
        """Wait until this host's next slot: requests to one host are ``delay`` s apart."""
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + delay
        if slot > now:
            self._sleep(slot - now)

    def _attempt(self, url: str, headers: dict[str, str]) -> Response:
        started = time.monotonic()
        try:
            home = {"monitor_home": (httpx.URL(url).host, tuple(headers))} if headers else {}
            with self._client.stream("GET", url, headers=headers, extensions=home) as r:
                status = r.status_code
                if status == 304:
                    return Response(304, str(r.url), dict(r.headers))
                if status == 429 or status >= 500:
                    wait = retry_after_seconds(r.headers.get("Retry-After"))
                    raise _Retryable(f"HTTP {status}", wait)
                if status >= 400:
                    raise SourceError(f"HTTP {status} {r.reason_phrase}".rstrip(),
                                      retryable=status not in (400, 401, 403, 404, 410))
                declared = r.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise SourceError(f"response of {int(declared)} bytes is over the "
                                      f"{self.max_bytes}-byte cap", retryable=False)
                chunks, size = [], 0
                for chunk in r.iter_bytes():  # decoded: the cap bounds memory, gzip bombs included
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError(f"response is over the {self.max_bytes}-byte cap",
                                          retryable=False)
                    if time.monotonic() - started > self.total_timeout:
                        raise _Retryable(f"download took over {self.total_timeout:.0f}s", None)
                    chunks.append(chunk)
                return Response(status, str(r.url), dict(r.headers), b"".join(chunks))
        except httpx.TimeoutException:
            raise _Retryable("timed out", None) from None
        except httpx.ConnectError as error:
            raise _Retryable(f"cannot connect ({_short(error)})", None) from None
        except httpx.TooManyRedirects:
            raise SourceError("too many redirects", retryable=False) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:  # retrying cannot help
            raise SourceError(f"not a usable URL ({_short(error)})", retryable=False) from None
        except httpx.HTTPError as error:
            raise _Retryable(f"HTTP failure ({_short(error)})", None) from None


def _keep_headers_home(request: httpx.Request) -> None:
    """A caller's own headers (API keys among them) never follow a redirect to another host.

    httpx drops only ``Authorization`` when a redirect leaves the site; ``Api-Key`` and the
    like would be sent on. Each request carries its home host, redirects included.
    """
    host, names = request.extensions.get("monitor_home", (None, ()))
    if host is not None and request.url.host != host:
        for name in names:
            request.headers.pop(name, None)


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        self.reason, self.wait = reason, wait


def _short(error: Exception) -> str:
    return str(error).split("\n")[0][:200] or type(error).__name__


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle takes ~50 ms, which a daemon
    polling a source a second would otherwise pay on every poll (measured, bench/daemon.py)."""
    return ssl.create_default_context(cafile=certifi.where())
