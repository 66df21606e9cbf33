"""The pass commands: ``run`` one pass (for cron), ``daemon`` to run unattended, ``status`` of
the sources and the outbox, and the offline ``demo`` (``check`` is in setup.py, with ``init``)."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from monitor import logs
from monitor.cli.kit import config_option, errors_to_exit_codes, opened
from monitor.quoting import for_terminal


@click.command()
@config_option
@click.option("--source", "only", multiple=True, help="Collect only this source (repeatable).")
@click.option("--due-only", is_flag=True,
              help="Collect only sources whose interval has passed since their last attempt "
              "(for a cron line that runs more often than the sources' intervals).")
@click.option("--wait", "wait", default="60s", show_default=True,
              help="How long to wait for an overlapping pass on the same store to finish.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the pass's report as one JSON object (for scripts) instead of a table.")
@errors_to_exit_codes
def run(config_path: Path, only: tuple[str, ...], due_only: bool, wait: str,
        as_json: bool) -> None:
    """One pass: collect every source, store, score, flag, queue and notify (for cron).

    Exits 1 when a source failed, or was skipped (--due-only) while it backs off after
    failures, or a notification died in this pass: cron mails the output, so someone hears.
    Only one pass works on a store at a time: an overlapping run waits up to --wait, then
    exits 1 saying so. Safe to kill at any moment: the next pass finishes the work.
    """
    from monitor.parallel import cores
    from monitor.pipeline import backing_off, due_sources, run_once
    from monitor.store.passlock import pass_lock
    from monitor.units import parse_duration

    try:
        waiting = parse_duration(wait)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--wait") from None
    with opened(config_path) as (config, store):
        unknown = set(only) - {s.name for s in config.sources}
        if unknown:
            raise click.UsageError(f"no source named {', '.join(sorted(unknown))}")
        with pass_lock(store.engine, waiting):
            chosen, skipped = list(only) or None, []
            if due_only:
                now = datetime.now(UTC)
                skipped = backing_off(config, store, now, chosen)
                chosen = due_sources(config, store, now, chosen)
            report = run_once(config, store, chosen, jobs=cores())
            report.skipped = skipped
    if as_json:
        click.echo(logs.mask(json.dumps({**report.as_dict(), "exit_code": report.exit_code},
                                        default=_iso, indent=2)))
    else:
        # an error may quote a URL with a token in it, or a server's escape sequences
        click.echo(logs.mask(for_terminal(_summary(report))))
    sys.exit(report.exit_code)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(type(value).__name__)


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
    if report.skipped:
        lines.append(f"skipped while backing off after failures: {', '.join(report.skipped)}"
                     "  (see monitor status)")
    if report.deliveries:
        lines.append("notifications: " + ", ".join(
            f"{n} {what}" for what, n in sorted(report.deliveries.items()))
            + ("  (see monitor status)" if report.deliveries.get("dead") else ""))
    if report.alerts:
        lines.append(f"alerts about the monitor itself: {report.alerts} (see monitor status)")
    return "\n".join(lines)


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts (UTC times).")
@errors_to_exit_codes
def status(config_path: Path, as_json: bool) -> None:
    """Each source's health: ok, quiet (nothing new for a while) or broken (failing).

    With each source's next try (later while a failing source backs off), when the last pass
    ended, the open and overdue cases, the outbox (how many deliveries are pending, sent,
    silenced or dead: given up after too many failures) and the monitor's alerts about itself
    of the last day. Exits 1 when a source is broken, a delivery is dead or no pass ended for
    longer than `alerts.stalled_after`, so it can drive an alert. Times are in the configured
    `timezone`, named once at the foot of the table; --json's are UTC ISO 8601 (data).
    """
    from collections import Counter

    from monitor.alarms import stall_limit, unfinished_pass
    from monitor.health import assess
    from monitor.leases import holders

    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        rows = store.source_health()
        found = assess(config.sources, rows, now)
        polling = holders(rows, now)  # leases of daemons sharing a PostgreSQL
        outbox, dead = store.delivery_counts(), store.dead_deliveries(limit=5)
        open_cases = store.count_listed(now=now)  # COUNTs in SQL: 100,000 cases read none
        overdue = store.count_listed(now=now, overdue=True)
        last_pass = store.last_pass_at()
        unfinished = unfinished_pass(store, config, last_pass, now)
        unended = unfinished[0] if unfinished is not None and not unfinished[1] else None
        alerts = store.recent_alerts(now - timedelta(days=1))
    stalled = last_pass is not None and (now - last_pass).total_seconds() > stall_limit(config)
    states = Counter(h.state for h in found)
    code = 1 if states["broken"] or dead or stalled or unended else 0
    if as_json:
        click.echo(logs.mask(json.dumps({
            "sources": [{**dataclasses.asdict(h), "polling": polling.get(h.name)}
                        for h in found],
            "last_pass_at": last_pass, "stalled": stalled, "unfinished_pass_at": unended,
            "cases": {"open": open_cases, "overdue": overdue}, "deliveries": outbox,
            "dead": [{k: row[k] for k in ("receiver", "key", "attempts", "last_error")}
                     for row in dead],
            "alerts": alerts, "exit_code": code}, default=_iso, indent=2)))
        sys.exit(code)
    zone = config.timezone
    width = max([len(h.name) for h in found] + [6])
    click.echo(f"{'source':<{width}}  {'kind':<10}  {'state':<9}  last success      "
               f"next try          detail")
    for h in found:
        when = _local(h.last_success_at, zone) if h.last_success_at else "never"
        due = _local(h.next_at, zone) if h.next_at and h.next_at > now else \
            "overdue" if h.overdue else "now"
        lease = f" (polling now: {polling[h.name]})" if h.name in polling else ""
        click.echo(f"{h.name:<{width}}  {h.kind:<10}  {h.state:<9}  {when:<16}  {due:<16}  "
                   f"{logs.mask(for_terminal(h.detail))}{lease}")
    click.echo(f"{len(found)} sources: " + ", ".join(
        f"{states[s]} {s}" for s in ("ok", "quiet", "broken", "never run")
        if states[s] or s != "never run") + f" (times in {config.main.timezone})")
    click.echo("last pass: " + (f"{_local(last_pass, zone)}" if last_pass else "none yet")
               + ("  STALLED: no pass for longer than the limit (alerts.stalled_after)"
                  if stalled else ""))
    if unended is not None:
        click.echo(f"UNFINISHED: the pass started {_local(unended, zone)} never ended (killed, "
                   "or its store failed, a full disk say: see that run's output or the log)")
    click.echo(f"cases: {open_cases} open, {overdue} overdue")
    if outbox:
        click.echo("deliveries: " + ", ".join(f"{n} {state}" for state, n in sorted(
            outbox.items())))
    for row in dead:
        tries = f"{row['attempts']} attempt{'' if row['attempts'] == 1 else 's'}"
        click.echo(f"  dead: {row['receiver']} {row['key']} after {tries}: "
                   f"{logs.mask(for_terminal(str(row['last_error'])))}")
    if dead:
        click.echo("  (monitor deliveries retry sends them again once the receiver is fixed)")
    for alert in alerts:
        click.echo(f"alert {_local(alert['flagged_at'], zone)}  {alert['severity']:<8}  "
                   f"{logs.mask(for_terminal(alert['text']))}")
    sys.exit(code)


def _local(moment: datetime, zone: Any) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


@click.command()
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


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put the demo's config, database and reports (default: a new "
                   "temporary folder).")
@errors_to_exit_codes
def demo(folder: Path | None) -> None:
    """Run the whole pass offline on bundled sample feeds, then write the digest."""
    from monitor.demo import demo_login, run_demo

    report, paths = run_demo(folder, click.echo)
    click.echo(_summary(report))
    click.echo("\nThe digest of today's flagged posts and the backlash report on the new editor:")
    for path in paths:
        click.echo(f"  {path}")
    config = paths[0].parent.parent / "config.yaml"
    click.echo(f"\nLook further: monitor export posts --config {config} --format csv")
    name, password = demo_login(config)
    click.echo(f"\nThe web inbox: monitor web --config {config}\n  then open "
               f"http://127.0.0.1:8080/ and log in as {name} with the password {password}\n"
               f"  (shown this once; `monitor users password demo --config {config}` sets another)")
