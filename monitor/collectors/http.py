"""The one HTTP client every collector shares: polite, bounded, and honest about failure.

Why one client: timeouts, the size cap, the User-Agent, retries and conditional GET are the
same for every source, and a collector that forgets one of them can hang a whole pass.

Sources are strangers' servers, so the client also enforces wall-clock deadlines (per request,
and per source through ``deadline()``: httpx's own timeouts are per socket operation) and an
egress policy: redirects stay on the source's sites, never https -> http, secrets never reach
another origin, and optionally no private addresses (``block_private``).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import certifi
import httpcore
import httpx

from monitor.errors import SourceError

log = logging.getLogger(__name__)

_SECRET_PARAM = re.compile(r"key|token|secret|pass|auth|sig", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_local = threading.local()
"""Per thread: ``source_end`` (the collecting source's deadline) and ``request_end`` (the
request in flight's), both ``time.monotonic()`` values, and ``holds_large`` (this source holds
the large-response slot). Thread-local because sync httpx does all of a request's socket work
on the calling thread, and each source runs on its own."""

LARGE_RESPONSE = 256 * 1024
"""Bytes a source's response may reach while other sources are collected at the same time.
Past it the source waits for the process's one large-response slot and keeps it until its
collection (fetching and parsing) ends, so memory is bounded by ``concurrency`` x 256 KiB plus
one ``max_bytes`` response, whatever the config says (bench/memory.py)."""
_large_slot = threading.Lock()


class DeadlineExceeded(SourceError):
    """A request, or a whole source, ran out of wall-clock time; a later pass may do better."""


class Refused(SourceError):
    """The egress policy refused a request (another host, https -> http, a private address)."""


class _Refusal(Exception):
    """Raised inside httpx (event hook, network backend); httpx passes it through untouched,
    so ``_attempt`` can tell a refusal from a network failure and never retry it."""


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Everything this thread fetches inside ends by ``at`` (``time.monotonic()``): requests,
    retry waits and pacing. Nested deadlines keep the earlier one."""
    previous = getattr(_local, "source_end", None)
    _local.source_end = at if previous is None else min(at, previous)
    try:
        yield
    finally:
        _local.source_end = previous
        if previous is None and getattr(_local, "holds_large", False):
            _local.holds_large = False
            _large_slot.release()


def _take_large_slot(size: int) -> None:
    """Within a source's ``deadline()``, a response past ``LARGE_RESPONSE`` waits for the one
    large-response slot (until the request's deadline); outside one, nothing is shared."""
    if getattr(_local, "source_end", None) is None or getattr(_local, "holds_large", False):
        return
    if not _large_slot.acquire(timeout=max(0.0, _local.request_end - time.monotonic())):
        raise DeadlineExceeded(f"deadline exceeded: a response of over {size} bytes waited for "
                               "another source's large response to be read and parsed")
    _local.holds_large = True


def time_left() -> float | None:
    """Seconds left before this thread's source deadline; None when it has none."""
    end = getattr(_local, "source_end", None)
    return None if end is None else end - time.monotonic()


def site(url: str | httpx.URL) -> str:
    """What "the same host" means for redirects and discovered links: the host name without
    ``www.``, lowercased, plus the port unless it is the scheme's default (so an http -> https
    upgrade stays on the site, another port of the same machine does not)."""
    parts = urlsplit(str(url))
    name = (parts.hostname or "").lower()
    name = name[4:] if name.startswith("www.") else name
    if ":" in name:
        name = f"[{name}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return name if port in (None, _DEFAULT_PORTS.get(parts.scheme)) else f"{name}:{port}"


def allowed_sites(home: str, allow_hosts: Iterable[str] = ()) -> frozenset[str]:
    """The sites of ``home`` (a URL) and of ``allow_hosts`` (``host`` or ``host:port``)."""
    extra = {site(entry if "//" in entry else f"//{entry}") for entry in allow_hosts}
    return frozenset({site(home), *extra})


