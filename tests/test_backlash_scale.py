"""The launch report at scale (issue 19): figures counted per day by the database equal those
of every post read into pandas, on SQLite and PostgreSQL; complaints beyond the cap are grouped
from a sample, and the report says so; grouping many posts keeps its memory bounded."""

from __future__ import annotations

import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from test_backlash import CALM, NOW, ORDINARY, make_config, report

from monitor.backlash import report as backlash
from monitor.backlash import themes
from monitor.backlash.compare import (
    weekday_weights,
    weekday_weights_of,
    weighted_share,
    weighted_share_of,
)
from monitor.backlash.events import find_event, watched
from monitor.config import Config, load
from monitor.model import Fetch, Post
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store

ZONE = "Europe/Berlin"  # leaves summer time on 25 Oct 2026, inside the window below
LAUNCH = datetime(2026, 10, 28, 9, 30, tzinfo=ZoneInfo(ZONE))
AT = datetime(2026, 11, 3, 12, tzinfo=UTC)
TEXTS = [
    "I hate the new editor, the toolbar is gone and saving is slow",
    "The NEW  Editor crashes when I paste a table, please fix it",  # two spaces, any case
    "new\neditor: sync fails every time since the update",
    "Since the update nothing works, I want a refund and I am cancelling my subscription",
    "Überraschung: the app loses my notes again, terrible",
    "Trying the new editor today, it seems fine so far",
    "How do I share a notebook with my team? Thanks for any pointers",
    "La mise à jour a cassé la synchronisation, c'est nul",
    "Thenew editorial team is great",  # no whole word
    "I love it",
]


def seeded(make_project: Any, store_url: str, **event: Any) -> tuple[Config, Store]:
    """Posts on two sources every few hours for 10 days around the launch, across DST, some
    unscored, some titled with the keyword."""
    path = make_project([], None, store=store_url, timezone=ZONE, events=[{
        "name": "New editor", "date": LAUNCH.isoformat(), "keywords": ["new editor", "über"],
        "days": 7, **event}])
    config = load(path)
    store = Store(config.store_url)
    rng = random.Random(3)
    by_source: dict[str, list[Post]] = {"forum": [], "reddit": []}
    at = LAUNCH - timedelta(days=8)
    i = 0
    while at < AT:
        source = rng.choice(sorted(by_source))
        title = "My new editor woes" if rng.random() < 0.05 else None
        by_source[source].append(Post(source, f"{source}{i}", f"https://{source}.example/{i}",
                                      rng.choice([f"user{i % 7}", None]), title,
                                      rng.choice(TEXTS), at))
        at += timedelta(minutes=rng.randrange(60, 420))
        i += 1
    for source, made in by_source.items():
        store.save_fetch(source, "rss", Fetch(tuple(made), None), AT)
    score_pending(store, Runtime.of(config))
    late = Post("forum", "late", "https://forum.example/late", "x", None, TEXTS[0],
                LAUNCH + timedelta(days=2))  # stored, never scored
    store.save_fetch("forum", "rss", Fetch((late,), None), AT)
    return config, store


