"""Value types that config.py and every collector's Options share: durations, time zones.

Kept apart from config.py because config imports the collector registry; collectors import
these without a cycle.
"""

from __future__ import annotations

import math
import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LONGEST = 365_000 * 86400.0
"""1000 years in seconds: longer is a mistake, and now ± any duration stays a valid datetime."""


def parse_duration(value: str | int | float) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` -> seconds, from 0 to LONGEST.

    Anything else is a ValueError, a config mistake to report: a negative, endless or huge
    number too, which would otherwise crash later (``timedelta``, a date out of range)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 <= value <= LONGEST:  # NaN fails it; a huge int is compared without overflow
            return float(value)
        raise ValueError("not a duration: a number of seconds is from 0 to 1000 years")
    match = _DURATION.match(str(value))
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    if not seconds <= LONGEST:  # NaN: no match
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 2h, 7d; at most "
                         "1000 years)")
    return seconds


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ValueError(f"unknown time zone {value!r} (use e.g. UTC, Europe/Berlin)") from None
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds (0 to 1000 years), written in config as 90, "30s", "15m", "2h" or "7d"."""

TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, checked when the config is loaded."""
