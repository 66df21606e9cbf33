"""``monitor themes``: the complaint themes the monitor tracks (``monitor.themes``), marked
fixed by the team, and exported for the product team's tracker.

A theme is named on the command line by its key or by its label's words in any order
("dark mode / contrast" is ``contrast-dark-mode``). Exit codes: 0 done, 1 no such theme or
the export's POST failed (one line says why), 2 bad usage or configuration.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli.kit import checked_name, config_option, errors_to_exit_codes, opened
from monitor.errors import MonitorError
from monitor.quoting import for_terminal


def _unknown(key: str) -> MonitorError:
    return MonitorError(f"no theme {key!r} (monitor themes list shows them)")


def _found(store: Any, given: str) -> dict[str, Any]:
    from monitor.themes import theme_key

    theme = store.get_theme(given) or store.get_theme(theme_key(given))
    if theme is None:
        raise _unknown(given)
    return theme


@click.group("themes")
def themes() -> None:
    """Complaint themes linked to their cases: fix everything twice. `monitor run` and the
    daemon find them once a day; mark one fixed, and the digest says when it comes back."""


@themes.command("list")
@click.option("--days", type=click.IntRange(1, 3660), default=7, show_default=True,
              help="Count the cases of the last DAYS days (the trend: against the DAYS before).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts (UTC times).")
@config_option
@errors_to_exit_codes
def list_(days: int, as_json: bool, config_path: Path) -> None:
    """Every theme, most cases first: its key, label, cases in the period and in all, trend
    and whether it is marked fixed (and came back since)."""
    from monitor import themes as tracking

    with opened(config_path) as (_config, store):
        records = tracking.export_records(store, datetime.now(UTC), days)
    if as_json:
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if not records:
        click.echo("no themes yet (they are found once a day from the cases' complaints)")
        return
    for r in records:
        fixed = f" · fixed in {r['fixed_in']}" if r["fixed_at"] else ""
        back = f" · BACK: {r['back_since_fix']} cases since the fix" if r["returning"] else ""
        click.echo(for_terminal(  # labels are words of the posts
            f"{r['key']}  {r['label']}  {r['cases_this_week']} in {days} days / "
            f"{r['cases_total']} cases · {r['trend']}{fixed}{back}"))


@themes.command("show")
@click.argument("theme")
@config_option
@errors_to_exit_codes
def show(theme: str, config_path: Path) -> None:
    """A theme and its cases, latest first, with links to their posts."""
    with opened(config_path) as (config, store):
        found = _found(store, theme)
        linked = store.theme_cases(found["key"])
    zone = config.timezone
    click.echo(for_terminal(f"{found['label']}  ({found['key']})"))
    click.echo(f"seen {found['first_seen_at'].astimezone(zone):%Y-%m-%d} to "
               f"{found['last_seen_at'].astimezone(zone):%Y-%m-%d}, {len(linked)} cases")
    if found["fixed_at"]:
        note = f": {found['fixed_note']}" if found["fixed_note"] else ""
        marked = found["fixed_at"].astimezone(zone)
        click.echo(for_terminal(f"fixed in {found['fixed_in']} (marked {marked:%Y-%m-%d} by "
                                f"{found['fixed_by'] or 'someone'}){note}"))
    for c in linked:
        back = " BACK after the fix" if found["fixed_at"] and c["at"] > found["fixed_at"] else ""
        click.echo(for_terminal(f"  #{c['id']} {c['state']} {c['severity']} "
                                f"{c['at'].astimezone(zone):%Y-%m-%d %H:%M %Z}{back}  "
                                f"{c['url'] or ''}"))


@themes.command("fix")
@click.argument("theme")
@click.option("--in", "fixed_in", required=True, metavar="VERSION_OR_DATE",
              help="Where it is fixed: a version (2.4.1) or a date.")
@click.option("--note", help="What was done.")
@click.option("--by", "--as", "who", envvar="MONITOR_USER", metavar="NAME",
              help="Who marks it (default: $MONITOR_USER, else your OS user name).")
@config_option
@errors_to_exit_codes
def fix(theme: str, fixed_in: str, note: str | None, who: str | None, config_path: Path) -> None:
    """Mark THEME fixed: a case that comes for it after now is called out as back."""
    if not fixed_in.strip():
        raise click.BadParameter("give a version or a date", param_hint="--in")
    by = checked_name(who or getpass.getuser(), "'--by' / $MONITOR_USER")
    with opened(config_path) as (_config, store):
        key = _found(store, theme)["key"]
        if not store.fix_theme(key, fixed_in.strip(), note, by, datetime.now(UTC)):
            raise _unknown(theme)
    click.echo(f"{key}: fixed in {fixed_in.strip()}")


@themes.command("unfix")
@click.argument("theme")
@config_option
@errors_to_exit_codes
def unfix(theme: str, config_path: Path) -> None:
    """Take back THEME's fix (it was not fixed after all)."""
    with opened(config_path) as (_config, store):
        key = _found(store, theme)["key"]
        if not store.unfix_theme(key):
            raise _unknown(theme)
    click.echo(f"{key}: no longer marked fixed")


