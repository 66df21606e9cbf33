"""Before against after, honestly: shares with Wilson intervals, the days before weighted to the
weekdays after (a Monday against Mondays), and a difference called clear only when its
interval excludes zero (Newcombe's hybrid score interval).

Why Wilson and not the textbook ``p ± 1.96·sqrt(p(1-p)/n)``: with the handful of posts a
launch's first day brings, or a share near 0 or 1, the textbook interval runs past 0 % or 100 %
and is far too narrow; Wilson's stays inside and keeps close to its 95 % coverage. Weighting a
share makes its posts count unevenly, so its interval uses Kish's effective sample size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964
"""The normal quantile of a two-sided 95 % interval."""


@dataclass(frozen=True, slots=True)
class Share:
    """A proportion with its 95 % interval; ``n`` posts (effective, when weighted)."""

    value: float | None  # None: no posts
    low: float | None
    high: float | None
    n: float

    def as_dict(self) -> dict[str, float | None]:
        return {"share": _round(self.value), "low": _round(self.low),
                "high": _round(self.high), "n": round(self.n, 1)}


@dataclass(frozen=True, slots=True)
class Change:
    """After minus before, in share points (0.23 = +23 points), with its 95 % interval."""

    value: float | None
    low: float | None
    high: float | None

    @property
    def clear(self) -> bool:
        """Whether the interval leaves out zero: a real change, not noise."""
        return self.low is not None and self.high is not None and (
            self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float | bool | None]:
        return {"points": _round(self.value), "low": _round(self.low),
                "high": _round(self.high), "clear": self.clear}


def wilson(hits: float, n: float, z: float = Z95) -> Share:
    """The Wilson score interval of ``hits`` out of ``n`` (both may be weighted sums)."""
    if n <= 0:
        return Share(None, None, None, 0.0)
    p = min(max(hits / n, 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Share(p, max(0.0, centre - half), min(1.0, centre + half), n)


def weighted_share(flags: Sequence[bool], weights: Sequence[float]) -> Share:
    """The weighted share of ``flags``; its interval is Wilson's at Kish's effective size
    ``(sum w)^2 / sum w^2``, so a few heavily weighted posts do not look like many."""
    total = sum(weights)
    if total <= 0:
        return Share(None, None, None, 0.0)
    effective = total * total / sum(w * w for w in weights)
    p = sum(w for f, w in zip(flags, weights, strict=True) if f) / total
    interval = wilson(p * effective, effective)
    return Share(p, interval.low, interval.high, effective)


def weekday_weights(before_days: Sequence[int], after_days: Sequence[int]) -> list[float]:
    """A weight per post before (by its local weekday, 0 = Monday) so that the weekdays before
    count as often as they do after: people post, and complain, differently on a Sunday.
    A weekday seen after but never before cannot be matched; the weights then fall back to 1."""
    if not before_days or not after_days:
        return [1.0] * len(before_days)
    seen_before = [before_days.count(d) for d in range(7)]
    seen_after = [after_days.count(d) for d in range(7)]
    if any(seen_after[d] and not seen_before[d] for d in range(7)):
        return [1.0] * len(before_days)
    share_after = [c / len(after_days) for c in seen_after]
    return [share_after[d] / seen_before[d] * len(before_days) for d in before_days]


def change(before: Share, after: Share) -> Change:
    """Newcombe's hybrid score interval for ``after - before`` (his method 10, 1998)."""
    if before.value is None or after.value is None:
        return Change(None, None, None)
    assert before.low is not None and before.high is not None
    assert after.low is not None and after.high is not None
    value = after.value - before.value
    low = value - math.hypot(after.value - after.low, before.high - before.value)
    high = value + math.hypot(after.high - after.value, before.value - before.low)
    return Change(value, low, high)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def weekday_weights_of(before: Sequence[int], after: Sequence[int]) -> list[float]:
    """``weekday_weights`` from counts: posts on each weekday (7 counts, Monday first) before
    and after; one weight per weekday, what each post of that weekday before weighs. The
    launch report counts per day in SQL (issue 19), so it never lists a million weekdays."""
    n_before, n_after = sum(before), sum(after)
    if not n_before or not n_after or any(a and not b for b, a in zip(before, after,
                                                                     strict=True)):
        return [1.0] * 7
    return [a / n_after / b * n_before if b else 0.0 for b, a in zip(before, after, strict=True)]


def weighted_share_of(hits: Sequence[int], counts: Sequence[int],
                      weights: Sequence[float]) -> Share:
    """``weighted_share`` from counts per weekday: ``hits`` of ``counts`` posts, each of
    weekday d weighing ``weights[d]``."""
    total = sum(c * w for c, w in zip(counts, weights, strict=True))
    if total <= 0:
        return Share(None, None, None, 0.0)
    effective = total * total / sum(c * w * w for c, w in zip(counts, weights, strict=True))
    p = sum(h * w for h, w in zip(hits, weights, strict=True)) / total
    interval = wilson(p * effective, effective)
    return Share(p, interval.low, interval.high, effective)
