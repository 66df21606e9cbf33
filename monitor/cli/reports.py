"""What comes out of the store: the day's ``digest``, the ``backlash`` report on a launch, and
``export`` of posts or cases."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from monitor.cli.kit import config_option, errors_to_exit_codes, opened, parse_since


@click.command()
@config_option
@click.option("--day", "--date", "day", metavar="YYYY-MM-DD|today|yesterday",
              help="The day to report (default: yesterday, the last whole day, in the "
                   "configured time zone).")
@click.option("--send/--no-send", default=None,
              help="E-mail it to digest.to (default: when digest.to is set). Only a day that "
                   "is over is sent, once per recipient; a re-run retries only the failed.")
@errors_to_exit_codes
def digest(config_path: Path, day: str | None, send: bool | None) -> None:
    """Write the flagged-posts digest of a day into reports/ (YYYY-MM-DD.html, .md, .csv and
    the chart's .png) and e-mail it. Exit 1 when sending to a recipient failed."""
    from monitor.reports import digest as digests
    from monitor.reports import render
    from monitor.reports.mail import send_digest

    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        today = now.astimezone(config.timezone).date()
        when = {"today": today, "yesterday": today - timedelta(days=1), None:
                digests.last_whole_day(now, config.timezone)}.get(day) or _day(day)
        sending = bool(config.main.digest.to) if send is None else send
        if sending and not config.main.digest.to:
            raise click.UsageError("--send: no recipients (set digest.to in the config)")
        if sending and digests.day_bounds(when, config.timezone)[1] > now:
            if send:
                raise click.UsageError(f"the digest of {when} is sent once the day is over")
            sending = False
            click.echo(f"(not e-mailed: {when} is not over yet)", err=True)
        built = digests.build_for(config, store, when, now)
        for path in render.write(built, config.reports_dir):
            click.echo(str(path))
        outcome = send_digest(config, store, when, now, built) if sending else None
    if outcome is None:
        return
    _tell(outcome)
    sys.exit(0 if outcome.ok else 1)


def _day(value: str) -> date:
    """--day as a date; one outside the years posts can have (the digest also charts the
    days before it) is a mistake, not a day to count."""
    from monitor.model import EARLIEST, LATEST

    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD, today or yesterday",
                                 param_hint="--day") from None
    if not EARLIEST.year < day.year < LATEST.year:
        raise click.BadParameter(f"{value!r}: give a day from {EARLIEST.year + 1} to "
                                 f"{LATEST.year - 1}", param_hint="--day")
    return day


@click.command()
@click.argument("event", required=False)
@config_option
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html",
              show_default=True, help="html: write HTML and Markdown into reports/ (or print "
              "text with --list/--compare); json: print JSON.")
@click.option("--send", is_flag=True, help="Also e-mail it to the event's report.to now "
              "(once a day per recipient: a second --send that day sends nothing).")
@click.option("--list", "listing", is_flag=True, help="Every launch with its verdict.")
@click.option("--compare", nargs=2, metavar="A B", help="Two launches side by side.")
@errors_to_exit_codes
def backlash(event: str | None, config_path: Path, fmt: str, send: bool, listing: bool,
             compare: tuple[str, str] | None) -> None:
    """How the launch EVENT (a name in config `events`) is going down: a verdict, the days
    before against the days after (all posts of its sources, weekday-matched, with 95 %
    intervals), storms, and what people are unhappy about. Exits 1 when --send failed."""
    from monitor.backlash import launches
    from monitor.backlash import report as reports

    modes = sum((event is not None, listing, compare is not None))
    if modes != 1:
        raise click.UsageError("name one EVENT, or use --list, or --compare A B")
    if send and event is None:
        raise click.UsageError("--send needs an EVENT")
    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        names = [event] if event else list(compare or ()) if compare else [
            e.name for e in config.main.events]
        chosen = launches.find(config, names)
        if send and chosen[0].mail is None:
            raise click.UsageError(f"--send: the event {event!r} has no report.to "
                                   "(set events[].report in the config)")
        made = [reports.build(store, one, config.timezone, now) for one in chosen]
        outcome = None
        if send:
            from monitor.backlash.mail import send_launch_report

            outcome = send_launch_report(config, store, chosen[0], now, made[0])
    if fmt == "json":
        data = [r.as_dict() for r in made]
        click.echo(json.dumps(data[0] if event else data, indent=2, ensure_ascii=False))
    elif listing:
        click.echo(launches.listing(made) if made else "no events configured (config events)")
    elif compare:
        click.echo(launches.side_by_side(made[0], made[1]))
    else:
        for path in reports.write(made[0], config.reports_dir):
            click.echo(str(path))
    if outcome is not None:
        _tell(outcome)
        sys.exit(0 if outcome.ok else 1)


def _tell(outcome: Any) -> None:
    """Who a send reached, who had it already, who failed."""
    for label, who in (("sent to", outcome.sent), ("already sent to", outcome.already),
                       ("being sent by another monitor to", outcome.busy)):
        if who:
            click.echo(f"{label} {', '.join(who)}")
    for recipient, error in outcome.failed:
        click.echo(f"failed: {recipient}: {error} (the next run retries it)", err=True)


@click.command()
@click.argument("what", type=click.Choice(["posts", "cases"]))
@config_option
@click.option("--since", help="A date (2026-11-01), a time (2026-11-01T08:00) or an age (7d).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Where to write (default: standard output); never over a database file.")
@errors_to_exit_codes
def export(what: str, config_path: Path, since: str | None, fmt: str, output: Any) -> None:
    """Export stored posts or cases as JSON lines or CSV."""
    from monitor import export as exporting

    if output.name != "-" and _is_database(Path(output.name)):  # not yet opened: it is lazy
        raise click.BadParameter(f"{output.name} is a SQLite database (the store?): export "
                                 "will not overwrite it", param_hint="--output")
    with opened(config_path) as (config, store):
        start = parse_since(since, config.timezone) if since else None
        records = (exporting.post_records if what == "posts" else exporting.case_records)(
            store, start)
        count = exporting.write(records, fmt, output)
    click.echo(f"{count} {what} exported", err=True)


def _is_database(path: Path) -> bool:
    """Whether ``path`` holds a SQLite database: ``-o monitor.db`` truncated the store while
    it was being read, leaving neither."""
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:  # not there, or not readable: nothing to protect
        return False
