"""The web inbox's application: its routes, static files and the headers on every answer.

Made from a loaded config and an open store, so ``monitor web`` and the daemon serve the same
app, and tests drive it with their own clock. Errors never show a traceback: a 404 and a 500
are pages that say what to do, and the 500's cause is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.config import Config, WebSettings
from monitor.web import admin, auth, casepage, inbox, leads, themes_page
from monitor.web.pages import CSP, HEADERS, render
from monitor.web.shared import SharedAnswers

log = logging.getLogger(__name__)


def create_app(config: Config, store: Any,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Starlette:
    from importlib.resources import files

    static = StaticFiles(directory=str(files("monitor.web") / "static"))
    app = Starlette(routes=[*auth.routes, *inbox.routes, *casepage.routes, *leads.routes,
                            *themes_page.routes, *admin.routes,
                            Mount("/static", static, name="static")],
                    exception_handlers={HTTPException: _http_error})
    app.state.config, app.state.store, app.state.clock = config, store, clock
    app.state.web = config.main.web or WebSettings()
    app.state.counts = SharedAnswers(inbox.COUNTS_FOR, longest=12 * inbox.COUNTS_FOR)
    app.state.reports = SharedAnswers(leads.CACHE_FOR, longest=leads.CACHE_FOR)
    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """The CSP and its companions on every answer (a report page sets its own, stricter); and
    the last catch: an error no page handled is logged in one line and answered with a page,
    never a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers.extend((k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                               if k.lower().encode() not in present)
            await send(message)

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await with_headers(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:  # the browser went away (a page closed mid-request)
            return None
        except Exception as error:
            request = Request(scope)
            log.error("web: %s %s failed: %s: %s", request.method, request.url.path,
                      type(error).__name__, (str(error).splitlines() or [""])[0])
            if not started:
                await _crash(request)(scope, receive, tracked)


async def _http_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "status_code", 500)
    titles = {404: "Not found", 405: "Not allowed here"}
    return render(request, "error.html", status, title=titles.get(status, "Refused"),
                  message=str(getattr(error, "detail", "")) or "This address has no page.")


def _crash(request: Request) -> Response:
    return render(request, "error.html", 500, title="Something went wrong",
                  message="The inbox could not answer (the log says why). Try again; if the "
                          "store is down, `monitor status` says so.")
