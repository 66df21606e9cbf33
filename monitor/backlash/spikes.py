"""Storms: periods with far more (negative) posts than usual, found by a robust z-score.

Each period is judged against the ``window`` periods before it (never itself), on the
square-root scale ``y = 2 * sqrt(count + 3/8)`` (Anscombe's). There Poisson noise is about 1
at every rate, so one threshold means the same at 0.3 and at 50 posts an hour; and clumpy
noise (replies to one thread arrive together), whose tail is long in counts, is not in square
roots.

* centre: the median ``y`` of the same time of day, and the periods either side of it, on
  each day of the window (``season`` periods a day: 24 for hours; with ``season=1``, of the
  whole window). People post by day, so 20 posts at 4 a.m. and at 3 p.m. are not the same
  news: a window-wide median would hide a storm behind the day's own rhythm.
* noise: the larger of two robust spreads (1.4826 * a median absolute deviation): of the
  values compared about their median (a trend widens it), and of each period's difference
  from the same time a day earlier, / sqrt 2 (clumpiness that 20 values may not show). At
  least 1, the Poisson noise, so neither a flat nor an all-zero history turns one or two
  posts into a storm; times ``sqrt(1 + pi / 2m)``, the error of a median of ``m`` values.
* ``z = (y - centre) / noise``. A storm starts at ``z >= threshold`` with at least
  ``min_count`` posts and goes on while ``z >= stay``: it is over when its periods are nearly
  ordinary again, not as soon as one falls below the bar that started it, and only after
  more than ``gap`` of them in a row, so one quiet hour inside a storm does not end it (and
  page again when it flares up). No period is judged before ``min_periods`` of history exist.

Why a robust z-score and not a change-point method (CUSUM, PELT, Bayesian online): it is cheap,
it is online (the newest period is judged from what came before it alone, so more data never
changes an earlier verdict and a storm's ``start`` is a stable key to page once by), and it
explains itself in one line to the person it wakes: "42 negative posts in the hour to 14:00,
typical 3 at that hour". Change-point methods place level shifts after the fact and need a
cost or a prior tuned per series; we want a page within the hour, not a segmentation.

Storm periods stay in the history of later periods, neither dropped nor clipped: a median
gives each value one rank whatever its size, so a storm moves the centre and the noise only as
far as the share of their values it fills. It becomes its own baseline only once it fills half
the values compared (4 days with ``HOURLY``), which is also what ends a lasting rise to a new
normal; dropping storm periods instead would keep paging about it for ever.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, tzinfo

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pandas.tseries.frequencies import to_offset

MAD_TO_SD = 1.4826  # the MAD of a normal distribution times this is its standard deviation
_ROWS = 4096  # periods judged per numpy block: bounds memory to _ROWS * window floats


@dataclass(frozen=True)
class Settings:
    """How to cut and judge a series; ``HOURLY`` and ``DAILY`` are the measured defaults."""

    freq: str  # pandas frequency of a period: "h", "D", "15min"
    window: int  # periods of history judged against (a multiple of season)
    min_periods: int  # no verdict with less history than this
    season: int = 1  # periods in a day, for a baseline by time of day; 1: none
    threshold: float = 4.5  # z at which a storm starts
    stay: float = 2.0  # z at which a running storm goes on
    min_count: int = 10  # fewest posts in the period a storm starts in
    gap: int = 6  # ordinary periods in a row a storm may pause for and go on

    def find(self, counts: pd.Series) -> list[Spike]:
        """``find_spikes`` with these settings (``counts`` cut at ``freq``)."""
        return find_spikes(counts, window=self.window, min_periods=self.min_periods,
                           season=self.season, threshold=self.threshold, stay=self.stay,
                           min_count=self.min_count, gap=self.gap)


HOURLY = Settings("h", window=168, min_periods=48, season=24, threshold=4.5, stay=2.0,
                  min_count=10, gap=6)
"""A week of hours, by hour of the day, judging once two days are known. bench/spikes.py
measures the false alarms and the misses these give."""

DAILY = Settings("D", window=28, min_periods=7, season=1, threshold=4.0, stay=2.0,
                 min_count=10, gap=1)
"""Four weeks of days, judging once a week is known: catches a slower, sustained rise that no
single hour shows. A day is judged 24 times less often than an hour, so its bar is lower."""


@dataclass(frozen=True)
class Spike:
    """One storm: stormy periods, with pauses of at most ``gap`` periods between them."""

    start: datetime  # start of its first period (in the index's time zone)
    end: datetime  # end of its last period
    peak_at: datetime  # start of the period with the most posts (the first, on a tie)
    count: int  # posts in the peak period
    total: int  # posts over the whole storm
    baseline: float  # the typical count of its first period (the median of those compared)
    score: float  # the peak period's z
    freq: str = "h"  # the period length, for describe()
    season: int = 1  # as judged: > 1 means baseline is for that time of day

    def describe(self, what: str = "negative posts", zone: tzinfo | None = None) -> str:
        """One line for a person: "Mon 2 Nov 2026 (UTC): 42 negative posts in the hour to
        14:00, typical 3 at that hour (z 8.1)"; a longer storm adds its span and peak.

        ``zone`` (the configured one) shows the clock times there and names it: storms are
        counted in UTC hours, but whoever is woken reads their own clock. Periods of a day or
        longer stay in the zone they were cut in (a UTC day is not a local one)."""
        unit = _unit(self.freq)
        shown, name = self, None
        if zone is not None and _within_a_day(self.freq):
            shown = replace(self, start=self.start.astimezone(zone),
                            end=self.end.astimezone(zone), peak_at=self.peak_at.astimezone(zone))
            name = getattr(zone, "key", None)  # "Europe/Berlin" rather than "CET"
        day = shown.start
        head = f"{_day(day)} {day.year} ({name or f'{day:%Z}'})"
        per = f"at that {unit}" if self.season > 1 else f"{'an' if unit == 'hour' else 'a'} {unit}"
        typical = f"typical {self.baseline:.3g} {per} (z {self.score:.1f})"
        periods = len(pd.date_range(self.start, self.end, freq=self.freq, inclusive="left"))
        if unit == "day":
            if periods == 1:
                return f"{head}: {self.count} {what} in the day, {typical}"
            last = _day(self.end - timedelta(microseconds=1))
            return f"{head}: {self.total} {what} in {periods} days to {last}, peak " \
                   f"{self.count} on {_day(self.peak_at)}, {typical}"
        peak_end = _period_end(self.freq, self.peak_at)  # counted where it was cut
        if zone is not None and shown is not self:
            peak_end = peak_end.astimezone(zone)
        peak = f"in the {unit} to {_clock(peak_end, day)}"
        if periods == 1:
            return f"{head}: {self.count} {what} {peak}, {typical}"
        return f"{head}: {self.total} {what} in {periods} {unit}s from {_clock(shown.start, day)}" \
               f" to {_clock(shown.end, day)}, peak {self.count} {peak}, {typical}"


def counts_per_period(times: Sequence[datetime] | pd.Series, freq: str, start: datetime,
                      end: datetime, *, keys: Sequence[object] | None = None) -> pd.Series:
    """Posts per period from ``start`` on, every period present (an empty one is 0).

    Periods are ``start``, ``start + freq``, ... up to ``end``, in ``start``'s time zone (so
    ``"D"`` periods are calendar days there, 23 or 25 hours long at a DST change); a last
    period cut short by ``end`` counts only up to it. Times outside ``[start, end)`` are
    ignored. Every time and both bounds must be timezone-aware: a naive one is ambiguous.
    With ``keys`` (one per time, e.g. the authors) a period counts each key once, so one
    person replying twelve times in an hour is one voice, not a storm.
    """
    for name, bound in (("start", start), ("end", end)):
        if bound.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware, got {bound!r}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    # in start's zone: pandas refuses bounds in two zones (a report cut in the configured zone
    # up to a UTC now)
    index = pd.date_range(start, end.astimezone(start.tzinfo), freq=freq, inclusive="left",
                          name="period")
    stamps = _utc_ns(times)
    if keys is not None and len(keys) != len(stamps):
        raise ValueError(f"{len(keys)} keys for {len(stamps)} times")
    inside = (stamps >= _ns(start)) & (stamps < _ns(end))
    edges = np.append(index.as_unit("ns").asi8, _ns(end))
    periods = np.searchsorted(edges, stamps[inside], side="right") - 1
    if keys is not None:
        pairs = pd.DataFrame({"period": periods, "key": np.asarray(keys, dtype=object)[inside]})
        periods = pairs.drop_duplicates()["period"].to_numpy()
    counts = np.bincount(periods, minlength=len(index))[: len(index)]
    return pd.Series(counts.astype(np.int64), index=index, name="posts")


def scores(counts: pd.Series, *, window: int, min_periods: int, season: int = 1) -> pd.DataFrame:
    """Each period's ``count``, ``baseline`` (the median count it is compared with), ``noise``
    and ``z`` (both on the square-root scale), as the module docstring says.

    All but ``count`` are NaN while fewer than ``min_periods`` periods came before. The frame a
    chart of the baseline can be drawn from.
    """
    if not 1 <= min_periods <= window:
        raise ValueError(f"need 1 <= min_periods <= window, got {min_periods} and {window}")
    if season < 1 or window % season or (season > 1 and window < 2 * season):
        raise ValueError(f"window ({window}) must be a multiple of season ({season}), "
                         "and at least two of them")
    values = counts.to_numpy(dtype=float)
    if np.isnan(values).any() or (values < 0).any():
        raise ValueError("counts must be >= 0 with no period missing (see counts_per_period)")
    roots = 2 * np.sqrt(values + 3 / 8)
    lags = (range(1, window + 1) if season == 1 else
            [k * season + shift for k in range(1, window // season + 1) for shift in (-1, 0, 1)
             if k * season + shift <= window])
    columns = [window - lag for lag in lags]  # a history row holds lags window .. 1
    baseline, centre, spread, scatter, compared, known = (
        np.full(len(values), np.nan) for _ in range(6))
    for first in range(0, len(values), _ROWS):  # in blocks: a long series at a fine freq
        rows = slice(first, first + _ROWS)
        history = _history(roots, window, rows)
        known[rows] = np.sum(~np.isnan(history), axis=1)
        compared[rows] = np.sum(~np.isnan(history[:, columns]), axis=1)
        centre[rows] = _nan_median(history[:, columns])
        scatter[rows] = _nan_median(np.abs(history[:, columns] - centre[rows, None]))
        baseline[rows] = _nan_median(_history(values, window, rows)[:, columns])
        spread[rows] = _nan_median(np.abs(history[:, season:] - history[:, :-season]))
    noise = np.fmax(MAD_TO_SD * np.fmax(spread / math.sqrt(2), scatter), 1.0) * np.sqrt(
        1 + math.pi / (2 * np.fmax(compared, 1)))
    unjudged = (known < min_periods) | np.isnan(centre)
    for column in (baseline, noise, centre):
        column[unjudged] = np.nan
    return pd.DataFrame({"count": counts.to_numpy(), "baseline": baseline, "noise": noise,
                         "z": (roots - centre) / noise}, index=counts.index)


def find_spikes(counts: pd.Series, *, window: int, min_periods: int, season: int = 1,
                threshold: float = 4.5, stay: float = 2.0, min_count: int = 10,
                gap: int = 6) -> list[Spike]:
    """The storms in ``counts`` (a regular series, as from ``counts_per_period``), in order.

    A storm starts at ``z >= threshold`` with ``count >= min_count`` and goes on through
    every period with ``z >= stay`` that follows its last one within ``gap`` + 1 periods.
    """
    if stay > threshold:
        raise ValueError(f"stay ({stay}) must not be above threshold ({threshold})")
    freq = _freq_of(counts)
    judged = scores(counts, window=window, min_periods=min_periods, season=season)
    z = judged["z"].to_numpy()
    values = judged["count"].to_numpy()
    runs: list[list[int]] = []  # [first, last] stormy period of each storm
    for i in range(len(z)):  # NaN compares False: an unjudged period neither starts nor stays
        if runs and i - runs[-1][1] <= gap + 1 and z[i] >= stay:
            runs[-1][1] = i  # going on, perhaps after a pause of at most gap periods
        elif z[i] >= threshold and values[i] >= min_count:
            runs.append([i, i])
    return [_spike(counts.index, judged, first, last, freq, season) for first, last in runs]


def detect(times: Sequence[datetime] | pd.Series, start: datetime, end: datetime,
           settings: Settings = HOURLY) -> list[Spike]:
    """``counts_per_period`` then ``find_spikes``, with one of the ``Settings``."""
    return settings.find(counts_per_period(times, settings.freq, start, end))


def _spike(index: pd.DatetimeIndex, judged: pd.DataFrame, first: int, last: int, freq: str,
           season: int) -> Spike:
    run = judged.iloc[first: last + 1]
    peak = first + int(np.argmax(run["count"].to_numpy()))
    return Spike(start=index[first].to_pydatetime(),
                 end=_period_end(freq, index[last].to_pydatetime()),
                 peak_at=index[peak].to_pydatetime(), count=int(judged["count"].iloc[peak]),
                 total=int(run["count"].sum()), baseline=float(judged["baseline"].iloc[first]),
                 score=float(judged["z"].iloc[peak]), freq=freq, season=season)


def _freq_of(counts: pd.Series) -> str:
    index = counts.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError("counts needs a DatetimeIndex (use counts_per_period)")
    if index.freq is not None:
        return index.freqstr
    with warnings.catch_warnings():  # pandas 3 warns that it will return an offset one day
        warnings.simplefilter("ignore", DeprecationWarning)
        inferred = pd.infer_freq(index) if len(index) >= 3 else None
    if inferred is None:
        raise ValueError("counts needs a regular index with a frequency (use counts_per_period)")
    return to_offset(inferred).freqstr


def _utc_ns(times: Sequence[datetime] | pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch, refusing naive times."""
    stamps = times if isinstance(times, pd.Series) else pd.Series(list(times), dtype=object)
    if len(stamps) == 0:
        return np.empty(0, np.int64)
    if stamps.dtype == object:
        if any(getattr(t, "tzinfo", None) is None for t in stamps):
            raise ValueError("every time must be timezone-aware")
        stamps = pd.to_datetime(stamps, utc=True)
    elif getattr(stamps.dtype, "tz", None) is None:
        raise ValueError("every time must be timezone-aware")
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


