"""``monitor prune``: old posts lose their text, title and author; their figures stay (see
``monitor.store.retention``). By ``store.retention``, or ``--older-than``; the daemon prunes
once a day by itself, cron users add this command to their crontab.

Exit codes: 0 done (or nothing to prune), 1 the store failed (what was pruned stays pruned:
run it again to finish), 2 no retention set nor given, or a bad one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.kit import config_option, errors_to_exit_codes

if TYPE_CHECKING:
    from monitor.config import Config


@click.command("prune")
@click.option("--older-than", "older_than", metavar="SPAN",
              help="Prune posts first seen longer ago than this (400d, 52w); default: "
              "store.retention of config.yaml.")
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; change nothing.")
@config_option
@errors_to_exit_codes
def prune(older_than: str | None, dry_run: bool, config_path: Path) -> None:
    """Drop the text, title and author of posts older than the retention, keeping their
    scores, flags and counts for the digest and launch history. Posts of open cases, storms
    and the monitor's own alerts are never pruned."""
    from monitor import config as configuration
    from monitor import logs
    from monitor.store import Store

    config = configuration.load(config_path)
    logs.protect(config)
    kept = _retention(older_than, config)
    now = datetime.now(UTC)
    with Store(config.store_url) as store:
        done = store.prune_posts(now - timedelta(seconds=kept), now, dry_run=dry_run)
    before = done.cutoff.astimezone(config.timezone)
    posts = f"{done.posts} post{'s' * (done.posts != 1)} first seen before " \
            f"{before:%Y-%m-%d %H:%M %Z}"
    edits = f"{done.edits} earlier version{'s' * (done.edits != 1)}"
    if dry_run:
        click.echo(f"would prune {posts} (and delete {edits}); nothing changed (--dry-run)")
    else:
        click.echo(f"pruned {posts}: text, title and author dropped, figures kept; "
                   f"{edits} deleted")


def _retention(older_than: str | None, config: Config) -> float:
    """Seconds to keep: ``--older-than`` checked as ``store.retention`` is, else the
    config's; neither is a usage mistake (exit 2)."""
    from pydantic import TypeAdapter, ValidationError

    from monitor.config import Retention, retention_problem

    if older_than is None:
        if config.retention is None:
            raise click.UsageError(
                "no retention: set store.retention in config.yaml (store: {url: ..., "
                "retention: 400d}) or pass --older-than SPAN")
        return config.retention
    try:
        seconds = float(TypeAdapter(Retention).validate_python(older_than))
    except ValidationError as error:
        said = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise click.BadParameter(said, param_hint="--older-than") from None
    problem = retention_problem(seconds, config.main.followup.window)
    if problem:
        raise click.BadParameter(problem, param_hint="--older-than")
    return seconds
