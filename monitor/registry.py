"""Plugin kinds -> classes, found through entry points: ``monitor.collectors`` (source kinds)
and ``monitor.receivers`` (receiver types).

Our own collectors and receivers register exactly like a user's plugin does (see
pyproject.toml), so a plugin needs no change to our code.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from monitor.errors import ConfigError

GROUP = "monitor.collectors"
RECEIVER_GROUP = "monitor.receivers"


@cache
def kinds(group: str) -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=group)}


def collector_kinds() -> dict[str, object]:
    return kinds(GROUP)


def collector_class(kind: str) -> type:
    """The collector class for ``kind``; ConfigError names the kinds that do exist."""
    return _load(GROUP, kind, "kind")


def receiver_class(kind: str) -> type:
    """The receiver class for ``type: kind``; ConfigError names the types that do exist."""
    return _load(RECEIVER_GROUP, kind, "type")


def _load(group: str, kind: str, word: str) -> type:
    found = kinds(group).get(kind)
    if found is None:
        known = ", ".join(sorted(kinds(group))) or "none installed"
        raise ConfigError(f"unknown {word} {kind!r} (known: {known})")
    try:
        return found.load()  # type: ignore[attr-defined]
    except Exception as error:  # a broken plugin must not take the others down
        raise ConfigError(f"{word} {kind!r} could not be loaded ({error})") from error
