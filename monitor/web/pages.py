"""What every page of the web inbox shares: the templates, how times and links are shown,
the response headers that keep hostile post content inert, and the notice a change leaves
on the page it redirects to.

Post text is never markup here: Jinja2 escapes it, the CSS keeps its line breaks, and a link
is only made of an http(s) URL. The Content-Security-Policy forbids any script but our own
files, inline styles, plugins, frames of us, and forms sent elsewhere, so even a template
mistake cannot run a post's script.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
"""Our pages: our own script and style files only, never inline ones."""

REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
"""A report (digest, backlash) as the CLI writes it: its own inline styles and charts, and
no script at all."""

HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cross-Origin-Opener-Policy": "same-origin", "Cache-Control": "no-store"}


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page of ``templates/<template>`` with the request's user, CSRF token and time zone."""
    state = request.app.state
    context = {"request": request, "user": getattr(request.state, "user", None),
               "csrf": getattr(request.state, "csrf", ""), "zone": state.config.timezone,
               "now": state.clock(), **values}
    html = templates().get_template(template).render(context)
    return HTMLResponse(html, status_code=status)


@cache
def templates() -> Environment:
    env = Environment(loader=PackageLoader("monitor.web", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True, auto_reload=False)  # they ship with the package
    env.filters.update(local=local_time, ago=ago, span=span, link=safe_link, query=query)
    return env


def local_time(value: datetime | None, zone: tzinfo = UTC, year: bool = False) -> str:
    """``Thu 3 Dec 14:05 CET``: in the configured zone, named, so a DST hour is told apart."""
    if value is None:
        return "-"
    moment = value.astimezone(zone)
    shown = f"{moment:%a} {moment.day} {moment:%b}"
    if year or moment.year != datetime.now(zone).year:
        shown += f" {moment.year}"
    return f"{shown} {moment:%H:%M %Z}"


def span(seconds: float | None) -> str:
    """90061 -> "1d 1h". A negative span keeps its sign (-118 -> "-1m"): a time that went
    backwards (an answer recorded before its case opened) shows, rather than passing for one
    that went forwards."""
    if seconds is None:
        return "-"
    sign, seconds = "-" if seconds < 0 else "", int(abs(seconds))
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m")]
    return sign + (" ".join([f"{n}{unit}" for n, unit in parts if n][:2]) or f"{seconds}s")


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    return f"{span(seconds)} ago" if seconds >= 0 else f"in {span(-seconds)}"


def safe_link(url: str | None) -> str | None:
    """The URL if a browser may follow it: http(s) only (no javascript:, data:, file:)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def query(values: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` of ``values`` with ``changes`` applied (None drops a key)."""
    merged = {k: v for k, v in {**values, **changes}.items() if v not in (None, "", ())}
    return "?" + urlencode(merged, doseq=True) if merged else "?"


MAX_ID = 2**63 - 1
"""The largest id the store's 64-bit integer columns hold."""


def row_id(value: object) -> int | None:
    """An id from a URL or a form: digits that fit the store's ids, else None (a larger
    number is no row of ours, and the database would refuse it with an error)."""
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or int(text) > MAX_ID:
        return None
    return int(text)


def our_path(target: str | None) -> str:
    """Back to a page of ours only: a path, never another site (``//evil``, ``/\\evil``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


# --- notices -----------------------------------------------------------------------------------
# What a change did, told once on the page it redirects to (``?msg=...&kind=...&sig=...``).
# Signed, because the message travels in the URL: a page that showed any ``msg`` as the inbox's
# own notice would let a link from elsewhere put its words there ("your password expired: ...").
# The signature is an HMAC keyed with the session's CSRF token, a secret the server keeps per
# session, so only this session's own redirects make a notice that shows. With its kind, because
# a refusal ("a dismissal needs a reason") is an error and is shown as one, never as a success.

NOTICE_FIELDS = ("msg", "kind", "recorded", "sig")
"""The query fields of a notice: dropped from the path it redirects to, then set anew."""


@dataclass(frozen=True, slots=True)
class Notice:
    """``text`` to show once; ``error``: a refusal; ``recorded``: which draft of the case page
    the server has recorded ("reply", "note"), so the browser may forget its copy."""

    text: str
    error: bool = False
    recorded: str | None = None

    def signature(self, key: str) -> str:
        said = "\n".join(("error" if self.error else "ok", self.recorded or "", self.text))
        return hmac.new(key.encode(), said.encode(), hashlib.sha256).hexdigest()[:32]


def back_to(request: Request, path: str, message: str, *, error: bool = False,
            recorded: str | None = None) -> RedirectResponse:
    """To ``path`` (303: the browser GETs it, its own query kept) with ``message``, signed for
    the request's session."""
    parts = urlsplit(our_path(path))
    notice = Notice(message[:600], error, recorded)
    values = [(k, v) for k, v in parse_qsl(parts.query) if k not in NOTICE_FIELDS]
    values += [("msg", notice.text), ("kind", "error" if error else "ok")]
    values += [("recorded", recorded)] if recorded else []
    values.append(("sig", notice.signature(request.state.csrf)))
    return RedirectResponse(f"{parts.path}?{urlencode(values)}", status_code=303)


def notice_of(request: Request) -> Notice | None:
    """The URL's notice if this session's own redirect made it; else None (nothing shown)."""
    params, key = request.query_params, getattr(request.state, "csrf", "")
    if "msg" not in params or not key or params.get("kind") not in ("ok", "error"):
        return None
    notice = Notice(params["msg"], params["kind"] == "error", params.get("recorded") or None)
    if not hmac.compare_digest(params.get("sig", "").encode(), notice.signature(key).encode()):
        return None
    return notice
