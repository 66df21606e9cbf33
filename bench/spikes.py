"""Storm detection (monitor/backlash/spikes.py): false alarms on noise, recall and delay on storms.

    python bench/spikes.py [--seeds 200] [--threshold 4.5 --stay 2 --min-count 10 --gap 6]
                           [--daily-threshold 4 --daily-min-count 10]

Defaults: ``HOURLY`` and ``DAILY``; the options try other settings on the same series.

1. False alarms, hourly: ``--seeds`` series of 4 weeks of hourly counts with no storm in them,
   per kind of noise: Poisson at 0.3, 5 and 50 posts an hour; Poisson at 5 an hour with a
   daily rhythm (x0.2 at 03:00 to x1.8 at 15:00) and weekends at 70%; clumpy noise (negative
   binomial, variance 3x the mean, as replies to one thread come together) at 0.3 and 5 an
   hour, and with the rhythm; and a steady rise (after a flat week) to 3x and 4x in 3 weeks.
   Printed: the hours judged, the series with at least one storm (the false-alarm rate per 4
   weeks), and storms per judged week.
2. False alarms, daily: a year of days at 3 a day and at 120 a day with weekends at 70%
   (Poisson, and clumpy with variance 3x and 10x), and a steady rise of 1% a day for 4 months
   and of 3% a day for 2 months.
3. Storms: the noise above with a storm planted at a random period in the second half (not
   the last 2 weeks' worth): a sudden extra ``size`` posts per period that halves every 6
   hours (or 48 hours, a lasting one; or each day, daily). Printed per size: found (a storm
   starting within 24 periods of its first period, and overlapping it), the delay from its
   first period to the storm found (median and 90th percentile), storms reported per planted
   storm (1.00: found, and never split in two), and storms reported elsewhere.

Every series comes from ``numpy.random.default_rng(seed)``, so the figures are the same on
every run. About 80 s with 200 seeds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from monitor.backlash.spikes import DAILY, HOURLY, Settings, Spike

HOURS = 4 * 7 * 24
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
Noise = Callable[[np.random.Generator, np.ndarray], np.ndarray]  # (rng, mean per period) -> counts


def poisson(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    return rng.poisson(mean)


def clumpy(variance_ratio: float) -> Noise:
    """Negative binomial with variance ``variance_ratio`` times the mean."""

    def draw(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
        n = mean / (variance_ratio - 1)
        return rng.negative_binomial(n, n / (n + mean))

    return draw


def flat(rate: float, periods: int) -> np.ndarray:
    return np.full(periods, rate)


def rhythmic(rate: float, periods: int) -> np.ndarray:
    """A day's rhythm (lowest at 03:00, highest at 15:00) and weekends at 70%."""
    hours = np.arange(periods)
    day = 1 - 0.8 * np.cos(2 * np.pi * ((hours % 24) - 3) / 24)
    weekend = np.where((hours // 24) % 7 >= 5, 0.7, 1.0)
    shape = day * weekend
    return rate * shape / shape.mean()


def growing(rate: float, factor: float, periods: int, flat_first: int) -> np.ndarray:
    """``rate`` for ``flat_first`` periods, then a steady rise to ``factor`` times it."""
    return np.concatenate([np.full(flat_first, rate),
                           np.linspace(rate, rate * factor, periods - flat_first)])


def weekly(rate: float, days: int) -> np.ndarray:
    shape = np.where(np.arange(days) % 7 >= 5, 0.7, 1.0)
    return rate * shape / shape.mean()


def series(counts: np.ndarray, freq: str) -> pd.Series:
    return pd.Series(counts, index=pd.date_range(START, periods=len(counts), freq=freq))


def spikes(counts: np.ndarray, settings: Settings) -> list[Spike]:
    return settings.find(series(counts, settings.freq))


def false_alarms(title: str, mean: np.ndarray, noise: Noise, settings: Settings, seeds: int,
                 unit: str) -> None:
    alarmed = storms = 0
    for seed in range(seeds):
        found = spikes(noise(np.random.default_rng(seed), mean), settings)
        alarmed += bool(found)
        storms += len(found)
    judged = len(mean) - settings.min_periods
    weeks = judged * seeds / (168 if unit == "h" else 7)
    print(f"  {title:<44} {judged:>5} {unit} judged  series with a storm {alarmed:>3}/{seeds}"
          f" ({100 * alarmed / seeds:4.1f}%)  storms per judged week {storms / weeks:.4f}")


def planted(mean: np.ndarray, size: float, half_life: float, settings: Settings,
            seeds: int, unit: str) -> None:
    """Storms of ``size`` extra posts per period at first, halving every ``half_life``."""
    periods = len(mean)
    step = pd.Timedelta(hours=1) if unit == "h" else pd.Timedelta(days=1)
    found_in_time, delays, reported, stray = 0, [], [], 0
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        onset = int(rng.integers(periods // 2, periods - periods // 14))
        extra = np.zeros(periods)
        extra[onset:] = size * 0.5 ** (np.arange(periods - onset) / half_life)
        extra[extra < 0.5] = 0
        last = onset + int(np.count_nonzero(extra[onset:]))
        found = spikes(poisson(rng, mean + extra), settings)
        first, end, soon = (pd.Timestamp(START) + n * step for n in (onset, last, onset + 24))
        ours = [s for s in found if s.end > first and s.start < end]
        stray += len(found) - len(ours)
        reported.append(len(ours))
        hits = [s for s in ours if s.start < soon]
        if hits:
            found_in_time += 1
            delays.append((max(hits[0].start, first) - first) / step)
    delay = (f"delay median {np.median(delays):2.0f} {unit}, 90% {np.percentile(delays, 90):2.0f}"
             f" {unit}" if delays else "delay -")
    rate = float(np.mean(mean))
    print(f"  +{size:<4g}/{unit} at first (x{(rate + size) / rate:<5.3g})  found "
          f"{100 * found_in_time / seeds:5.1f}%  {delay}  storms per storm "
          f"{np.mean(reported):.2f}  storms elsewhere {stray}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=HOURLY.threshold)
    parser.add_argument("--stay", type=float, default=HOURLY.stay)
    parser.add_argument("--min-count", type=int, default=HOURLY.min_count)
    parser.add_argument("--gap", type=int, default=HOURLY.gap)
    parser.add_argument("--daily-threshold", type=float, default=DAILY.threshold)
    parser.add_argument("--daily-min-count", type=int, default=DAILY.min_count)
    args = parser.parse_args()
    hourly = replace(HOURLY, threshold=args.threshold, stay=min(args.stay, args.threshold),
                     min_count=args.min_count, gap=args.gap)
    daily = replace(DAILY, threshold=args.daily_threshold,
                    stay=min(DAILY.stay, args.daily_threshold), min_count=args.daily_min_count)
    began = time.perf_counter()

    print(f"False alarms, 4 weeks of hourly noise, {args.seeds} seeds: {hourly}")
    for title, mean, noise in [
        ("Poisson 0.3/h", flat(0.3, HOURS), poisson),
        ("Poisson 5/h", flat(5, HOURS), poisson),
        ("Poisson 50/h", flat(50, HOURS), poisson),
        ("Poisson 5/h, daily rhythm, quiet weekends", rhythmic(5, HOURS), poisson),
        ("clumpy 0.3/h (variance 3x)", flat(0.3, HOURS), clumpy(3)),
        ("clumpy 5/h (variance 3x)", flat(5, HOURS), clumpy(3)),
        ("clumpy 5/h, daily rhythm", rhythmic(5, HOURS), clumpy(3)),
        ("growing 5/h to 15/h over 3 weeks", growing(5, 3, HOURS, 168), poisson),
        ("growing 5/h to 20/h over 3 weeks", growing(5, 4, HOURS, 168), poisson),
    ]:
        false_alarms(title, mean, noise, hourly, args.seeds, "h")

    print(f"\nFalse alarms, a year of daily noise, {args.seeds} seeds: {daily}")
    for title, mean, noise in [
        ("Poisson 3/day", flat(3, 365), poisson),
        ("Poisson 120/day, quiet weekends", weekly(120, 365), poisson),
        ("clumpy 120/day (variance 3x)", weekly(120, 365), clumpy(3)),
        ("clumpy 120/day (variance 10x)", weekly(120, 365), clumpy(10)),
        ("growing 1%/day for 4 months from 100/day", 100 * 1.01 ** np.arange(120), poisson),
        ("growing 3%/day for 2 months from 100/day", 100 * 1.03 ** np.arange(60), poisson),
    ]:
        false_alarms(title, mean, noise, daily, args.seeds, "d")

    for rate, sizes in [(5.0, (10, 15, 20, 30, 50)), (0.3, (5, 8, 12, 20)),
                        (50.0, (30, 45, 60))]:
        print(f"\nStorms on Poisson {rate:g}/h, halving every 6 h, {args.seeds} seeds:")
        for size in sizes:
            planted(flat(rate, HOURS), size, 6, hourly, args.seeds, "h")
    print(f"\nStorms on Poisson 5/h with a daily rhythm, halving every 6 h, {args.seeds} seeds:")
    for size in (15, 20, 30):
        planted(rhythmic(5, HOURS), size, 6, hourly, args.seeds, "h")
    print(f"\nStorms on Poisson 5/h, lasting (halving every 48 h), {args.seeds} seeds:")
    for size in (15, 20, 30):
        planted(flat(5, HOURS), size, 48, hourly, args.seeds, "h")
    for rate, sizes in [(120.0, (40, 60, 120)), (3.0, (8, 12, 20))]:
        print(f"\nStorms on a year of Poisson {rate:g}/day (quiet weekends), halving every day,"
              f" {args.seeds} seeds:")
        for size in sizes:
            planted(weekly(rate, 365), size, 1, daily, args.seeds, "d")
    print(f"\n{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
