"""``monitor learn``: refit the complaint and anger models with the team's verdicts
(``monitor.learn``), print the figures before and after, install only what is not worse.

Exit codes: 0 installed, nothing to learn, a dry run or an undo; 1 a refit was refused (not as
good as the model in use: nothing changed for it); 2 bad usage or configuration.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.kit import config_option, errors_to_exit_codes, opened

if TYPE_CHECKING:  # monitor.learn (numpy, the training data) loads when a command runs
    from monitor.learn import LearnReport


@click.command("learn")
@click.option("--dry-run", is_flag=True, help="Fit and show the figures; install nothing.")
@click.option("--undo", is_flag=True,
              help="Go back to the model used before the last one learned (or the shipped).")
@click.option("--signal", "signals", multiple=True, type=click.Choice(["complaint", "anger"]),
              help="Only this model (repeatable; default: both).")
@click.option("--as", "actor", envvar="MONITOR_USER", metavar="NAME",
              help="Who you are, kept with the model (default: $MONITOR_USER, else your OS "
                   "user name).")
@config_option
@errors_to_exit_codes
def learn(dry_run: bool, undo: bool, signals: tuple[str, ...], actor: str | None,
          config_path: Path) -> None:
    """Teach the complaint and anger models the team's verdicts (dismissed as not a complaint,
    spam or off topic; confirmed; severity changed; flagged by hand), installing the refit
    model only when it is not worse on the shipped dev set nor on the team's held-out labels."""
    from monitor import learn as learning

    if undo and dry_run:
        raise click.UsageError("give --undo or --dry-run, not both")
    with opened(config_path) as (_config, store):
        if undo:
            for signal, code, done in learning.undo(store, signals):
                click.echo(f"{signal} {code}: " + (
                    "the shipped model is in use already" if done is None else
                    f"model {done[0]} undone; now "
                    + (f"model {done[1]}" if done[1] is not None else "the shipped model")))
            return
        if not store.team_labels():
            click.echo("no labels yet: confirm, dismiss (\"not a complaint\", \"spam\", "
                       "\"off topic\"), change a severity or `monitor queue flag` posts first")
            return
        report = learning.learn(store, datetime.now(UTC), actor or getpass.getuser(),
                                signals=signals, dry_run=dry_run)
    _print(report)
    if report.refused:
        raise SystemExit(1)


def _print(report: LearnReport) -> None:
    """One block per signal and language: the figures before and after, and the outcome."""
    for r in report.rounds:
        head = f"{r.signal} {r.language}: {r.labels} labels ({r.positive} positive)"
        if not r.before:
            click.echo(f"{head}: nothing to learn")
            continue
        click.echo(f"{head}, team label weight {r.weight:g}")
        click.echo(f"  {'measured on':<24} {'P before':>9} {'P after':>9} {'R before':>9} "
                   f"{'R after':>9}")
        for key, name in (("dev", "shipped dev set"), ("team", "team labels, held out")):
            b, a = r.before[key], r.after[key]
            click.echo(f"  {name:<24} {b.precision:>9.3f} {a.precision:>9.3f} "
                       f"{b.recall:>9.3f} {a.recall:>9.3f}")
        click.echo("  " + {"installed": f"installed as model {r.model_id}",
                           "refused": "refused: worse than the model in use (nothing changed)",
                           "dry run": "not installed (--dry-run)"}[r.outcome])
