"""What every page of the web inbox shares: the templates, how times and links are shown,
and the response headers that keep hostile post content inert.

Post text is never markup here: Jinja2 escapes it, the CSS keeps its line breaks, and a link
is only made of an http(s) URL. The Content-Security-Policy forbids any script but our own
files, inline styles, plugins, frames of us, and forms sent elsewhere, so even a template
mistake cannot run a post's script.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit

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
    """90061 -> "1d 1h"."""
    if seconds is None:
        return "-"
    seconds = int(abs(seconds))
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m")]
    return " ".join([f"{n}{unit}" for n, unit in parts if n][:2]) or f"{seconds}s"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    return f"{span(seconds)} ago" if seconds >= 0 else f"in {span(seconds)}"


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


def our_path(target: str | None) -> str:
    """Back to a page of ours only: a path, never another site (``//evil``, ``/\\evil``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def back_to(path: str, message: str, error: bool = False) -> RedirectResponse:
    """To ``path`` (303: the browser GETs it, its own query kept) with what happened, as
    ``msg`` or ``error``, which the page shows once."""
    from urllib.parse import parse_qsl

    parts = urlsplit(our_path(path))
    values = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("msg", "error")]
    values.append(("error" if error else "msg", message[:600]))
    return RedirectResponse(f"{parts.path}?{urlencode(values)}", status_code=303)
