"""Charts as PNG bytes, drawn with matplotlib's Agg canvas.

A Figure on its own canvas (never pyplot): no global state, so the daemon's threads can draw
at once, and no display is needed. PNG because every mail client shows one inline.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

SEVERITY_COLOURS = {"critical": "#a40e26", "high": "#d1242f", "medium": "#bf8700",
                    "low": "#8c959f"}
WIDTH_PX, HEIGHT_PX, DPI = 1264, 640, 200  # shown at half size (632 px): sharp on HiDPI too
FONT = 8.5  # points at 200 dpi, halved on screen: about 12 px, as the text around it


@dataclass(frozen=True, slots=True)
class Day:
    """One day's bar: posts read, the negative share of those scored, flags by severity."""

    day: date
    posts: int
    negative_share: float | None
    flags: dict[str, int] = field(default_factory=dict)


def daily_chart(days: Sequence[Day], highlight: date | None = None) -> bytes:
    """Two panels over the same days: posts read with the negative share on its own axis,
    then the flags stacked by severity. ``highlight`` is the digest's day."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    xs = list(range(len(days)))
    shade = ["#0969da" if d.day == highlight else "#9cc3ee" for d in days]
    top.bar(xs, [d.posts for d in days], color=shade, width=0.72, label="posts read")
    share = top.twinx()
    share.plot(xs, [d.negative_share for d in days], color="#cf222e", marker="o",
               markersize=3.5, linewidth=1.6, label="negative share")
    share.set_ylim(0, max(0.5, max((d.negative_share or 0) for d in days) * 1.15))
    share.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    share.tick_params(colors="#cf222e", labelsize=FONT, length=0)
    share.spines[:].set_visible(False)
    base = [0] * len(days)
    for severity in ("critical", "high", "medium", "low"):
        counts = [d.flags.get(severity, 0) for d in days]
        bottom.bar(xs, counts, bottom=base, color=SEVERITY_COLOURS[severity], width=0.72,
                   label=severity)
        base = [b + c for b, c in zip(base, counts, strict=True)]
    for axis, title in ((top, "Posts read, and the share that read negative (red)"),
                        (bottom, "Flags by severity")):
        axis.set_title(title, loc="left", fontsize=FONT + 0.5, color="#1f2328", pad=5)
        axis.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        axis.tick_params(labelsize=FONT, colors="#59636e", length=0)
        axis.grid(axis="y", color="#eaeef2", linewidth=0.6)
        axis.set_axisbelow(True)
        for side in ("top", "right", "left"):
            axis.spines[side].set_visible(False)
        axis.spines["bottom"].set_color("#d1d9e0")
    if highlight in [d.day for d in days]:
        where = [d.day for d in days].index(highlight)
        for axis in (top, bottom):
            axis.axvspan(where - 0.5, where + 0.5, color="#f3f6f9", zorder=0)
    top.set_ylim(0, max(1, max(d.posts for d in days)) * 1.1)
    bottom.set_ylim(0, max(1, max(base)) * 1.15)
    if any(base):
        bottom.legend(loc="lower right", bbox_to_anchor=(1, 1.0), fontsize=FONT, frameon=False,
                      ncols=4, handlelength=0.9, handletextpad=0.4, columnspacing=1.1,
                      borderaxespad=0)
    bottom.set_xticks(xs, [_label(d.day, days[i - 1].day if i else None)
                           for i, d in enumerate(days)])
    thousands = max(d.posts for d in days) >= 10_000
    top.yaxis.set_major_formatter(FuncFormatter(
        lambda value, _: f"{value / 1000:,.0f}k" if thousands and value else f"{value:,.0f}"))
    return _png(figure)


def launch_chart(days: Sequence[date], posts: Sequence[int], negative: Sequence[int],
                 median_compound: Sequence[float | None], launch: date) -> bytes:
    """Posts per day with the negative ones darker, the median compound on its own axis, and
    a dashed line at the launch: the backlash report's picture."""
    figure = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    axis.bar(days, posts, color="#c8d1da", label="posts")
    axis.bar(days, negative, color="#cf222e", label="negative")
    axis.axvline(launch, color="#1f2328", linestyle="--", linewidth=1)
    axis.annotate("launch", (launch, 1), xycoords=("data", "axes fraction"), xytext=(4, -12),
                  textcoords="offset points", fontsize=8)
    axis.set_ylabel("posts per day")
    mood = axis.twinx()
    mood.plot(days, [float("nan") if m is None else m for m in median_compound],
              color="#0969da", marker=".", label="median compound")
    mood.set_ylim(-1, 1)
    mood.set_ylabel("median compound")
    handles = axis.get_legend_handles_labels()[0] + mood.get_legend_handles_labels()[0]
    axis.legend(handles=handles, loc="upper left", fontsize=8, frameon=False)
    for label in axis.get_xticklabels():
        label.set(rotation=30, horizontalalignment="right")
    return _png(figure)


def sparkline(days: Sequence[date], shares: Sequence[float | None], launch: date) -> bytes:
    """The negative share per day, sparkline-sized (about 240 x 48 pixels), the launch a
    dashed tick: the trend at a glance beside the backlash report's verdict."""
    figure = Figure(figsize=(2.4, 0.48), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_axes((0.02, 0.08, 0.96, 0.84))
    axis.plot(days, [float("nan") if s is None else s for s in shares], color="#cf222e",
              linewidth=1.4, marker=".", markersize=3)
    axis.axvline(launch, color="#59636e", linestyle="--", linewidth=0.8)
    axis.set_ylim(-0.05, 1.05)
    axis.set_axis_off()
    return _png(figure)


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", facecolor="white", metadata={"Software": None})
    return out.getvalue()


def _label(day: date, before: date | None) -> str:
    """``Mon`` over ``16``; the month named on the first day and where it changes."""
    month = before is None or before.month != day.month
    return f"{day:%a}\n{day.day}{day.strftime(' %b') if month else ''}"
