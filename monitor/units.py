"""Value types that config.py and every collector's Options share: durations, time zones.

Kept apart from config.py because config imports the collector registry; collectors import
these without a cycle.
"""

from __future__ import annotations

import math
import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
LONGEST = 365_000 * DAY
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


def spoken(seconds: float) -> str:
    """``seconds`` as config is written: ``30d``, ``1h``, ``90s``."""
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def between(low: float, high: float, *, above: bool = False) -> AfterValidator:
    """A bound on a Duration, said in its units: from ``low`` (more than it if ``above``) to
    ``high``. Zero or a huge value where neither makes sense would spin or never happen."""
    def check(seconds: float) -> float:
        if (seconds > low if above else seconds >= low) and seconds <= high:
            return seconds
        start = f"more than {spoken(low)}" if above else f"at least {spoken(low)}"
        raise ValueError(f"must be {start} and at most {spoken(high)}")
    return AfterValidator(check)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds (0 to 1000 years), written in config as 90, "30s", "15m", "2h" or "7d"."""

Interval = Annotated[Duration, between(1, 30 * DAY)]
"""How often a source is polled: 0 would poll without pause, a month is the longest wait."""

Span = Annotated[Duration, between(0, 365 * DAY, above=True)]
"""How long until something counts (quiet, stalled, overdue): more than 0, at most a year."""

Timeout = Annotated[Duration, between(0, HOUR, above=True)]
"""How long to wait for a server: more than 0 (and finite), at most an hour."""

Pause = Annotated[Duration, between(0, HOUR)]
"""A wait between retries: 0 to an hour."""

MAX_BYTES = 16 * 1024 ** 2
"""The largest HTTP response ``http.max_bytes`` may allow: 16 MiB. Parsing costs up to about
13 bytes of memory per byte of feed, and the daemon stays under 500 MB (bench/memory.py)."""


def _at_most_gib(size: int) -> int:
    if size > MAX_BYTES:
        raise ValueError(f"must be at most {MAX_BYTES} bytes (16 MiB)")
    return size


Size = Annotated[int, Field(ge=1), AfterValidator(_at_most_gib)]
"""A size in bytes: at least 1, at most 16 MiB."""

TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, checked when the config is loaded."""
