"""Pages for leads: each launch's backlash report, the digest archive, the queue's stats and
the sources' health, the same figures as ``monitor backlash``, ``digest`` and ``status``.

A report (backlash, digest) is the CLI's own HTML document, not a copy of it: it is served at
its own address with ``REPORT_CSP`` (its inline styles, no script) and shown in a sandboxed
iframe of a page of ours, so the e-mail, the file and the browser show the same thing. A
report is rebuilt when asked for, but reused for ``CACHE_FOR`` seconds: a page and its iframe
ask twice, and a room of leads watching a launch go out asks often.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from monitor import followup, logs
from monitor.alarms import stall_limit, unfinished_pass
from monitor.backlash import report as backlash
from monitor.backlash.events import WatchedEvent, find_event, watched
from monitor.errors import MonitorError
from monitor.health import assess
from monitor.leases import holders
from monitor.reports import digest as digests
from monitor.reports import render as digest_render
from monitor.store.web import CaseFilter
from monitor.web.auth import guard
from monitor.web.pages import REPORT_CSP, render

CACHE_FOR = 60.0      # seconds a built report is reused
REFRESH_EVERY = 300   # seconds between refreshes of a young launch's page
ARCHIVE_DAYS = 60     # days the digest archive looks back
STATS_DAYS = 14       # days of cases opened and closed on the stats page
DEAD_SHOWN = 20
FIRST_DAY = date(2000, 1, 1)  # no digest before (and day 1 of year 1 has no UTC start)

T = TypeVar("T")


def cached(request: Request, key: tuple[str, ...], build: Callable[[], T]) -> T:
    """``build()``, shared for ``CACHE_FOR`` seconds (``monitor.web.shared``). An error is
    not kept: the next request tries again."""
    return request.app.state.reports.get(key, build)


def report_document(content: str, status: int = 200) -> Response:
    """A report as the CLI writes it, under the report CSP (its inline styles, no script)."""
    return HTMLResponse(content, status_code=status,
                        headers={"Content-Security-Policy": REPORT_CSP})


def _failed_document(error: Exception) -> Response:
    """The iframe's answer when its report cannot be made: a page of ours would be refused
    inside a frame (our CSP says ``frame-ancestors 'none'``)."""
    return report_document("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">"
                           "<title>Report unavailable</title><p>The report could not be made: "
                           f"{html.escape(logs.mask(str(error)))}</p></html>", 503)


def _unavailable(request: Request, error: MonitorError) -> Response:
    return render(request, "error.html", 503, title="The report could not be made",
                  message=f"{logs.mask(str(error))} (the same error `monitor` would report "
                          "on the command line; try again once it is fixed).")


# --- launches ----------------------------------------------------------------------------------

def _events(request: Request) -> list[WatchedEvent]:
    config = request.app.state.config
    return watched(config.main.events, config.timezone, config.sources)


def _event(request: Request) -> WatchedEvent:
    name = request.path_params["name"]
    event = find_event(_events(request), name)
    if event is None:
        raise HTTPException(404, f"There is no launch named {name!r} in the config (events).")
    return event


def _backlash(request: Request, event: WatchedEvent) -> tuple[backlash.Backlash, str]:
    """The launch's report and its HTML, as ``monitor backlash`` writes it."""
    state = request.app.state

    def build() -> tuple[backlash.Backlash, str]:
        made = backlash.build(state.store, event, state.config.timezone, state.clock())
        return made, backlash.render(made, "backlash.html.j2")

    return cached(request, ("launch", event.name), build)


@guard("see_reports")
def launches(request: Request) -> Response:
    """Every configured launch, newest first, with its window and whether it is live."""
    now = request.app.state.clock()
    found = sorted(_events(request), key=lambda e: e.launch, reverse=True)
    return render(request, "launches.html", title="Launches",
                  launches=[(e, _phase(e, now)) for e in found])


def _phase(event: WatchedEvent, now: datetime) -> str:
    return "coming" if now < event.launch else "young" if now < event.window[1] else "over"


@guard("see_reports")
def launch(request: Request) -> Response:
    """The verdict and figures on top, the full report below; while the launch is young the
    report part is redrawn every ``REFRESH_EVERY`` seconds (htmx), the report rebuilt."""
    event = _event(request)
    try:
        made, _html = _backlash(request, event)
    except MonitorError as error:
        return _unavailable(request, error)
    live = _phase(event, request.app.state.clock()) != "over"
    template = "_launch_report.html" if request.query_params.get("part") == "report" \
        else "launch.html"
    return render(request, template, title=f"Backlash: {event.name}", event=event, r=made,
                  live=live, every=REFRESH_EVERY, percent=backlash.percent)


