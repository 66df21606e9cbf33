"""Kinds -> classes: source kinds (``kind: rss``) and receiver types (``type: slack``).

Our own kinds are listed here, as ``"module:Class"``, so a checkout that was never installed
knows them too (pyproject.toml registers the same targets as entry points, which changes
nothing). Other packages add kinds through the entry point groups ``monitor.collectors`` and
``monitor.receivers``, so a plugin needs no change to our code.

A plugin cannot take a name that is already taken: the built-in keeps it (and between two
plugins, the first found), and the plugin is ignored with a warning naming it. So what
``kind: rss`` means never depends on what else happens to be installed.

``options_table`` turns a kind's ``Options`` model into the README's table of its keys (and
``monitor kinds`` into text), so the documentation is read from the models themselves.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from monitor.errors import ConfigError
from monitor.units import parse_duration

log = logging.getLogger(__name__)

GROUP = "monitor.collectors"
RECEIVER_GROUP = "monitor.receivers"

BUILTIN: dict[str, dict[str, str]] = {
    GROUP: {
        "rss": "monitor.collectors.rss:RssCollector",
        "reddit": "monitor.collectors.reddit:RedditCollector",
        "discourse": "monitor.collectors.discourse:DiscourseCollector",
        "forum": "monitor.collectors.forum:ForumCollector",
        "hackernews": "monitor.collectors.hackernews:HackerNewsCollector",
    },
    RECEIVER_GROUP: {
        "slack": "monitor.receivers.slack:SlackReceiver",
        "email": "monitor.receivers.email:EmailReceiver",
        "webhook": "monitor.receivers.webhook:WebhookReceiver",
        "file": "monitor.receivers.file:FileReceiver",
    },
}


@cache
def kinds(group: str) -> dict[str, str]:
    """Every kind of ``group`` -> its ``"module:Class"``: the built-ins, then the plugins
    (each name once; see the module docstring for clashes). Do not change the result."""
    from importlib.metadata import entry_points  # slow to import: only when asked

    found = dict(BUILTIN[group])
    for entry in entry_points(group=group):
        taken = found.get(entry.name)
        if taken is None:
            found[entry.name] = entry.value
        elif taken != entry.value:
            owner = "built in" if entry.name in BUILTIN[group] else "registered"
            dist = f" (from {entry.dist.name})" if entry.dist else ""
            log.warning("%s %r: already %s as %s; ignoring %s%s", group, entry.name, owner,
                        taken, entry.value, dist)
    return found


def collector_class(kind: str) -> type:
    """The collector class for ``kind``; ConfigError names the kinds that do exist."""
    return _load(GROUP, kind, "kind")


def receiver_class(kind: str) -> type:
    """The receiver class for ``type: kind``; ConfigError names the types that do exist."""
    return _load(RECEIVER_GROUP, kind, "type")


def _load(group: str, kind: str, word: str) -> type:
    target = kinds(group).get(kind)
    if target is None:
        known = ", ".join(sorted(kinds(group))) or "none installed"
        raise ConfigError(f"unknown {word} {kind!r} (known: {known})")
    module, _, attribute = target.partition(":")
    try:
        found: Any = importlib.import_module(module.strip())
        for part in attribute.strip().split("."):
            found = getattr(found, part)
    except Exception as error:  # a broken plugin must not take the others down
        raise ConfigError(f"{word} {kind!r} could not be loaded ({error})") from error
    return found  # type: ignore[no-any-return]


class Option(NamedTuple):
    """One key of a kind's options, as documentation shows it."""

    name: str
    type: str
    default: str
    description: str


def options_of(model: type, prefix: str = "") -> list[Option]:
    """The keys of a pydantic ``Options`` model, in declaration order; a key whose value is a
    model of its own (forum ``selectors``) is followed by its keys (``selectors.post``)."""
    rows: list[Option] = []
    for name, field in getattr(model, "model_fields", {}).items():
        nested = _model(field.annotation)
        kind = _type(field.annotation, field.metadata)
        limits = _limits(field.metadata)
        rows.append(Option(prefix + name, f"{kind} ({limits})" if limits else kind,
                           "–" if nested else _default(field, kind == "duration"),
                           " ".join((field.description or "").split())))
        if nested:
            rows += options_of(nested, f"{prefix}{name}.")
    return rows


def options_table(model: type) -> str:
    """``options_of`` as a markdown table (the README's tables are these, checked by a test)."""
    lines = ["| option | type | default | description |", "|---|---|---|---|"]
    for row in options_of(model):
        default = row.default if row.default in _WORDS else f"`{row.default}`"
        cells = (f"`{row.name}`", row.type, default, row.description)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


_WORDS = ("required", "none", "–")  # defaults that are not values to write
_NAMES = {bool: "bool", int: "int", float: "number", str: "string"}
_OTHER_NAMES = {"HttpUrl": "URL", "SecretStr": "secret", "Path": "path", "PosixPath": "path"}


def _type(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A type as a person writes the value: ``string``, ``list of string``, ``a | b``."""
    if any(getattr(m, "func", None) is parse_duration for m in metadata):
        return "duration"  # units.Duration: 90, 30s, 15m, 2h or 7d
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0], annotation.__metadata__)
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict or _model(annotation):
        return "mapping"
    if origin in (Union, UnionType):  # X | None: None is the default, not a value to write
        return " or ".join(_type(a) for a in args if a is not type(None))
    if annotation in _NAMES:
        return _NAMES[annotation]
    name = getattr(annotation, "__name__", str(annotation))
    return _OTHER_NAMES.get(name, name)


def _model(annotation: Any) -> type | None:
    return annotation if isinstance(annotation, type) and hasattr(annotation,
                                                                  "model_fields") else None


def _limits(metadata: list[Any]) -> str:
    """``1–1000`` from ge/le, else each bound on its own (``> 0``, ``≤ 300``)."""
    bounds = {key: getattr(m, key) for m in metadata for key in ("ge", "gt", "le", "lt")
              if getattr(m, key, None) is not None}
    if "ge" in bounds and "le" in bounds:
        return f"{bounds['ge']:g}–{bounds['le']:g}"
    signs = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
    return ", ".join(f"{signs[key]} {value:g}" for key, value in bounds.items())


def _default(field: Any, duration: bool) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if duration:
        return _duration(float(value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return str(value).replace("'", "")
    return str(value)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s" if seconds == int(seconds) else f"{seconds}s"