def _ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).as_unit("ns").value)


def _history(values: np.ndarray, width: int, rows: slice) -> np.ndarray:
    """For each period in ``rows``, the ``width`` values before it (NaN before the first)."""
    padded = np.concatenate([np.full(width, np.nan), values])
    return sliding_window_view(padded[:-1], width)[rows]


def _nan_median(rows: np.ndarray) -> np.ndarray:
    """Median of each row's non-NaN values (NaN for a row of none)."""
    known = np.sum(~np.isnan(rows), axis=1)
    ordered = np.sort(rows, axis=1)  # NaN sorts last
    low = np.take_along_axis(ordered, np.maximum(known - 1, 0)[:, None] // 2, axis=1)[:, 0]
    high = np.take_along_axis(ordered, known[:, None] // 2, axis=1)[:, 0]
    middle = (low + high) / 2
    middle[known == 0] = np.nan
    return middle


def _period_end(freq: str, at: datetime) -> datetime:
    """The end of the period starting ``at``, the next calendar day for "D" across a DST change
    too (an aware ``datetime + timedelta`` counts wall-clock time)."""
    return pd.date_range(at, periods=2, freq=freq)[1].to_pydatetime()


def _unit(freq: str) -> str:
    offset = to_offset(freq)
    code = offset.rule_code.split("-")[0]  # "W-SUN" -> "W"
    names = {"h": "hour", "H": "hour", "D": "day", "min": "minute", "T": "minute", "W": "week"}
    base = names.get(code, code)
    return base if offset.n == 1 else f"{offset.n}-{base} period"


def _within_a_day(freq: str) -> bool:
    """Whether a period is shorter than a day (a week has no fixed length: no)."""
    try:
        return pd.Timedelta(to_offset(freq)) < pd.Timedelta(days=1)
    except ValueError:
        return False


def _day(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b}"  # "Mon 2 Nov": the weekday helps at 3 a.m.


def _clock(moment: datetime, day: datetime) -> str:
    """``14:00`` on ``day``, ``24:00`` for the midnight ending it, else with its own date."""
    if moment.date() == day.date():
        return f"{moment:%H:%M}"
    if moment.date() == day.date() + timedelta(days=1) and moment.time() == time():
        return "24:00"
    return f"{_day(moment)} {moment:%H:%M}"