@themes.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@click.option("--days", type=click.IntRange(1, 3660), default=7, show_default=True,
              help="The period of cases_this_week (and the trend).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Where to write (default: standard output).")
@click.option("--webhook", metavar="URL", help="POST the JSON there instead.")
@click.option("--receiver", metavar="NAME", help="POST the JSON to this configured webhook "
              "receiver (its URL, headers and secret) instead.")
@click.option("--secret", envvar="MONITOR_WEBHOOK_SECRET", metavar="KEY",
              help="Sign the --webhook POST with this HMAC key. [env: MONITOR_WEBHOOK_SECRET]")
@config_option
@errors_to_exit_codes
def export(fmt: str, days: int, output: Any, webhook: str | None, receiver: str | None,
           secret: str | None, config_path: Path) -> None:
    """The themes as JSON or CSV (safe for spreadsheets), or POSTed as JSON to a webhook,
    signed like the webhook receiver's notices. Exits 1 when the POST failed."""
    from monitor import themes as tracking

    if webhook and receiver:
        raise click.UsageError("give --webhook or --receiver, not both")
    if (webhook or receiver) and fmt != "json":
        raise click.UsageError("a webhook gets JSON: leave --format out")
    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        records = tracking.export_records(store, now, days)
        target = _target(config, webhook, receiver, secret)
        store_id = store.store_id() if target is not None else ""
    if target is None:
        output.write(tracking.to_csv(records) if fmt == "csv"
                     else tracking.to_json(records, now, days) + "\n")
        click.echo(f"{len(records)} themes exported", err=True)
        return
    url, signing, headers, timeout = target
    tracking.post(url, tracking.to_json(records, now, days), signing, headers, timeout, now,
                  store_id=store_id)
    click.echo(f"{len(records)} themes sent", err=True)


def _target(config: Any, webhook: str | None, receiver: str | None,
            secret: str | None) -> tuple[str, str | None, dict[str, str], float] | None:
    """(URL, secret, headers, timeout) to POST to; None: write to the output."""
    if webhook:
        return webhook, secret, {}, 10.0
    if receiver is None:
        return None
    from monitor.receivers import secret as read_secret
    from monitor.receivers.webhook import WebhookReceiver

    chosen = config.receivers.get(receiver)
    if not isinstance(chosen, WebhookReceiver):
        known = sorted(n for n, r in config.receivers.items() if isinstance(r, WebhookReceiver))
        raise click.UsageError(f"--receiver: {receiver!r} is not a webhook receiver of the "
                               f"config (those are: {', '.join(known) or 'none'})")
    o = chosen.options
    key = read_secret(o.secret, o.secret_file, "webhook secret") \
        if o.secret is not None or o.secret_file is not None else None
    return (read_secret(o.url, o.url_file, "webhook URL"), key,
            {name: value.get_secret_value() for name, value in o.headers.items()}, o.timeout)