def on_allowed_host(url: str, home: str, allow_hosts: Iterable[str] = ()) -> bool:
    """Whether a URL found inside content (a comment feed, a next page) may be fetched."""
    return site(url) in allowed_sites(home, allow_hosts)


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
        block_private: bool = False,
        source_deadline: float = 300.0,
        pass_deadline: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``block_private``: refuse private, loopback and link-local addresses (after DNS).
        ``source_deadline`` / ``pass_deadline`` are kept for the pipeline (``deadline()``)."""
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.total_timeout = total_timeout
        self.source_deadline = source_deadline
        self.pass_deadline = pass_deadline
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
            event_hooks={"request": [_egress_policy]},
            verify=_tls_context(),
        )
        # httpx's timeouts are per socket operation: a server sending a byte a second is never
        # "timed out". Our backend bounds each operation by the request's wall-clock deadline.
        for transport in [self._client._transport, *self._client._mounts.values()]:
            pool = getattr(transport, "_pool", None)
            if pool is not None:  # through a proxy (env), the proxy resolves: no address check
                direct = transport is self._client._transport
                pool._network_backend = _GuardedBackend(block_private and direct)

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
        allow_hosts: Collection[str] = (),
    ) -> Response:
        """Fetch ``url``; a 304 comes back as a Response, every failure as SourceError.

        ``robots``: refuse a URL the site's robots.txt disallows for our User-Agent (pages
        scraped as a crawler would; APIs and feeds are meant for programs). ``delay``: at
        least this many seconds between requests to one host (a robots.txt Crawl-delay that
        asks for more wins). Redirects stay on ``url``'s host or ``allow_hosts`` and never go
        from https to http; ``headers`` and Authorization never reach another origin.
        """
        _check_time(url)
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
        policy = _Policy(url, allowed_sites(url, allow_hosts), tuple(request_headers))
        attempt = 0
        while True:
            try:
                response = self._attempt(url, request_headers, policy)
            except _Retryable as failure:
                if attempt >= self.retries:
                    tries = "1 try" if attempt == 0 else f"{attempt + 1} tries"
                    raise SourceError(f"{failure.reason} from {shown} (gave up after "
                                      f"{tries})") from None
                # Our own backoff is capped; only a wait the *server* asks for can be too long.
                wait = (failure.wait if failure.wait is not None
                        else min(self.backoff * 2**attempt, self.max_retry_after))
                if wait > self.max_retry_after:
                    raise SourceError(f"{failure.reason} from {shown}; server asks to wait "
                                      f"{wait:.0f}s, more than the {self.max_retry_after:.0f}s "
                                      "we wait within a pass") from None
                left = time_left()
                if left is not None and wait >= left:
                    raise DeadlineExceeded(f"deadline exceeded: {failure.reason} from {shown}, "
                                           "and no time left to retry") from None
                log.info("%s from %s; retrying in %.1fs", failure.reason, shown, wait)
                self._sleep(wait)
                attempt += 1
                continue
            except SourceError as error:
                raise type(error)(f"{error} ({shown})", error.retryable) from None
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
        except DeadlineExceeded:
            raise  # not the site's fault: decide next pass
        except SourceError as error:
            status = re.match(r"HTTP (\d+)", str(error))
            # A robots.txt redirected off the site counts as none (RFC 9309: unavailable).
            if status and 400 <= int(status.group(1)) < 500 or isinstance(error, Refused):
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
            left = time_left()
            if left is not None and slot - now >= left:
                raise DeadlineExceeded(f"deadline exceeded: the next request to {host} may "
                                       f"only go in {slot - now:.0f}s (delay, Crawl-delay)")
            self._sleep(slot - now)

    def _attempt(self, url: str, headers: dict[str, str], policy: _Policy) -> Response:
        started = time.monotonic()
        left = time_left()
        end = started + self.total_timeout
        _local.request_end = end if left is None else min(end, started + left)
        try:
            home = {"monitor_egress": policy}
            with self._client.stream("GET", url, headers=headers, extensions=home) as r:
                status = r.status_code
                if status == 304:  # no body; read to its end, so the connection is kept
                    r.read()           # (closed unread, it was dropped: a new one each poll)
                    return Response(304, str(r.url), dict(r.headers))
                if status == 429 or status >= 500:
                    wait = retry_after_seconds(r.headers.get("Retry-After"))
                    raise _Retryable(f"HTTP {status}", wait)
                if status >= 400:
                    raise SourceError(f"HTTP {status} {r.reason_phrase}".rstrip(),
                                      retryable=status not in (400, 401, 403, 404, 410))
                if 300 <= status < 400:  # a redirect httpx could not follow: no Location
                    raise SourceError(f"HTTP {status} {r.reason_phrase}".rstrip() +
                                      " without a Location to follow", retryable=False)
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
                    if time.monotonic() >= _local.request_end:
                        raise self._late(started)
                    if size > LARGE_RESPONSE:
                        _take_large_slot(size)
                    chunks.append(chunk)
                return Response(status, str(r.url), dict(r.headers), b"".join(chunks))
        except _Refusal as refusal:
            raise Refused(str(refusal), retryable=False) from None
        except httpx.TimeoutException:
            if time.monotonic() >= _local.request_end - 0.05:
                raise self._late(started) from None
            raise _Retryable("timed out", None) from None
        except httpx.ConnectError as error:
            raise _Retryable(f"cannot connect ({_short(error)})", None) from None
        except httpx.TooManyRedirects:
            raise SourceError("too many redirects", retryable=False) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:  # retrying cannot help
            raise SourceError(f"not a usable URL ({_short(error)})", retryable=False) from None
        except httpx.HTTPError as error:
            raise _Retryable(f"HTTP failure ({_short(error)})", None) from None
        finally:
            _local.request_end = None

    def _late(self, started: float) -> DeadlineExceeded:
        """The wall clock ran out: the request's own ``total_timeout``, or the source's
        deadline. Not retried within the pass: a server this slow is as slow a second later."""
        if time.monotonic() - started >= self.total_timeout - 0.05:
            return DeadlineExceeded(f"deadline exceeded: no complete answer within "
                                    f"{self.total_timeout:.0f}s (http.total_timeout)")
        return DeadlineExceeded("deadline exceeded: the source ran out of time "
                                "(http.source_deadline / pass_deadline)")


@dataclass(frozen=True, slots=True)
class _Policy:
    """Where one request and its redirects may go, and which headers are its secrets."""

    home: str             # the URL asked for: its origin is the only one that gets secrets
    sites: frozenset[str]  # see site()
    secrets: tuple[str, ...]  # the caller's own headers (API keys among them)


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    parts = urlsplit(str(url))
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(
        parts.scheme)


def _egress_policy(request: httpx.Request) -> None:
    """Every request, redirects included: stay on the allowed sites, never https -> http,
    and secrets only to the origin (scheme, host and port) they were meant for.

    httpx drops only ``Authorization``, and keeps it on an http -> https upgrade and would
    send ``Api-Key`` and the like anywhere; a redirect could also lead to an internal address.
    """
    policy: _Policy | None = request.extensions.get("monitor_egress")
    if policy is None or request.url.scheme not in _DEFAULT_PORTS:
        return  # httpx refuses other schemes itself
    url = str(request.url)
    if urlsplit(policy.home).scheme == "https" and request.url.scheme != "https":
        raise _Refusal(f"redirect from https to {redact(url)} refused (never to plain http)")
    if site(url) not in policy.sites:
        raise _Refusal(f"redirect to {redact(url)} refused: another host than the source's "
                       "(list it in the source's allow_hosts to allow it)")
    if _origin(url) != _origin(policy.home):
        for name in (*policy.secrets, "Authorization", "Proxy-Authorization"):
            request.headers.pop(name, None)


def _check_time(url: str) -> None:
    left = time_left()
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"deadline exceeded: the source ran out of time before "
                               f"{redact(url)} (http.source_deadline / pass_deadline)")


def _bounded(timeout: float | None, late: type[Exception]) -> float | None:
    """A socket operation's timeout cut to what is left of the request's deadline."""
    end = getattr(_local, "request_end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise late("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses of ``host``, within ``timeout``: getaddrinfo has no timeout of its own,
    so it runs on a helper thread that is left behind if the resolver hangs."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    found: list[list[str]] = []
    failed: list[OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except OSError as error:
            failed.append(error)

    helper = threading.Thread(target=lookup, daemon=True, name=f"resolve {host}")
    helper.start()
    helper.join(timeout)
    if failed:
        raise httpcore.ConnectError(f"cannot resolve {host}: {failed[0]}")
    if not found:
        raise httpcore.ConnectTimeout(f"resolving {host} took too long")
    return found[0]


def _private(address: str) -> bool:
    """Private, loopback, link-local, multicast or otherwise not on the public internet."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with every socket operation bounded by the request's
    wall-clock deadline, names resolved within it, and (``block_private``) connections to
    non-public addresses refused after resolution, on the address actually connected to."""

    def __init__(self, block_private: bool) -> None:
        self._plain = httpcore.SyncBackend()
        self.block_private = block_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = _resolve(host, port, _bounded(timeout, httpcore.ConnectTimeout))
        if self.block_private:
            for address in addresses:
                if _private(address):
                    raise _Refusal(f"{host} is {address}, a private, loopback or link-local "
                                   "address (http.block_private)")
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            try:
                stream = self._plain.connect_tcp(
                    address, port, _bounded(timeout, httpcore.ConnectTimeout), local_address,
                    socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return _GuardedStream(stream)
        raise failure

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _GuardedStream(httpcore.NetworkStream):
    """A socket stream whose reads and writes end by the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _GuardedStream(self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


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
