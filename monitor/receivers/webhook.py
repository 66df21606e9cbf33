"""``type: webhook``: a notice POSTed as JSON to any URL, signed when a secret is set.

The body is a stable contract (bump ``version`` on any incompatible change)::

    {"version": 1, "key": "flag:12:ops@<store id>", "receiver": "ops",
     "group": "thread:forum:7", "severity": "critical", "case_id": 12, "reminder": false,
     "sent_at": 1714557600,
     "posts": [{"source", "external_id", "url", "author", "title", "text",
                "published_at": "2024-05-01T10:00:00Z", "severity", "category", "tags",
                "rules", "reasons",
                "scores": {"compound", "anger", "change", "churn", "complaint", "angry",
                           "language"}}]}       (the fields ``Score.shown()`` gives)

``key`` is the outbox row's key and the store's random id: the same on every retry of a
notice, and never repeated by another installation or by the database made anew.

Headers: ``Idempotency-Key`` (= ``key``), ``X-Monitor-Timestamp`` (= ``sent_at``, unsigned:
kept for receivers that read it) and, with a secret,
``X-Monitor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<exact body bytes>">`` as
Stripe signs: the time is signed with the body, so a receiver that checks both (``verify``)
refuses a tampered body, a changed time and a replay of an old request. Any 2xx is
delivered; 408, 429 and 5xx are retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from monitor import __version__
from monitor.errors import DeliveryError
from monitor.model import FlaggedPost, Notice
from monitor.receivers import BaseReceiver, ReceiverOptions, http_url_error, secret

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)
_OURS = ("content-type", "idempotency-key", "user-agent", "x-monitor-")
_STAMP = re.compile(r"[0-9]{1,12}")  # unix seconds; bounded, so int() is cheap and safe


class WebhookOptions(ReceiverOptions):
    """Keys of a ``type: webhook`` receiver."""

    required_secrets = frozenset({"url"})
    url: SecretStr | None = Field(None, description=(
        "where to POST, normally `${ENV_VAR}` (it may hold a token); required unless `url_file` "
        "is set"))
    url_file: Path | None = Field(None, description=(
        "a file holding the URL instead, read at each send"))
    headers: dict[str, SecretStr] = Field({}, description=(
        "extra headers, e.g. `Authorization` (values may be `${ENV_VAR}`)"))
    secret: SecretStr | None = Field(None, description=(
        "HMAC key: each body and its time are signed in `X-Monitor-Signature`"))
    secret_file: Path | None = Field(None, description=(
        "a file holding the HMAC key instead, read at each send"))
    timeout: float = Field(10.0, gt=0, le=120, description="seconds per connect, read and write")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, header in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower().startswith(_OURS):
                raise ValueError(f"{name!r} is set by the receiver itself")
            if any(c in header.get_secret_value() for c in "\r\n"):
                raise ValueError(f"the value of {name!r} holds a line break")
        return value

    @model_validator(mode="after")
    def _url(self) -> Self:
        http_url_error(self.url, "url")
        return self


class WebhookReceiver(BaseReceiver):
    """POSTs the JSON above; see the module docstring for the contract."""

    Options = WebhookOptions
    options: WebhookOptions

    def send(self, notice: Notice) -> None:
        o = self.options
        url = secret(o.url, o.url_file, "webhook URL")
        sent_at = int(time.time())
        body = json.dumps(payload(notice, sent_at), ensure_ascii=False,
                          separators=(",", ":")).encode()
        headers = {name: value.get_secret_value() for name, value in o.headers.items()}
        headers |= {"Idempotency-Key": notice.key, "X-Monitor-Timestamp": str(sent_at)}
        if o.secret is not None or o.secret_file is not None:
            key = secret(o.secret, o.secret_file, "webhook secret")
            headers["X-Monitor-Signature"] = sign(key, body, sent_at)
        post_json(url, body, headers, o.timeout)


def sign(key: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Monitor-Signature`` of ``body`` sent at ``timestamp``: signing the time with
    the body lets a receiver refuse replays, which a signature of the body alone cannot."""
    return f"t={timestamp},v1={_digest(key, str(timestamp), body)}"


def verify(key: str | bytes, header: str, body: bytes, now: float | None = None,
           tolerance: float = 300) -> bool:
    """Whether ``header`` (an ``X-Monitor-Signature``) signs the raw ``body`` with ``key`` at
    a time at most ``tolerance`` seconds from ``now`` (either way, for clock skew): what a
    receiver checks before trusting a request. Any malformed header is simply False."""
    stamp, signatures = "", []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamp = value
        elif name == "v1":
            signatures.append(value)
    if not _STAMP.fullmatch(stamp):
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    expected = _digest(key, stamp, body)
    return any(s.isascii() and hmac.compare_digest(expected, s) for s in signatures)


def _digest(key: str | bytes, stamp: str, body: bytes) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def payload(notice: Notice, sent_at: int) -> dict[str, Any]:
    """The version-1 body of ``notice``."""
    return {"version": 1, "key": notice.key, "receiver": notice.receiver,
            "group": notice.group, "severity": notice.severity, "case_id": notice.case_id,
            "reminder": notice.reminder, "sent_at": sent_at,
            "posts": [_post(item) for item in notice.items]}


def _post(item: FlaggedPost) -> dict[str, Any]:
    post, score, flag = item.post, item.score, item.flag
    when = post.published_at
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return {"source": post.source, "external_id": post.external_id, "url": post.url,
            "author": post.author, "title": post.title, "text": post.text,
            "published_at": when.isoformat().replace("+00:00", "Z"),
            "severity": flag.severity, "category": flag.category, "tags": list(flag.tags),
            "rules": list(flag.rules), "reasons": list(flag.reasons),
            "scores": {name: round(value, 4) if isinstance(value, float) else value
                       for name, value in score.shown().items()}}


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``body``; any failure is a DeliveryError that shows the URL's origin only (its
    path or query may be the credential) and says whether a retry can help."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("the URL is not an http(s) URL", retryable=False)
    where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    sent = {"Content-Type": "application/json", "User-Agent": f"feedback-monitor/{__version__}"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client, \
                client.stream("POST", url, content=body, headers=sent | dict(headers)) as r:
            status, said = r.status_code, _head(r)
            wait = r.headers.get("Retry-After")
    except httpx.TimeoutException:
        raise DeliveryError(f"{where} did not answer within {timeout:g}s") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise DeliveryError("the URL is not usable", retryable=False) from None
    except httpx.HTTPError as error:
        reason = str(error).replace(url, where).split("\n")[0][:200] or type(error).__name__
        raise DeliveryError(f"cannot reach {where} ({reason})") from None
    if 200 <= status < 300:
        return
    for hidden in re.split(r"[/?&=;]", f"{parts.path}?{parts.query}"):  # echoed credentials
        said = said.replace(hidden, "…") if len(hidden) >= 8 else said
    answer = f"{where} answered HTTP {status}" + (f": {said}" if said else "")
    if 300 <= status < 400:
        raise DeliveryError(f"{answer}; redirects are not followed: set the URL it "
                            "redirects to", retryable=False)
    if status in (408, 429) or status >= 500:
        raise DeliveryError(answer + (f" (Retry-After: {wait})" if wait else ""))
    raise DeliveryError(answer, retryable=False)


def _head(response: httpx.Response, limit: int = 1000) -> str:
    """The start of an answer, on one line: enough to say why, bounded whatever is sent."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return " ".join(data[:limit].decode("utf-8", "replace").split())[:200]
