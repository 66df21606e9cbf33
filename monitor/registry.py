"""Source kinds -> collector classes, found through the ``monitor.collectors`` entry points.

Our own collectors register exactly like a user's plugin does (see pyproject.toml), so a
plugin needs no change to our code.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from monitor.errors import ConfigError

GROUP = "monitor.collectors"


@cache
def collector_kinds() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def collector_class(kind: str) -> type:
    """The collector class for ``kind``; ConfigError names the kinds that do exist."""
    found = collector_kinds().get(kind)
    if found is None:
        known = ", ".join(sorted(collector_kinds())) or "none installed"
        raise ConfigError(f"unknown kind {kind!r} (known: {known})")
    try:
        return found.load()  # type: ignore[attr-defined]
    except Exception as error:  # a broken plugin must not take the others down
        raise ConfigError(f"kind {kind!r} could not be loaded ({error})") from error
