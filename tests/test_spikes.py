"""Storm detection: planted storms found where they are, noise and slow growth left alone,
short histories not judged, and counting per period that respects time zones and bounds."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from monitor.backlash.spikes import (
    DAILY,
    HOURLY,
    Spike,
    counts_per_period,
    detect,
    find_spikes,
    scores,
)

START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
WEEKS4 = 4 * 7 * 24
BERLIN = ZoneInfo("Europe/Berlin")


def series(values: np.ndarray | list[int], freq: str = "h", start: datetime = START) -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq))


def noise(seed: int, rate: float | np.ndarray, periods: int = WEEKS4) -> np.ndarray:
    return np.random.default_rng(seed).poisson(rate, periods)


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


def rhythm(rate: float, periods: int = WEEKS4) -> np.ndarray:
    """Posting by day: lowest at 03:00, highest at 15:00, the mean ``rate``."""
    hours = np.arange(periods)
    shape = 1 - 0.8 * np.cos(2 * np.pi * ((hours % 24) - 3) / 24)
    return rate * shape / shape.mean()


# -- planted storms ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planted_storms_are_found_exactly(seed: int) -> None:
    counts = noise(seed, 5)
    counts[400:403] += [40, 60, 30]  # three hours: one storm, peaking in its second hour
    counts[550] += 50  # one hour
    found = HOURLY.find(series(counts))
    assert [(s.start, s.peak_at, s.end) for s in found] == [
        (hour(400), hour(401), hour(403)), (hour(550), hour(550), hour(551))]
    first, second = found
    assert first.count == counts[401] and first.total == counts[400:403].sum()
    assert second.count == second.total == counts[550]
    assert 3 <= first.baseline <= 7 and first.score > 6


def test_a_storm_with_a_quiet_hour_in_it_is_one_storm() -> None:
    counts = noise(4, 5)
    counts[400:403] += 40
    counts[404:406] += 40  # hour 403 is ordinary
    (storm,) = HOURLY.find(series(counts))
    assert storm.start == hour(400) and storm.end >= hour(406)
    assert storm.total >= counts[400:406].sum()
    apart = find_spikes(series(counts), window=168, min_periods=48, season=24, gap=0)
    assert [(s.start, s.end) for s in apart] == [(hour(400), hour(403)), (hour(404), hour(406))]


def test_a_long_storm_does_not_become_its_own_baseline_within_hours() -> None:
    counts = noise(5, 5)
    counts[400:448] = noise(6, 50, 48)  # two days at ten times the usual
    (storm,) = HOURLY.find(series(counts))
    assert (storm.start, storm.end) == (hour(400), hour(448))


def test_a_lasting_new_level_ends_once_it_fills_half_the_history() -> None:
    counts = noise(7, 5)
    counts[400:] = noise(8, 30, WEEKS4 - 400)
    (storm,) = HOURLY.find(series(counts))
    assert storm.start == hour(400)
    assert timedelta(days=3) <= storm.end - storm.start <= timedelta(days=5)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_slow_growth_is_no_storm_but_a_sudden_jump_is(seed: int) -> None:
    slow = np.concatenate([np.full(168, 5.0), np.linspace(5, 15, WEEKS4 - 168)])  # x3, 3 weeks
    assert HOURLY.find(series(noise(seed, slow))) == []
    sudden = np.where(np.arange(WEEKS4) < 400, 5.0, 25.0)  # x5 from one hour to the next
    jumped = HOURLY.find(series(noise(seed, sudden)))
    assert len(jumped) == 1 and hour(400) <= jumped[0].start <= hour(403)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_storm_at_night_is_judged_against_the_night(seed: int) -> None:
    counts = noise(seed, rhythm(5))
    night = 17 * 24 + 3  # 03:00, when about 1 post an hour is usual (9 at 15:00)
    counts[night] += 25
    (storm,) = HOURLY.find(series(counts))
    assert storm.start == hour(night) and storm.baseline <= 2
    flat = find_spikes(series(counts), window=168, min_periods=48, season=1)
    assert hour(night) not in [s.start for s in flat]  # hidden behind the day's own rhythm


# -- no storm in noise ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rate", [0.3, 5, 50])
def test_weeks_of_noise_raise_no_storm(seed: int, rate: float) -> None:
    assert HOURLY.find(series(noise(seed, rate))) == []


@pytest.mark.parametrize("seed", range(4))
def test_a_daily_rhythm_raises_no_storm(seed: int) -> None:
    assert HOURLY.find(series(noise(100 + seed, rhythm(5)))) == []


def test_one_or_two_posts_after_silence_are_no_storm() -> None:
    counts = np.zeros(200, dtype=int)
    counts[100], counts[150] = 1, 2
    judged = scores(series(counts), window=168, min_periods=48, season=24)
    assert np.isfinite(judged["z"].iloc[48:]).all()  # no division by a zero spread
    assert HOURLY.find(series(counts)) == []
    counts[180] = 12  # but a dozen is
    assert [s.start for s in HOURLY.find(series(counts))] == [hour(180)]


def test_min_count_guards_a_quiet_series() -> None:
    counts = np.zeros(200, dtype=int)
    counts[180] = 9  # far above an empty history, yet fewer than min_count
    assert HOURLY.find(series(counts)) == []
    assert len(replace(HOURLY, min_count=5).find(series(counts))) == 1


# -- history ----------------------------------------------------------------------------------


def test_nothing_is_judged_before_min_periods() -> None:
    counts = noise(31, 5, 47)
    counts[30] += 100
    assert HOURLY.find(series(counts)) == []
    assert scores(series(counts), window=168, min_periods=48, season=24)["z"].isna().all()
    at_48 = np.append(noise(31, 5, 48), 100)  # the first period with 48 before it
    assert [s.start for s in HOURLY.find(series(at_48))] == [hour(48)]


def test_a_verdict_never_changes_when_more_periods_arrive() -> None:
    counts = noise(41, 5)
    counts[300:304] += 45
    whole = scores(series(counts), window=168, min_periods=48, season=24)
    for cut in (100, 301, 450):
        part = scores(series(counts[:cut]), window=168, min_periods=48, season=24)
        pd.testing.assert_frame_equal(part, whole.iloc[:cut], check_freq=False)
    during = HOURLY.find(series(counts[:302]))  # the storm still going: same start, shorter
    (storm,) = HOURLY.find(series(counts))
    assert [(s.start, s.end) for s in during] == [(storm.start, hour(302))]


def _by_hand(counts: list[int], i: int, window: int, season: int) -> tuple[float, float]:
    """The documented z of period ``i``, in plain Python: (median count compared, z)."""
    def root(count: float) -> float:
        return 2 * math.sqrt(count + 3 / 8)

    lags = [lag for lag in range(1, window + 1)  # earlier days at this time, and either side
            if season == 1 or (lag >= season - 1 and min(lag % season, season - lag % season) <= 1)]
    compared = [counts[i - lag] for lag in lags if i - lag >= 0]
    centre = statistics.median(root(c) for c in compared)
    scatter = statistics.median(abs(root(c) - centre) for c in compared)
    recent = [root(c) for c in counts[max(0, i - window): i]]
    steps = statistics.median(abs(b - a) for a, b in zip(recent, recent[season:], strict=False))
    noise = max(1.4826 * max(steps / math.sqrt(2), scatter), 1.0)
    noise *= math.sqrt(1 + math.pi / (2 * len(compared)))
    return statistics.median(compared), (root(counts[i]) - centre) / noise


@pytest.mark.parametrize(("window", "season", "i", "rate"),
                         [(6, 1, 6, 8), (6, 1, 9, 8), (48, 12, 60, 8), (48, 12, 70, 0.5)])
def test_scores_follow_the_formula(window: int, season: int, i: int, rate: float) -> None:
    counts = noise(42, rate, 80).tolist()
    counts[i] = 30
    judged = scores(series(counts), window=window, min_periods=window, season=season)
    baseline, z = _by_hand(counts, i, window, season)
    assert judged["baseline"].iloc[i] == baseline
    assert math.isclose(judged["z"].iloc[i], z)


def test_a_period_is_never_its_own_baseline() -> None:
    counts = noise(43, 5, 300)
    before = scores(series(counts), window=168, min_periods=48, season=24)
    counts[250] = 500
    after = scores(series(counts), window=168, min_periods=48, season=24)
    for column in ("baseline", "noise"):
        assert after[column].iloc[:251].equals(before[column].iloc[:251])
    assert after["z"].iloc[250] > 20 > before["z"].iloc[250]


def test_the_baseline_is_the_same_time_of_day() -> None:
    counts = np.tile(np.r_[np.full(12, 2), np.full(12, 20)], 10)  # 2 by night, 20 by day
    judged = scores(series(counts), window=168, min_periods=48, season=24)
    assert judged["baseline"].iloc[200] == 2 and judged["baseline"].iloc[214] == 20


# -- daily ------------------------------------------------------------------------------------


def test_daily_storms() -> None:
    counts = noise(51, 100, 120)
    counts[80:82] += [150, 120]
    (storm,) = DAILY.find(series(counts, "D"))
    day = START + timedelta(days=80)
    assert (storm.start, storm.peak_at, storm.end) == (day, day, day + timedelta(days=2))
    for seed in range(52, 56):
        assert DAILY.find(series(noise(seed, 100, 365), "D")) == []


def test_daily_periods_are_calendar_days_across_a_dst_change() -> None:
    start = datetime(2026, 3, 1, tzinfo=BERLIN)
    counts = noise(61, 100, 40)
    counts[28] += 200  # Sunday 29 March, 23 hours long
    (storm,) = DAILY.find(series(counts, "D", start))
    assert storm.start == datetime(2026, 3, 29, tzinfo=BERLIN)
    assert storm.end == datetime(2026, 3, 30, tzinfo=BERLIN)
    assert storm.end.astimezone(UTC) - storm.start.astimezone(UTC) == timedelta(hours=23)


# -- counts_per_period ------------------------------------------------------------------------


def test_counts_fill_empty_periods_with_zero() -> None:
    times = [hour(0), hour(0) + timedelta(minutes=59), hour(3) + timedelta(seconds=1)]
    counts = counts_per_period(times, "h", hour(0), hour(5))
    assert counts.tolist() == [2, 0, 0, 1, 0]
    assert list(counts.index) == [hour(n) for n in range(5)]
    assert counts.index.freqstr == "h"


def test_counts_ignore_times_outside_start_to_end() -> None:
    times = [hour(0) - timedelta(microseconds=1), hour(0), hour(2) - timedelta(microseconds=1),
             hour(2), hour(9)]
    assert counts_per_period(times, "h", hour(0), hour(2)).tolist() == [1, 1]


def test_counts_respect_time_zones() -> None:
    start = datetime(2026, 3, 28, tzinfo=BERLIN)
    end = datetime(2026, 3, 31, tzinfo=BERLIN)
    times = [
        datetime(2026, 3, 28, 23, 30, tzinfo=UTC),  # 00:30 on the 29th in Berlin
        datetime(2026, 3, 29, 23, 30, tzinfo=BERLIN),  # the last hour of a 23-hour day
        datetime(2026, 3, 29, 22, 30, tzinfo=UTC),  # 00:30 on the 30th (now UTC+2)
        datetime(2026, 3, 28, 0, 30, tzinfo=timezone(timedelta(hours=5))),  # before start
    ]
    counts = counts_per_period(times, "D", start, end)
    assert counts.tolist() == [0, 2, 1]
    assert list(counts.index) == [datetime(2026, 3, d, tzinfo=BERLIN) for d in (28, 29, 30)]
    as_series = counts_per_period(pd.Series(pd.to_datetime(times[:3], utc=True)), "D", start, end)
    assert as_series.tolist() == [0, 2, 1]


def test_counts_cut_the_last_period_at_end() -> None:
    times = [hour(1) + timedelta(minutes=10), hour(1) + timedelta(minutes=40)]
    counts = counts_per_period(times, "h", hour(0), hour(1) + timedelta(minutes=30))
    assert counts.tolist() == [0, 1]


def test_counts_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        counts_per_period([datetime(2026, 1, 1, 12)], "h", hour(0), hour(5))
    with pytest.raises(ValueError, match="timezone-aware"):
        counts_per_period([], "h", datetime(2026, 1, 1), hour(5))
    with pytest.raises(ValueError, match="timezone-aware"):
        counts_per_period(pd.Series(pd.to_datetime(["2026-01-01 12:00"])), "h", hour(0), hour(5))


def test_counts_of_nothing() -> None:
    assert counts_per_period([], "h", hour(0), hour(3)).tolist() == [0, 0, 0]
    assert counts_per_period([hour(1)], "h", hour(0), hour(0)).tolist() == []


def test_counts_by_key_count_each_voice_once_a_period() -> None:
    times = [hour(0), hour(0) + timedelta(minutes=5), hour(0) + timedelta(minutes=9), hour(1),
             hour(1) + timedelta(minutes=1)]
    authors = ["ana", "ana", "ben", "ana", "ana"]
    assert counts_per_period(times, "h", hour(0), hour(2), keys=authors).tolist() == [2, 1]
    with pytest.raises(ValueError, match="2 keys for 5 times"):
        counts_per_period(times, "h", hour(0), hour(2), keys=authors[:2])


def test_detect_from_post_times() -> None:
    rng = np.random.default_rng(71)
    start = datetime(2026, 10, 1, tzinfo=BERLIN)
    hours = np.repeat(np.arange(WEEKS4), rng.poisson(rhythm(5)))
    storm_hour = 20 * 24 + 14  # 14:00 on 21 October in Berlin
    hours = np.append(hours, np.full(40, storm_hour))
    times = [start + timedelta(hours=int(h), minutes=int(m))
             for h, m in zip(hours, rng.integers(0, 60, len(hours)), strict=True)]
    (storm,) = detect(times, start, start + timedelta(hours=WEEKS4))
    assert storm.start == datetime(2026, 10, 21, 14, tzinfo=BERLIN)
    assert storm.count >= 40


# -- describe ---------------------------------------------------------------------------------


def test_describe_one_hour() -> None:
    spike = Spike(start=datetime(2026, 11, 2, 13, tzinfo=UTC), end=datetime(2026, 11, 2, 14,
                  tzinfo=UTC), peak_at=datetime(2026, 11, 2, 13, tzinfo=UTC), count=42, total=42,
                  baseline=3.0, score=8.14, freq="h", season=24)
    assert spike.describe() == (
        "Mon 2 Nov 2026 (UTC): 42 negative posts in the hour to 14:00, typical 3 at that hour "
        "(z 8.1)")


def test_describe_a_storm_over_midnight() -> None:
    spike = Spike(start=datetime(2026, 11, 2, 21, tzinfo=BERLIN),
                  end=datetime(2026, 11, 3, 2, tzinfo=BERLIN),
                  peak_at=datetime(2026, 11, 2, 23, tzinfo=BERLIN), count=57, total=194,
                  baseline=4.5, score=12.345, freq="h", season=1)
    assert spike.describe("angry posts") == (
        "Mon 2 Nov 2026 (CET): 194 angry posts in 5 hours from 21:00 to Tue 3 Nov 02:00, peak "
        "57 in the hour to 24:00, typical 4.5 an hour (z 12.3)")


def test_describe_days() -> None:
    one = Spike(start=datetime(2026, 10, 31, tzinfo=UTC), end=datetime(2026, 11, 1, tzinfo=UTC),
                peak_at=datetime(2026, 10, 31, tzinfo=UTC), count=297, total=297, baseline=99,
                score=16.7, freq="D")
    assert one.describe() == (
        "Sat 31 Oct 2026 (UTC): 297 negative posts in the day, typical 99 a day (z 16.7)")
    two = replace(one, end=datetime(2026, 11, 2, tzinfo=UTC), total=503)
    assert two.describe() == (
        "Sat 31 Oct 2026 (UTC): 503 negative posts in 2 days to Sun 1 Nov, peak 297 on Sat 31 "
        "Oct, typical 99 a day (z 16.7)")


def test_found_storms_describe_themselves() -> None:
    counts = noise(81, 5)
    counts[400] += 50
    (storm,) = HOURLY.find(series(counts))
    line = storm.describe()
    assert line.startswith("Wed 21 Oct 2026 (UTC): ")
    assert f"{counts[400]} negative posts in the hour to 17:00, typical " in line
    assert f"(z {storm.score:.1f})" in line


# -- mistakes ---------------------------------------------------------------------------------


def test_mistakes_are_refused() -> None:
    counts = series(noise(91, 5, 200))
    with pytest.raises(ValueError, match="stay"):
        find_spikes(counts, window=168, min_periods=48, threshold=3, stay=4)
    with pytest.raises(ValueError, match="multiple of season"):
        find_spikes(counts, window=100, min_periods=48, season=24)
    with pytest.raises(ValueError, match="min_periods"):
        find_spikes(counts, window=24, min_periods=48)
    with pytest.raises(ValueError, match="missing"):
        find_spikes(counts.astype(float).where(counts.index != counts.index[5]), window=168,
                    min_periods=48)
    with pytest.raises(ValueError, match="regular index"):
        find_spikes(counts.iloc[[0, 1, 5, 6]], window=2, min_periods=1)


def test_an_index_without_its_frequency_is_inferred() -> None:
    counts = noise(92, 5)
    counts[400] += 50
    plain = pd.Series(counts, index=pd.DatetimeIndex(list(series(counts).index)))
    assert plain.index.freq is None
    (storm,) = HOURLY.find(plain)
    assert storm.start == hour(400) and storm.end == hour(401)
    assert math.isclose(storm.score, HOURLY.find(series(counts))[0].score)