def pandas_figures(store: Store, config: Config) -> dict[str, Any]:
    """The report's figures as they were made before issue 19: every post of the window read
    into pandas (``Store.launch_posts``), every keyword checked in Python."""
    event = find_event(watched(config.main.events, config.timezone), "New editor")
    assert event is not None
    zone = config.timezone
    start, end = event.window
    end = max(min(end, AT), start)
    frame = pd.DataFrame(store.launch_posts(start, end, event.sources))
    known = frame["language"].isna() | (frame["language"] == "en")
    frame["compound"] = frame["compound"].astype(float).where(known)
    frame["negative"] = (frame["compound"] <= -0.05).fillna(False).astype(bool)
    frame["angry"] = frame["angry"].fillna(False).astype(bool)
    frame["churn"] = frame["churn"].astype(float).fillna(0.0) >= 0.5
    frame["complaint"] = frame["complaint"].astype(float).fillna(0.0) >= 0.5
    frame["flagged"] = frame["severity"].notna()
    frame["after"] = pd.to_datetime(frame["published_at"], utc=True) >= pd.Timestamp(
        event.launch)
    named = pd.Series([event.names(t if isinstance(t, str) else None, x)
                       for t, x in zip(frame["title"], frame["text"], strict=True)], dtype=bool)
    talk = frame["change"].astype(float).fillna(0.0) >= 0.5
    frame["about"] = named | (talk & frame["after"])
    local = pd.to_datetime(frame["published_at"], utc=True).dt.tz_convert(zone)
    frame["day"] = local.dt.date
    frame["weekday"] = local.dt.day_of_week
    unhappy = frame["complaint"] | frame["angry"] | frame["churn"] | (
        frame["flagged"] & (frame["category"] != "praise"))
    days = {}
    for day, group in frame.groupby("day"):
        compounds = group["compound"].dropna()
        days[day] = {"posts": len(group), "negative": int(group["negative"].sum()),
                     "complaints": int(group["complaint"].sum()),
                     "angry": int(group["angry"].sum()), "churn": int(group["churn"].sum()),
                     "flagged": int(group["flagged"].sum()), "about": int(group["about"].sum()),
                     "median_compound": round(float(compounds.median()), 3)
                     if len(compounds) else None}
    before, after = frame[~frame["after"]], frame[frame["after"]]
    weights = weekday_weights(list(before["weekday"]), list(after["weekday"]))
    shares = {name: weighted_share(list(before[name]), weights).value
              for name in backlash.SHARES}
    return {"days": days, "before": len(before), "after": len(after), "shares": shares,
            "complaints": int((unhappy & frame["after"]).sum()),
            "about_of_negative": float(after[after["negative"]]["about"].mean()),
            "medians": (round(float(before["compound"].median()), 3),
                        round(float(after["compound"].median()), 3))}


def test_sql_figures_per_day_equal_those_of_every_post_in_pandas(make_project,
                                                                 store_url: str) -> None:
    config, store = seeded(make_project, store_url)
    with store:
        old = pandas_figures(store, config)
        made = report(config, store, AT)
    assert old["before"] > 30 and old["after"] > 30 and old["complaints"] > 5
    assert (made.posts_before, made.posts_after) == (old["before"], old["after"])
    assert made.complaints == made.grouped == old["complaints"] and not made.sampled
    assert made.median_compound == old["medians"]
    assert made.about_of_negative.value == pytest.approx(old["about_of_negative"])
    for name, value in old["shares"].items():
        assert made.figures[name].before.value == pytest.approx(value, abs=1e-12), name
    quiet = {"posts": 0, "negative": 0, "complaints": 0, "angry": 0, "churn": 0,
             "flagged": 0, "about": 0, "median_compound": None}
    for day, row in made.by_day.iterrows():
        got = {k: (None if pd.isna(v) else v) for k, v in row.items() if k != "negative_share"}
        assert got == old["days"].get(day, quiet), day
    assert made.by_day["about"].sum() > 0


def test_the_week_weighted_by_counts_is_the_week_weighted_by_posts() -> None:
    rng = random.Random(5)
    before = [rng.randrange(7) for _ in range(300)]
    after = [rng.randrange(7) for _ in range(90)]
    flags = [rng.random() < 0.3 for _ in before]
    per_post = weighted_share(flags, weekday_weights(before, after))
    weights = weekday_weights_of([before.count(d) for d in range(7)],
                                 [after.count(d) for d in range(7)])
    hits = [sum(f for f, d in zip(flags, before, strict=True) if d == day) for day in range(7)]
    counted = weighted_share_of(hits, [before.count(d) for d in range(7)], weights)
    for a, b in ((per_post.value, counted.value), (per_post.low, counted.low),
                 (per_post.high, counted.high), (per_post.n, counted.n)):
        assert a == pytest.approx(b, rel=1e-12)
    assert weekday_weights_of([0, 5, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]) == [1.0] * 7


