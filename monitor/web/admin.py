"""The admin page: accounts, silences and dead deliveries, what ``monitor users``,
``monitor silence`` and ``monitor deliveries retry`` do, for an admin without a shell.

Nothing is deleted: an account that leaves is disabled (a case history names it), a silence
is expired (the list keeps why it was set). Disabling an account or changing its password
ends its sessions at once, so a lost laptop's cookie stops working. Every change is a POST
with the session's CSRF token, answered with a redirect back to the page and a message;
a refused change (a short password, a bad matcher) is that message, never a traceback.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor import accounts, logs
from monitor.accounts import AccountError, InvalidAccount
from monitor.matchers import LABELS
from monitor.route import parse_matchers, silence_notices, silence_seconds
from monitor.web.auth import guard
from monitor.web.pages import back_to, notice_of, render, row_id

EXPIRED_SHOWN = 20  # expired silences listed, latest first
DEAD_SHOWN = 50


def _back(request: Request, message: str, error: bool = False) -> Response:
    return back_to(request, "/admin", message, error=error)


def _field(request: Request, name: str, limit: int = 1000) -> str:
    return str(request.state.form.get(name, ""))[:limit]


@guard("manage_users")
def admin(request: Request) -> Response:
    state = request.app.state
    store, now = state.store, state.clock()
    silences = store.silences(now, include_expired=True)
    expired = sorted((s for s in silences if s["ends_at"] <= now),
                     key=lambda s: s["ends_at"], reverse=True)
    dead = store.dead_deliveries(limit=DEAD_SHOWN)
    return render(request, "admin.html", title="Admin", users=accounts.list_users(store),
                  roles=accounts.ROLES, min_password=accounts.MIN_PASSWORD,
                  active=[s for s in silences if s["ends_at"] > now],
                  expired=expired[:EXPIRED_SHOWN], labels=list(LABELS), dead=dead,
                  dead_total=store.delivery_counts().get("dead", 0),
                  receivers=sorted({d["receiver"] for d in dead}), mask=logs.mask,
                  notice=notice_of(request))


# --- accounts ----------------------------------------------------------------------------------

@guard("manage_users")
def add_user(request: Request) -> Response:
    state = request.app.state
    name = _field(request, "name", 200)
    try:
        user = accounts.add_user(state.store, name, _field(request, "role", 20),
                                 _field(request, "password"), state.clock())
    except (InvalidAccount, AccountError) as error:
        return _back(request, f"No user added: {error}", error=True)
    return _back(request, f"User {user.name} added ({user.role}).")


@guard("manage_users")
def disable_user(request: Request) -> Response:
    """Refuse the account's logins from now on, and end the sessions it has."""
    state = request.app.state
    name, now = request.path_params["name"], state.clock()
    if name == request.state.user.name:
        return _back(request, "You cannot disable your own account: another admin can.",
                     error=True)
    try:
        accounts.disable_user(state.store, name, now)
    except AccountError as error:
        return _back(request, str(error), error=True)
    return _back(request, f"User {name} disabled; its sessions ended.")


@guard("manage_users")
def set_password(request: Request) -> Response:
    """A new password (the admin tells it to its owner), and every session of the account
    ended: whoever had the old one is logged out."""
    state = request.app.state
    name, now = request.path_params["name"], state.clock()
    try:
        accounts.set_password(state.store, name, _field(request, "password"), now)
    except (InvalidAccount, AccountError) as error:
        return _back(request, f"Password of {name} not changed: {error}", error=True)
    return _back(request, f"Password of {name} changed; its sessions ended.")


# --- silences ----------------------------------------------------------------------------------

@guard("manage_silences")
def add_silence(request: Request) -> Response:
    """As ``monitor silence add``: matchers KEY=VALUE, one a line (a value may hold spaces:
    ``author=Jane Doe``), how long, and why."""
    state = request.app.state
    reason = _field(request, "reason").strip()
    try:
        matchers = parse_matchers(line for line in _field(request, "matchers", 4000)
                                  .splitlines() if line.strip())
        seconds = silence_seconds(_field(request, "lasting", 50).strip())
    except ValueError as error:
        return _back(request, f"No silence added: {error}", error=True)
    if not reason:
        return _back(request, "No silence added: say why (the reason), for whoever reads the "
                              "list later.", error=True)
    now = state.clock()
    sid = state.store.add_silence(matchers, reason, now + timedelta(seconds=seconds), now,
                                  request.state.user.name)
    notices = "".join(f" Note: {n}." for n in silence_notices(matchers))
    return _back(request, f"Silence {sid} added.{notices}")


@guard("manage_silences")
def expire_silence(request: Request) -> Response:
    state = request.app.state
    sid = row_id(request.path_params["sid"])
    if sid is None or not state.store.expire_silence(sid, state.clock()):
        return _back(request, f"There is no active silence {request.path_params['sid'][:30]}.",
                     error=True)
    return _back(request, f"Silence {sid} expired.")


# --- deliveries --------------------------------------------------------------------------------

@guard("manage_deliveries")
def retry_dead(request: Request) -> Response:
    """As ``monitor deliveries retry``: the next pass sends them again."""
    state = request.app.state
    receiver = _field(request, "receiver", 200).strip() or None
    count = state.store.retry_dead(state.clock(), receiver)
    return _back(request, f"{count} dead deliver{'ies' if count != 1 else 'y'} will be sent "
                          f"again{f' to {receiver}' if receiver else ''}.")


routes = [Route("/admin", admin),
          Route("/admin/users", add_user, methods=["POST"]),
          Route("/admin/users/{name:path}/disable", disable_user, methods=["POST"]),
          Route("/admin/users/{name:path}/password", set_password, methods=["POST"]),
          Route("/admin/silences", add_silence, methods=["POST"]),
          Route("/admin/silences/{sid}/expire", expire_silence, methods=["POST"]),
          Route("/admin/deliveries/retry", retry_dead, methods=["POST"])]
