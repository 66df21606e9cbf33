"""``monitor people``: the authors cases are about, as persons. One person may write under
several names (``reddit:marta_k`` and ``discourse:marta``); staff say so with ``link``, and the
follow-up of answered cases (``monitor.followup``) then reads their posts under every name.

Exit codes: 0 done, 1 nothing to do (fewer than two names to link) or the store failed, 2 bad
usage (a name not written SOURCE:AUTHOR).
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import click

from monitor.cli.kit import checked_name, config_option, errors_to_exit_codes, opened
from monitor.errors import MonitorError
from monitor.quoting import for_terminal


def _name(value: str) -> tuple[str, str]:
    """``SOURCE:AUTHOR`` -> (source, author); the author may hold colons, the source not."""
    source, colon, author = value.partition(":")
    if not (colon and source.strip() and author.strip()):
        raise click.UsageError(f"{value!r} is not SOURCE:AUTHOR (like reddit:marta_k)")
    return source.strip(), author.strip()


@click.group("people")
def people() -> None:
    """The people cases are about: link the names one person writes under, see their cases
    and whether our answers won them back."""


@people.command()
@click.argument("names", nargs=-1, required=True, metavar="SOURCE:AUTHOR...")
@click.option("--as", "actor", envvar="MONITOR_USER", metavar="NAME",
              help="Who you are (default: $MONITOR_USER, else your OS user name).")
@config_option
@errors_to_exit_codes
def link(names: tuple[str, ...], actor: str | None, config_path: Path) -> None:
    """Say that these names are one person (the first name names them): their posts under
    every name count in the follow-up of their answered cases."""
    parsed = [_name(n) for n in names]
    me = checked_name(actor or getpass.getuser(), "'--as' / $MONITOR_USER")
    if len(set(parsed)) < 2:  # well written, but nothing to do: exit 1, as a refused command
        raise MonitorError("nothing to link: give at least two different names")
    with opened(config_path) as (_config, store):
        person = store.link(parsed, me, datetime.now(UTC))
    click.echo(f"{person}: {', '.join(f'{s}:{a}' for s, a in parsed)}")


@people.command()
@click.argument("who", metavar="SOURCE:AUTHOR")
@config_option
@errors_to_exit_codes
def show(who: str, config_path: Path) -> None:
    """A person: their names, their cases, and how each answered case ended."""
    source, author = _name(who)
    with opened(config_path) as (config, store):
        person, names, found = store.person(source, author)
    zone = config.timezone
    click.echo(for_terminal(f"person {person}"))  # names come from the posts
    click.echo(for_terminal("names: " + ", ".join(f"{s}:{a}" for s, a in names)))
    if not found:
        click.echo("no cases")
    for case in found:
        answered = case["first_response_at"]
        click.echo(for_terminal(
            f"  case {case['id']}  {case['severity']}  {case['state']}  "
            f"{case['category'] or '-'}  opened "
            f"{case['opened_at'].astimezone(zone):%Y-%m-%d %H:%M %Z} by "
            f"{case['source']}:{case['author']}  "
            + (f"answered {answered.astimezone(zone):%Y-%m-%d}: "
               f"{case['outcome'] or 'too early to say'}" if answered else "not answered")))
