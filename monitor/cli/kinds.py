"""``monitor kinds``: the source kinds, receiver types and rule conditions this install knows.

Everything shown is read from the code (the registry, each kind's ``Options`` model, the rules'
condition table), plugins included, so the list is what a config may say right now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click

from monitor.conditions import CONDITIONS
from monitor.errors import ConfigError
from monitor.registry import (
    BUILTIN,
    GROUP,
    RECEIVER_GROUP,
    collector_class,
    kinds,
    options_of,
    receiver_class,
)

SECTIONS: tuple[tuple[str, str, Callable[[str], type]], ...] = (
    ("Source kinds (sources/*.yaml: kind: NAME)", GROUP, collector_class),
    ("Receiver types (config.yaml receivers: type: NAME)", RECEIVER_GROUP, receiver_class),
)


@click.command("kinds")
@click.argument("names", nargs=-1)
def kinds_command(names: tuple[str, ...]) -> None:
    """List source kinds, receiver types and rule conditions, with their options.

    Each option shows its type, its default and what it does. Give NAMES to see only those
    kinds, types or conditions.
    """
    known = {*CONDITIONS, *(name for _, group, _ in SECTIONS for name in kinds(group))}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.UsageError(f"unknown kind {', '.join(map(repr, unknown))} (known: "
                               f"{', '.join(sorted(known))})")
    click.echo(describe(names))


def describe(names: Sequence[str] = ()) -> str:
    """The listing as plain text; only ``names`` when some are given."""
    wanted = set(names)
    blocks: list[str] = []
    for title, group, load in SECTIONS:
        shown = [n for n in sorted(kinds(group)) if not wanted or n in wanted]
        if shown:
            blocks.append("\n\n".join([title, *(_kind(group, n, load) for n in shown)]))
    conditions = [(n, c) for n, c in CONDITIONS.items() if not wanted or n in wanted]
    if conditions:
        width = max(len(c.example) for _, c in conditions)
        blocks.append("\n".join(["Rule conditions (rules/*.yaml: when:)", *(
            f"  {c.example:<{width}}  {_plain(c.help)}" for _, c in conditions)]))
    return "\n\n".join(blocks)


def _kind(group: str, name: str, load: Callable[[str], type]) -> str:
    origin = "built in" if name in BUILTIN[group] else "plugin"
    head = f"  {name}  ({origin}: {kinds(group)[name]})"
    try:
        rows = options_of(load(name).Options)  # type: ignore[attr-defined]
    except (ConfigError, AttributeError) as error:  # a broken plugin is shown, not fatal
        message = error.message if isinstance(error, ConfigError) else f"no Options ({error})"
        return f"{head}\n    {message}"
    if not rows:
        return f"{head}\n    (no options)"
    widths = [max(len(getattr(r, column)) for r in rows) for column in ("name", "type",
                                                                         "default")]
    lines = [f"    {r.name:<{widths[0]}}  {r.type:<{widths[1]}}  {r.default:<{widths[2]}}  "
             f"{_plain(r.description)}".rstrip() for r in rows]
    return "\n".join([head, *lines])


def _plain(text: str) -> str:
    """A description as plain text: the README's code marks dropped."""
    return text.replace("`", "")
