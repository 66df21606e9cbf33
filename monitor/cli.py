"""The ``monitor`` command: parse arguments, call one function, map errors to exit codes.

Exit codes: 0 all well, 1 some sources (or the store) failed, 2 bad configuration or usage.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from monitor import logs
from monitor.clikit import LazyGroup, config_option, errors_to_exit_codes, opened
from monitor.errors import ConfigError

log = logging.getLogger("monitor")

@click.group(cls=LazyGroup, lazy={"queue": "monitor.queue_cli:queue",
                                  "kinds": "monitor.kinds_cli:kinds_command"},
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, wanted: _version(ctx, wanted),
              help="Show the version and exit.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--log-format", type=click.Choice(logs.FORMATS), default="text",
              show_default=True, envvar="MONITOR_LOG_FORMAT",
              help="Log lines on stderr as text, or as JSON objects for a log shipper. "
              "[env: MONITOR_LOG_FORMAT]")
def main(verbose: int, log_format: str) -> None:
    """Collect public posts about your product, flag the angry ones, queue them for answers."""
    logs.setup([logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)], log_format)


def _version(ctx: click.Context, wanted: bool) -> None:
    """--version, looked up only when asked for."""
    if wanted and not ctx.resilient_parsing:
        from monitor import __version__

        click.echo(f"feedback-monitor, version {__version__}")
        ctx.exit()


@main.command()
@config_option
@click.option("--source", "only", multiple=True, help="Collect only this source (repeatable).")
@click.option("--due-only", is_flag=True,
              help="Collect only sources whose interval has passed since their last attempt "
              "(for a cron line that runs more often than the sources' intervals).")
@click.option("--wait", "wait", default="60s", show_default=True,
              help="How long to wait for an overlapping pass on the same store to finish.")
@errors_to_exit_codes
def run(config_path: Path, only: tuple[str, ...], due_only: bool, wait: str) -> None:
    """One pass: collect every source, store, score, flag, queue and notify (for cron).

    Only one pass works on a store at a time: an overlapping run waits up to --wait, then
    exits 1 saying so. Safe to kill at any moment: the next pass finishes the work.
    """
    from monitor import config as configuration
    from monitor.pipeline import due_sources, run_once
    from monitor.store import Store
    from monitor.store.passlock import pass_lock
    from monitor.units import parse_duration

    try:
        waiting = parse_duration(wait)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--wait") from None
    config = configuration.load(config_path)
    logs.protect(config)
    unknown = set(only) - {s.name for s in config.sources}
    if unknown:
        raise click.UsageError(f"no source named {', '.join(sorted(unknown))}")
    store = Store(config.store_url)
    try:
        with pass_lock(store.engine, waiting):
            chosen = list(only) or None
            if due_only:
                chosen = due_sources(config, store, datetime.now(UTC), chosen)
            report = run_once(config, store, chosen)
    finally:
        store.close()
    click.echo(logs.mask(_summary(report)))  # an error may quote a URL with a token in it
    sys.exit(report.exit_code)


def _summary(report: Any) -> str:
    width = max([len(s.name) for s in report.sources] + [6])
    lines = [f"{'source':<{width}}  fetched   new  edited  flagged   secs  status"]
    for s in sorted(report.sources, key=lambda s: s.name):
        status = f"FAILED: {s.error}" if s.error else ("unchanged" if s.unchanged else "ok")
        if s.problems and not s.error:
            status += f" ({len(s.problems)} problem{'s' * (len(s.problems) > 1)}: " \
                      f"{s.problems[0][:80]})"
        lines.append(f"{s.name:<{width}}  {s.fetched:>7}  {s.new:>4}  {s.edited:>6}  "
                     f"{s.flagged:>7}  {s.seconds:>5.1f}  {status}")
    failed = len(report.failed)
    lines.append(f"{len(report.sources)} sources: {len(report.sources) - failed} ok, "
                 f"{failed} failed; {sum(s.new for s in report.sources)} new posts, "
                 f"{report.flagged} flagged; {report.seconds:.1f}s")
    if report.deliveries:
        lines.append("notifications: " + ", ".join(
            f"{n} {what}" for what, n in sorted(report.deliveries.items()))
            + ("  (see monitor status)" if report.deliveries.get("dead") else ""))
    return "\n".join(lines)


@main.command()
@config_option
@errors_to_exit_codes
def check(config_path: Path) -> None:
    """Validate the config, every source file and every rule file."""
    from collections import Counter

    from monitor import config as configuration

    config = configuration.load(config_path)
    kinds = Counter(s.kind for s in config.sources)
    files = {s.file for s in config.sources}
    rule_files = {r.file for r in config.rules.rules}
    click.echo(f"{config_path}: ok")
    click.echo(f"  sources: {len(config.sources)} in {len(files)} file(s) ("
               + ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) + ")")
    click.echo(f"  rules:   {len(config.rules.rules)} in {len(rule_files)} file(s)")
    click.echo(f"  store:   {_hide_password(config.store_url)}")
    click.echo(f"  reports: {config.reports_dir}")


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@main.command()
@config_option
@click.option("--since", help="Only posts first seen from then on: a date, a time or an age "
              "(7d). Default: every stored post.")
@errors_to_exit_codes
def rescore(config_path: Path, since: str | None) -> None:
    """Re-apply the current scorer and rules to stored posts (after a rule was fixed).

    Flags follow the rules as they are now; a newly flagged post opens its one case; a post
    no rule matches any more loses its flag, but a case already opened for it stays.
    """
    from monitor import config as configuration
    from monitor.pipeline import score_pending
    from monitor.runtime import Runtime
    from monitor.store import Store

    config = configuration.load(config_path)
    start = _since(since, config.timezone) if since else None
    store = Store(config.store_url)
    try:
        scored, flagged = score_pending(store, Runtime.of(config), rescore=True, since=start,
                                        policy=config.policy)
    finally:
        store.close()
    click.echo(f"rescored {scored} posts; {sum(flagged.values())} newly flagged")


@main.command()
@config_option
@errors_to_exit_codes
def status(config_path: Path) -> None:
    """Each source's health: ok, quiet (nothing new for a while) or broken (failing).

    With each source's next try (later while a failing source backs off), the open and
    overdue cases, and the outbox: how many deliveries are pending, sent, silenced or dead
    (gave up after too many failures). Exits 1 when a source is broken or a delivery is
    dead, so it can drive an alert.
    """
    from collections import Counter

    from monitor import config as configuration
    from monitor.health import assess
    from monitor.store import Store
    from monitor.store.leases import holders

    config = configuration.load(config_path)
    logs.protect(config)  # a stored error may quote a URL with a token in it
    store = Store(config.store_url)
    try:
        rows = store.source_health()
        found = assess(config.sources, rows, datetime.now(UTC))
        polling = holders(rows, datetime.now(UTC))  # leases of daemons sharing a PostgreSQL
        outbox, dead = store.delivery_counts(), store.dead_deliveries(limit=5)
        now = datetime.now(UTC)
        open_cases = len(store.list_cases(now=now))
        overdue = len(store.list_cases(now=now, overdue=True))
    finally:
        store.close()
    width = max([len(h.name) for h in found] + [6])
    click.echo(f"{'source':<{width}}  {'kind':<10}  {'state':<9}  last success      "
               f"next try          detail")
    for h in found:
        when = h.last_success_at.strftime("%Y-%m-%d %H:%M") if h.last_success_at else "never"
        due = h.next_at.strftime("%Y-%m-%d %H:%M") if h.next_at else "now"
        lease = f" (polling now: {polling[h.name]})" if h.name in polling else ""
        click.echo(f"{h.name:<{width}}  {h.kind:<10}  {h.state:<9}  {when:<16}  {due:<16}  "
                   f"{logs.mask(h.detail)}{lease}")
    states = Counter(h.state for h in found)
    click.echo(f"{len(found)} sources: " + ", ".join(
        f"{states[s]} {s}" for s in ("ok", "quiet", "broken", "never run")
        if states[s] or s != "never run"))
    click.echo(f"cases: {open_cases} open, {overdue} overdue")
    if outbox:
        click.echo("deliveries: " + ", ".join(f"{n} {state}" for state, n in sorted(
            outbox.items())))
    for row in dead:
        click.echo(f"  dead: {row['receiver']} {row['key']} after {row['attempts']} attempts: "
                   f"{logs.mask(str(row['last_error']))}")
    if dead:
        click.echo("  (monitor deliveries retry sends them again once the receiver is fixed)")
    sys.exit(1 if states["broken"] or dead else 0)


@main.command()
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
        for path in digests.write(built, config.reports_dir):
            click.echo(str(path))
        outcome = send_digest(config, store, when, now, built) if sending else None
    if outcome is None:
        return
    for label, who in (("sent to", outcome.sent), ("already sent to", outcome.already),
                       ("being sent by another monitor to", outcome.busy)):
        if who:
            click.echo(f"{label} {', '.join(who)}")
    for recipient, error in outcome.failed:
        click.echo(f"failed: {recipient}: {error} (the next run retries it)", err=True)
    sys.exit(0 if outcome.ok else 1)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD, today or yesterday",
                                 param_hint="--day") from None


@main.command()
@click.argument("what", type=click.Choice(["posts", "cases"]))
@config_option
@click.option("--since", help="A date (2026-11-01), a time (2026-11-01T08:00) or an age (7d).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Where to write (default: standard output).")
@errors_to_exit_codes
def export(what: str, config_path: Path, since: str | None, fmt: str, output: Any) -> None:
    """Export stored posts or cases as JSON lines or CSV."""
    from monitor import config as configuration
    from monitor import export as exporting
    from monitor.store import Store

    config = configuration.load(config_path)
    start = _since(since, config.timezone) if since else None
    store = Store(config.store_url)
    try:
        records = (exporting.post_records if what == "posts" else exporting.case_records)(
            store, start)
        count = exporting.write(records, fmt, output)
    finally:
        store.close()
    click.echo(f"{count} {what} exported", err=True)


def _since(value: str, zone: Any) -> datetime:
    from monitor.units import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date, a time or an age like 7d",
                                 param_hint="--since") from None
    if isinstance(parsed, date) and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


@main.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put the demo's config, database and reports (default: a new "
                   "temporary folder).")
@errors_to_exit_codes
def demo(folder: Path | None) -> None:
    """Run the whole pass offline on bundled sample feeds, then write the digest."""
    from monitor.demo import run_demo

    report, paths = run_demo(folder, click.echo)
    click.echo(_summary(report))
    click.echo("\nThe digest of today's flagged posts and the backlash report on the new editor:")
    for path in paths:
        click.echo(f"  {path}")
    config = paths[0].parent.parent / "config.yaml"
    click.echo(f"\nLook further: monitor export posts --config {config} --format csv")


# --- rule authoring: `monitor score` and `monitor rules test` --------------------------------

@main.command()
@click.argument("text", required=False)
@click.option("--title", help="A title to score with TEXT.")
@click.option("--jobs", type=click.IntRange(1), metavar="N",
              help="Worker processes for a large input (2,000 lines or 200,000 characters) "
              "[default: one per CPU]; 1 scores all in this process. Output order is kept.")
@config_option
@errors_to_exit_codes
def score(text: str | None, title: str | None, jobs: int | None, config_path: Path) -> None:
    """Why would this be flagged? Scores TEXT, or JSON lines on stdin.

    Each input line is {"text": ..., "title": ...} (optionally author, source, kind, tags, reach,
    vip); each output line, in input order, has the scores, the signals, flagged, severity, the
    matched rules and the reasons. A bad input line gives a line with an "error" key. Lines
    are scored in batches of what has arrived, so each line typed is answered at once.
    """
    import json as json_
    import os

    from monitor import scorestream

    rules, scorer, vips = _rule_tools(config_path)
    lines = (json_.dumps({"text": text, "title": title}),) if text is not None else sys.stdin
    if jobs is None:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    scorestream.write_scores(lines, sys.stdout, rules, scorer, vips, jobs=jobs)


@main.group("rules")
def rules_group() -> None:
    """Help for rule authors."""


@rules_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--worst", default=5, show_default=True, type=click.IntRange(0),
              help="How many misses to show per label and kind of mistake.")
@errors_to_exit_codes
def rules_test(file: Path, config_path: Path, worst: int) -> None:
    """Run the rules over labelled JSON lines ({"text", "label"}): precision, recall, F1.

    A post is predicted L when a matching rule has L as its category or one of its tags;
    the labels "none" and "neutral" mean the post should not be flagged at all.
    """
    from monitor import ruletest

    rules, scorer, vips = _rule_tools(config_path)
    samples = ruletest.read_labelled(file)
    click.echo(ruletest.render(ruletest.run_test(samples, rules, scorer, vips,
                                                 str(file), worst)))


def _rule_tools(config_path: Path) -> tuple[Any, Any, Any]:
    """The rules, scorer and VIP list exactly as a pass would use them (the sources' own
    kind and tags come with each sample, so the sources are not read)."""
    from monitor import config as configuration
    from monitor.runtime import Runtime

    judge = Runtime.of(configuration.load(config_path, scoring_only=True))
    return judge.rules, judge.scorer, judge.vips


# --- silences and the outbox ------------------------------------------------------------------

@main.group()
def silence() -> None:
    """Mute notifications for matching flags for a while (a known outage, a troll)."""


@silence.command("add")
@click.option("--match", "matchers", multiple=True, required=True, metavar="KEY=VALUE",
              help="source, kind, author, category, severity, tag or rule; * is a wildcard; "
              "repeat to require several.")
@click.option("--for", "lasting", required=True, help="How long: 30m, 2d ...")
@click.option("--reason", required=True, help="Why, for whoever reads the list later.")
@click.option("--by", "who", envvar="MONITOR_USER", help="Who set it. [env: MONITOR_USER]")
@config_option
@errors_to_exit_codes
def silence_add(matchers: tuple[str, ...], lasting: str, reason: str, who: str | None,
                config_path: Path) -> None:
    """Mute matching flags: they are stored and listed in the digest, but neither open a case
    nor notify anyone until the silence ends."""
    from monitor.route import parse_matchers
    from monitor.units import parse_duration

    try:
        parsed = parse_matchers(list(matchers))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--match") from None
    try:
        seconds = parse_duration(lasting)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--for") from None
    now = datetime.now(UTC)
    with opened(config_path) as (_config, store):
        sid = store.add_silence(parsed, reason, now + timedelta(seconds=seconds), now, who)
    click.echo(f"silence {sid} until {now + timedelta(seconds=seconds):%Y-%m-%d %H:%M} UTC")


@silence.command("list")
@click.option("--all", "everything", is_flag=True, help="Include expired silences.")
@config_option
@errors_to_exit_codes
def silence_list(everything: bool, config_path: Path) -> None:
    """The active silences (with --all, the expired ones too)."""
    now = datetime.now(UTC)
    with opened(config_path) as (_config, store):
        found = store.silences(now, include_expired=everything)
    for s in found:
        state = "active" if s["ends_at"] > now else "expired"
        match = " ".join(f"{k}={v}" for k, v in s["matchers"].items())
        click.echo(f"{s['id']:>4}  {state:<7}  until {s['ends_at']:%Y-%m-%d %H:%M}  {match}  "
                   f"({s['reason']}{', by ' + s['created_by'] if s['created_by'] else ''})")
    if not found:
        click.echo("no silences")


@silence.command("expire")
@click.argument("silence_id", type=int)
@config_option
@errors_to_exit_codes
def silence_expire(silence_id: int, config_path: Path) -> None:
    """End a silence now."""
    with opened(config_path) as (_config, store):
        if not store.expire_silence(silence_id, datetime.now(UTC)):
            click.echo(f"error: no active silence {silence_id}", err=True)
            sys.exit(1)
    click.echo(f"silence {silence_id} expired")


@main.group()
def deliveries() -> None:
    """The outbox: notifications waiting, sent, or given up on."""


@deliveries.command("retry")
@click.option("--receiver", help="Only this receiver's dead deliveries.")
@config_option
@errors_to_exit_codes
def deliveries_retry(receiver: str | None, config_path: Path) -> None:
    """Send dead deliveries again (after fixing the receiver); the next pass sends them."""
    with opened(config_path) as (_config, store):
        count = store.retry_dead(datetime.now(UTC), receiver)
    click.echo(f"{count} dead deliveries will be sent again")



@main.command()
@config_option
@errors_to_exit_codes
def daemon(config_path: Path) -> None:
    """Run unattended: each source on its own interval, the outbox every few seconds.

    SIGTERM or Ctrl-C stops it after the running jobs finish; SIGHUP reloads the config and
    rules (a broken new config is refused, the old one keeps running). With SQLite, one daemon
    per database.
    """
    from monitor.daemon import Daemon

    Daemon(config_path).run()


@main.command()
@click.argument("event")
@config_option
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html",
              show_default=True, help="html: write HTML and Markdown into reports/; json: print.")
@errors_to_exit_codes
def backlash(event: str, config_path: Path, fmt: str) -> None:
    """How the launch EVENT (a name in config `events`) is going down: the days before
    against the days after, storms, and what people are unhappy about."""
    from monitor.backlash import report as reports
    from monitor.backlash.events import find_event, watched

    with opened(config_path) as (config, store):
        events = watched(config.main.events, config.timezone, config.sources)
        chosen = find_event(events, event)
        if chosen is None:
            known = ", ".join(repr(e.name) for e in events) or "none configured"
            raise ConfigError(f"no event named {event!r} (events: {known})", config.path.name,
                              "events")
        report = reports.build(store, chosen, config.timezone, datetime.now(UTC))
    if fmt == "json":
        click.echo(reports.to_json(report))
        return
    for path in reports.write(report, config.reports_dir):
        click.echo(str(path))



if __name__ == "__main__":
    main()
