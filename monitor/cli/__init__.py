"""The ``monitor`` command: parse arguments, call one function, map errors to exit codes.

Exit codes: 0 all well, 1 some sources (or the store) failed, 2 bad configuration or usage.
Each family of commands lives in its own module, imported only when one of its commands is run
or listed in --help, so a quick command (``monitor score``) does not pay for the others.
"""

from __future__ import annotations

import logging

import click

from monitor import logs
from monitor.cli.kit import LazyGroup

COMMANDS = {
    "run": "monitor.cli.passes:run",
    "daemon": "monitor.cli.passes:daemon",
    "status": "monitor.cli.passes:status",
    "check": "monitor.cli.setup:check",
    "init": "monitor.cli.setup:init",
    "demo": "monitor.cli.passes:demo",
    "score": "monitor.cli.scoring:score",
    "rules": "monitor.cli.scoring:rules_group",
    "rescore": "monitor.cli.scoring:rescore",
    "silence": "monitor.cli.outbox:silence",
    "deliveries": "monitor.cli.outbox:deliveries",
    "digest": "monitor.cli.reports:digest",
    "backlash": "monitor.cli.reports:backlash",
    "export": "monitor.cli.reports:export",
    "import": "monitor.cli.history:import_command",
    "themes": "monitor.cli.themes:themes",
    "queue": "monitor.cli.queue:queue",
    "people": "monitor.cli.people:people",
    "learn": "monitor.cli.learn:learn",
    "kinds": "monitor.cli.kinds:kinds_command",
    "users": "monitor.cli.users:users",
    "web": "monitor.cli.web:web",
    "prune": "monitor.cli.prune:prune",
}


@click.group(cls=LazyGroup, lazy=COMMANDS,
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