def test_beyond_the_cap_a_sample_is_grouped_and_the_report_says_so(
        make_project, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config, store = seeded(make_project, store_url)
    monkeypatch.setattr(backlash, "GROUPED", 12)
    with store:
        made = report(config, store, AT)
        again = report(config, store, AT)
    assert made.complaints > 12 and made.grouped == 12 and made.sampled
    assert [t.complaint.keys for t in made.themes] == [t.complaint.keys for t in again.themes]
    for theme in made.themes:
        assert sum(theme.per_day) == theme.complaint.count <= 12
    markdown = backlash.render(made, "backlash.md.j2")
    assert f"Grouped from 12 of {made.complaints} complaint posts, a random sample" in markdown
    assert f"Grouped from 12 of {made.complaints:,} complaint posts" in backlash.render(
        made, "backlash.html.j2")
    data = made.as_dict()
    assert (data["complaint_posts"], data["complaints_grouped"]) == (made.complaints, 12)


def test_under_the_cap_the_report_says_nothing_of_a_sample(make_project,
                                                           store_url: str) -> None:
    config = load(make_config(make_project, store_url))
    with Store(config.store_url) as store:
        posts = [(CALM, NOW - timedelta(days=2)), (ORDINARY, NOW - timedelta(days=5))]
        store.save_fetch("forum", "rss", Fetch(tuple(
            Post("forum", f"p{i}", f"https://f.example/{i}", "a", None, text, at)
            for i, (text, at) in enumerate(posts)), None), NOW)
        made = report(config, store)
    assert not made.sampled and "Grouped from" not in backlash.render(made, "backlash.md.j2")


# --- the grouping itself -------------------------------------------------------------------------

PROBLEMS = ["battery drains overnight", "sync with the watch fails", "heart rate readings wrong",
            "notifications stopped arriving", "login keeps asking for my password",
            "maps will not download offline"]
FILLER = ["since", "yesterday", "again", "really", "my", "phone", "every", "morning", "now",
          "still", "after", "weeks", "please", "annoying", "app", "today"]


def synthetic(n: int, seed: int = 1) -> list[tuple[int, str]]:
    """``n`` short complaints about six problems, each worded with random filler."""
    rng = random.Random(seed)
    return [(i, " ".join([*rng.sample(FILLER, 3), PROBLEMS[i % len(PROBLEMS)],
                          *rng.sample(FILLER, 2)])) for i in range(n)]


def test_sample_is_uniform_fixed_and_all_under_the_cap() -> None:
    assert themes.sample(5, 10) == [0, 1, 2, 3, 4]
    picked = themes.sample(10_000, 100)
    assert len(picked) == len(set(picked)) == 100 and picked == sorted(picked)
    assert picked == themes.sample(10_000, 100)  # the same every time
    assert 2_000 < sum(picked) / len(picked) < 8_000


def test_grouping_12000_posts_keeps_memory_bounded_and_counts_them_all() -> None:
    """A sample of MAX_POSTS is grouped (its distances are MAX_POSTS squared), the rest is
    assigned a chunk at a time: the peak is that of MAX_POSTS posts, not of 12,000 (whose
    distance matrix alone would be 1 GB)."""
    items = synthetic(12_000)
    tracemalloc.start()
    try:
        found = themes.group_complaints(items)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 250 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert len(found) == len(PROBLEMS)
    assert sum(c.count for c in found) > 8_000  # the assigned posts count too
    for c in found:
        assert len({k % len(PROBLEMS) for k in c.keys}) == 1  # one problem per group


def test_a_sample_groups_as_the_whole_does() -> None:
    """Grouping 600 posts whole, or 300 of them with the rest assigned, finds the same
    problems with the same members for nearly every post."""
    items = synthetic(600, seed=2)
    whole = themes.group_complaints(items)
    sampled = themes.group_complaints(items, max_posts=300)
    group_of = {k: i for i, c in enumerate(whole) for k in c.keys}
    assert len(sampled) == len(whole)
    agree = sum(len({group_of.get(k) for k in c.keys}) == 1 for c in sampled)
    assert agree == len(sampled)
    assert sum(c.count for c in sampled) >= 0.9 * sum(c.count for c in whole)
