"""The themes page for leads: the complaint themes of the last week with their trend, the
fixed ones that came back, and a form to mark one fixed (or take the fix back), what
``monitor themes list``, ``fix`` and ``unfix`` do. A change is a POST with the session's CSRF
token (``guard``), answered with a redirect back to the page and what happened.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor import themes as tracking
from monitor.web.auth import guard
from monitor.web.pages import back_to, notice_of, render

DAYS = 7  # the period of the counts and the trend


def _back(request: Request, message: str, error: bool = False) -> Response:
    return back_to(request, "/themes", message, error=error)


@guard("see_reports")
def themes_page(request: Request) -> Response:
    state = request.app.state
    now = state.clock()
    found = tracking.summaries(state.store, now - timedelta(days=DAYS), now)
    return render(request, "themes.html", title="Themes", themes=found, days=DAYS,
                  tracked_at=state.store.themes_tracked_at(),
                  notice=notice_of(request))


@guard("see_reports")
def fix(request: Request) -> Response:
    state, form = request.app.state, request.state.form
    key = request.path_params["key"]
    fixed_in = str(form.get("fixed_in", "")).strip()[:200]
    if not fixed_in:
        return _back(request, "Say where it is fixed: a version or a date.", error=True)
    note = str(form.get("note", "")).strip()[:2000] or None
    if not state.store.fix_theme(key, fixed_in, note, request.state.user.name, state.clock()):
        return _back(request, f"There is no theme {key!r}.", error=True)
    return _back(request, f"{key}: marked fixed in {fixed_in}.")


@guard("see_reports")
def unfix(request: Request) -> Response:
    key = request.path_params["key"]
    if not request.app.state.store.unfix_theme(key):
        return _back(request, f"There is no theme {key!r}.", error=True)
    return _back(request, f"{key}: no longer marked fixed.")


routes = [Route("/themes", themes_page),
          Route("/themes/{key:str}/fix", fix, methods=["POST"]),
          Route("/themes/{key:str}/unfix", unfix, methods=["POST"])]
