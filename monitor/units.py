"""Value types that config.py and every collector's Options share: durations, time zones.

Kept apart from config.py because config imports the collector registry; collectors import
these without a cycle.
"""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 2h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use e.g. UTC, Europe/Berlin)") from None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in config as 90, "30s", "15m", "2h" or "7d"."""

TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, checked when the config is loaded."""
