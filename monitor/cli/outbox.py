"""Silences (mute matching flags for a while) and the outbox (``deliveries retry``).

Times are shown in the configured ``timezone``, with its abbreviation (CET, PDT)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import click

from monitor.cli.kit import checked_name, config_option, errors_to_exit_codes, opened
from monitor.model import QUEUE


@click.group()
def silence() -> None:
    """Mute notifications for matching flags for a while (a known outage, a troll)."""


@silence.command("add")
@click.option("--match", "matchers", multiple=True, required=True, metavar="KEY=VALUE",
              help="source, kind, author, language, source_tag, vip, severity, category, "
              "flag_tag or rule; * is a wildcard; repeat to require several.")
@click.option("--for", "lasting", required=True, help="How long: 30m, 2d ...")
@click.option("--reason", required=True, help="Why, for whoever reads the list later.")
@click.option("--by", "who", envvar="MONITOR_USER", help="Who set it. [env: MONITOR_USER]")
@config_option
@errors_to_exit_codes
def silence_add(matchers: tuple[str, ...], lasting: str, reason: str, who: str | None,
                config_path: Path) -> None:
    """Mute matching flags: they are stored and listed in the digest, but neither open a case
    nor notify anyone until the silence ends."""
    from monitor.route import parse_matchers, silence_notices, silence_seconds

    if who is not None:
        checked_name(who, "'--by' / $MONITOR_USER")
    try:
        parsed = parse_matchers(list(matchers))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--match") from None
    for notice in silence_notices(parsed):
        click.echo(f"warning: --match: {notice}", err=True)
    try:
        seconds = silence_seconds(lasting)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--for") from None
    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        sid = store.add_silence(parsed, reason, now + timedelta(seconds=seconds), now, who)
    click.echo(f"silence {sid} until {_local(now + timedelta(seconds=seconds), config.timezone)}")


@silence.command("list")
@click.option("--all", "everything", is_flag=True, help="Include expired silences.")
@config_option
@errors_to_exit_codes
def silence_list(everything: bool, config_path: Path) -> None:
    """The active silences (with --all, the expired ones too)."""
    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        found = store.silences(now, include_expired=everything)
    for s in found:
        state = "active" if s["ends_at"] > now else "expired"
        match = " ".join(f"{k}={v}" for k, v in s["matchers"].items())
        until = _local(s["ends_at"], config.timezone)
        click.echo(f"{s['id']:>4}  {state:<7}  until {until}  {match}  "
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


@click.group()
def deliveries() -> None:
    """The outbox: notifications waiting, sent, or given up on."""


@deliveries.command("retry")
@click.option("--receiver", help="Only this receiver's dead deliveries.")
@config_option
@errors_to_exit_codes
def deliveries_retry(receiver: str | None, config_path: Path) -> None:
    """Send dead deliveries again (after fixing the receiver); the next pass sends them."""
    with opened(config_path) as (config, store):
        known = [QUEUE, *config.main.receivers]
        if receiver is not None and receiver not in known:  # a typo would retry nothing
            raise click.BadParameter(f"no receiver {receiver!r} (known: {', '.join(known)})",
                                     param_hint="--receiver")
        count = store.retry_dead(datetime.now(UTC), receiver)
    click.echo(f"{count} dead deliveries will be sent again")


def _local(moment: datetime, zone: tzinfo) -> str:
    """``2026-10-25 02:30 CEST``: the configured zone, and which side of a DST change."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