@guard("see_reports")
def launch_report(request: Request) -> Response:
    event = _event(request)
    try:
        return report_document(_backlash(request, event)[1])
    except MonitorError as error:
        return _failed_document(error)


# --- digests -----------------------------------------------------------------------------------

def _day(request: Request) -> date:
    """The URL's day: a YYYY-MM-DD that is not in the future, else a 404."""
    text = request.path_params["day"]
    state = request.app.state
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or day.isoformat() != text:  # not 20261203 nor 2026-W49-4: one address
        raise HTTPException(404, f"{text!r} is not a day (YYYY-MM-DD).")
    if not FIRST_DAY <= day <= state.clock().astimezone(state.config.timezone).date():
        raise HTTPException(404, f"There is no digest of {text}.")
    return day


def _digest(request: Request, day: date) -> tuple[digests.Digest, str]:
    """The day's digest and its HTML, as ``monitor digest`` writes it (the chart inline)."""
    state = request.app.state

    def build() -> tuple[digests.Digest, str]:
        made = digests.build_for(state.config, state.store, day, state.clock())
        return made, digest_render.render_html(made, digest_render.chart_uri(made))

    return cached(request, ("digest", day.isoformat()), build)


@guard("see_reports")
def digest_archive(request: Request) -> Response:
    """The days with flagged posts of the last ``ARCHIVE_DAYS`` days, newest first."""
    state = request.app.state
    zone = state.config.timezone
    now = state.clock()
    today = now.astimezone(zone).date()
    since = digests.day_bounds(today - timedelta(days=ARCHIVE_DAYS - 1), zone)[0]
    return render(request, "digests.html", title="Digests", today=today,
                  days=digests.flagged_days(state.store, since, now, zone),
                  archive_days=ARCHIVE_DAYS)


@guard("see_reports")
def digest_page(request: Request) -> Response:
    day = _day(request)
    try:
        made, _html = _digest(request, day)
    except MonitorError as error:
        return _unavailable(request, error)
    today = request.app.state.clock().astimezone(request.app.state.config.timezone).date()
    return render(request, "digest.html", title=f"Digest of {day.isoformat()}", d=made,
                  day=day, earlier=day - timedelta(days=1),
                  later=day + timedelta(days=1) if day < today else None)


@guard("see_reports")
def digest_report(request: Request) -> Response:
    day = _day(request)
    try:
        return report_document(_digest(request, day)[1])
    except MonitorError as error:
        return _failed_document(error)


# --- stats and sources -------------------------------------------------------------------------

@guard("see_reports")
def stats(request: Request) -> Response:
    """The queue by severity (``monitor stats``), by person, and by day; and whether our
    answers won their authors back (``monitor.followup``)."""
    state = request.app.state
    now = state.clock()
    activity = state.store.case_activity(now, state.config.timezone, days=STATS_DAYS)
    week, outcomes = followup.last_week(state.store, now)
    return render(request, "stats.html", title="Stats", severities=state.store.queue_stats(now),
                  activity=activity, days=STATS_DAYS, outcomes=outcomes,
                  answered=followup.answered_line(week, "in the last 7 days"))


@guard("see_reports")
def sources(request: Request) -> Response:
    """What ``monitor status`` says: each source's health, the passes, the outbox, the
    monitor's own alerts of the last day. Error texts are masked as in the logs."""
    state = request.app.state
    config, store, now = state.config, state.store, state.clock()
    rows = store.source_health()
    last_pass = store.last_pass_at()
    found = unfinished_pass(store, config, last_pass, now)
    return render(
        request, "sources.html", title="Sources", mask=logs.mask,
        health=assess(config.sources, rows, now), polling=holders(rows, now),
        last_pass=last_pass,
        stalled=last_pass is not None and (now - last_pass).total_seconds() > stall_limit(config),
        unended=found and found[0], running=found is not None and found[1],
        open_cases=store.count_cases(CaseFilter()), overdue=store.cases_overdue(now),
        deliveries=sorted(store.delivery_counts().items()),
        dead=store.dead_deliveries(limit=DEAD_SHOWN),
        alerts=store.recent_alerts(now - timedelta(days=1)))


routes = [Route("/launches", launches),
          Route("/launches/{name:path}/report", launch_report),
          Route("/launches/{name:path}", launch),
          Route("/digests", digest_archive),
          Route("/digests/{day}/report", digest_report),
          Route("/digests/{day}", digest_page),
          Route("/stats", stats),
          Route("/sources", sources)]
