"""Who is asking: sessions, the login page, the reverse proxy's ``Remote-User``, CSRF, roles.

A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure over https); the store
keeps only its SHA-256, so a copy of the database logs nobody in. It ends at logout, after
``web.session_idle`` unused or ``web.session_max`` after its login, and when its account is
disabled. Every request that changes something carries the session's CSRF token (a form field
or the ``X-CSRF-Token`` header), checked before anything is read from the form; the login form
carries its own (double-submit cookie), so nobody can log a victim into their account.

``Remote-User`` (oauth2-proxy and the like) is believed only from a ``web.trusted_proxies``
address, and only for an account that exists and is not disabled: the role is ours to give.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor import accounts
from monitor.accounts import User
from monitor.web.pages import our_path, render

log = logging.getLogger(__name__)

COOKIE = "fm_session"
LOGIN_COOKIE = "fm_login"
TOUCH_EVERY = timedelta(minutes=1)  # seen_at is written at most this often


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_https(request: Request) -> bool:
    """Served over https: directly, or as a trusted proxy says (X-Forwarded-Proto)."""
    if request.url.scheme == "https":
        return True
    return (from_trusted_proxy(request)
            and request.headers.get("x-forwarded-proto", "").lower() == "https")


def from_trusted_proxy(request: Request) -> bool:
    proxies = request.app.state.web.trusted_proxies
    if not proxies or request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(peer in network for network in proxies)


def identify(request: Request) -> tuple[User | None, dict[str, Any] | None]:
    """The request's user and session, from the proxy's header or the session cookie."""
    state = request.app.state
    store, now = state.store, state.clock()
    session = _live_session(request, now)
    if from_trusted_proxy(request) and (name := request.headers.get(state.web.remote_user_header)):
        user = accounts.get_user(store, name)
        if user is None or user.disabled:
            log.warning("web: %s from the proxy has no account that may log in",
                        accounts.shown_name(name))
            return None, None
        if session is None or session["user_name"] != user.name:
            session = start_session(request, user.name)
        return user, session
    if session is None:
        return None, None
    user = accounts.get_user(store, session["user_name"])
    if user is None or user.disabled:
        store.end_sessions(now, session_id=session["id"])
        return None, None
    return user, session


def _live_session(request: Request, now: datetime) -> dict[str, Any] | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 200:
        return None
    state = request.app.state
    session = state.store.get_session(token_id(token))
    web = state.web
    if (session is None or session["ended_at"] is not None
            or now - session["seen_at"] > timedelta(seconds=web.session_idle)
            or now - session["created_at"] > timedelta(seconds=web.session_max)):
        return None
    if now - session["seen_at"] > TOUCH_EVERY:
        state.store.touch_session(session["id"], now)
    return session


def start_session(request: Request, name: str) -> dict[str, Any]:
    """A new session for ``name``; its cookie is set on the response by ``guard``/login."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    store, now = request.app.state.store, request.app.state.clock()
    store.add_session(token_id(token), name, csrf, now)
    request.state.new_token = token
    return {"id": token_id(token), "user_name": name, "csrf": csrf}


def set_cookie(request: Request, response: Response) -> Response:
    token = getattr(request.state, "new_token", None)
    if token:
        response.set_cookie(COOKIE, token, httponly=True, samesite="lax",
                            secure=is_https(request), path="/")
    return response


async def csrf_ok(request: Request, expected: str) -> bool:
    """The token from the header or the form; the form is kept in ``request.state.form`` for
    the (sync) endpoint."""
    request.state.form = form = await request.form(max_files=0, max_fields=2000)
    given = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
    return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())


def guard(action: str | None = "work_case") -> Callable[..., Any]:
    """Wrap an endpoint: a known user who may do ``action`` (None: any user), and on a
    state-changing method a valid CSRF token. The endpoint is called with the request (the
    user in ``request.state.user``); a sync one runs in a worker thread."""
    def wrap(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(endpoint)
        async def guarded(request: Request) -> Response:
            user, session = await run_in_threadpool(identify, request)
            if user is None:
                if request.method != "GET":
                    return render(request, "error.html", 401, title="Logged out",
                                  message="Your session has ended: log in again. Nothing was "
                                          "changed; a reply or note you were writing is kept "
                                          "in this browser and comes back on its case page.",
                                  login=f"/login?next={quote(sent_from(request.url.path))}")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            request.state.user, request.state.csrf = user, session["csrf"]
            if action and not user.may(action):
                return set_cookie(request, render(
                    request, "error.html", 403, title="Not for your role",
                    message=f"This page is for {accounts.ACTIONS[action]}s and up; "
                            f"you are {user.role}."))
            if request.method not in ("GET", "HEAD") and not await csrf_ok(request,
                                                                           session["csrf"]):
                log.warning("web: %s sent %s %s without a valid CSRF token",
                            accounts.shown_name(user.name), request.method, request.url.path)
                return render(request, "error.html", 403, title="Refused",
                              message="This request did not come from a page of the inbox "
                                      "(no valid CSRF token). Reload the page and try again.")
            response = await run_in_threadpool(endpoint, request)
            return set_cookie(request, response)
        return guarded
    return wrap


def sent_from(path: str) -> str:
    """The page whose form sent a POST to ``path``: where to go back to after logging in
    again (``/cases/12/respond`` was sent from ``/cases/12``)."""
    parts = path.strip("/").split("/")
    if parts[0] == "cases" and len(parts) > 1:
        return f"/cases/{quote(parts[1])}"
    return "/" + parts[0] if parts[0] in ("admin", "themes") else "/"


# --- the login page ---------------------------------------------------------------------------

async def login_page(request: Request) -> Response:
    if request.method == "GET":
        if (await run_in_threadpool(identify, request))[0] is not None:  # logged in already
            target = our_path(request.query_params.get("next"))
            return set_cookie(request, RedirectResponse(target, status_code=303))
        return _login_form(request)
    form = await request.form()
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not secrets.compare_digest(str(form.get("csrf", "")).encode(),
                                                cookie.encode()):
        return _login_form(request, 403, "The login form had expired: try again.")
    name, password = str(form.get("name", ""))[:200], str(form.get("password", ""))[:1000]
    state = request.app.state
    user = await run_in_threadpool(accounts.check_login, state.store, name, password,
                                   state.clock())
    if user is None:
        return _login_form(request, 401, "That name and password do not let you in (or the "
                                         "account must wait a little after failed tries).",
                           name=name)
    await run_in_threadpool(start_session, request, user.name)
    response = RedirectResponse(our_path(str(form.get("next", ""))), status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return set_cookie(request, response)


def _login_form(request: Request, status: int = 200, error: str | None = None,
                name: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status, login_csrf=token, error=error, name=name,
                      next=our_path(request.query_params.get("next")), title="Log in")
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=is_https(request), path="/login", max_age=3600)
    return response


@guard(action=None)
def logout(request: Request) -> Response:
    state = request.app.state
    token = request.cookies.get(COOKIE)
    if token:
        state.store.end_sessions(state.clock(), session_id=token_id(token))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


routes = [Route("/login", login_page, methods=["GET", "POST"]),
          Route("/logout", logout, methods=["POST"])]
