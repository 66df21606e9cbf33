"""The pass commands: ``run`` one pass (for cron), ``daemon`` to run unattended, ``status`` of
the sources and the outbox, ``check`` the config, and the offline ``demo``."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor import logs
from monitor.cli.kit import config_option, errors_to_exit_codes, opened


@click.command()
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
    from monitor.pipeline import due_sources, run_once
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
            chosen = list(only) or None
            if due_only:
                chosen = due_sources(config, store, datetime.now(UTC), chosen)
            report = run_once(config, store, chosen)
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


@click.command()
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
    for notice in config.notices:   # works, but is written the old way: say the new way
        click.echo(f"warning: {notice}", err=True)


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@click.command()
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

    from monitor.health import assess
    from monitor.leases import holders

    with opened(config_path) as (config, store):
        rows = store.source_health()
        found = assess(config.sources, rows, datetime.now(UTC))
        polling = holders(rows, datetime.now(UTC))  # leases of daemons sharing a PostgreSQL
        outbox, dead = store.delivery_counts(), store.dead_deliveries(limit=5)
        now = datetime.now(UTC)
        open_cases = len(store.list_cases(now=now))
        overdue = len(store.list_cases(now=now, overdue=True))
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
    from monitor.demo import run_demo

    report, paths = run_demo(folder, click.echo)
    click.echo(_summary(report))
    click.echo("\nThe digest of today's flagged posts and the backlash report on the new editor:")
    for path in paths:
        click.echo(f"  {path}")
    config = paths[0].parent.parent / "config.yaml"
    click.echo(f"\nLook further: monitor export posts --config {config} --format csv")
