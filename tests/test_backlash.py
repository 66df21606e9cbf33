"""``monitor backlash EVENT``: the days before a launch against the days after, from a seeded
store, in HTML, Markdown and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.backlash import report as backlash
from monitor.backlash.events import find_event, watched
from monitor.cli import main
from monitor.config import Config, load
from monitor.model import Fetch, Post
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store

NOW = datetime(2026, 11, 20, 12, 40, tzinfo=UTC)
LAUNCH = NOW - timedelta(days=3)
CALM = "Trying the new editor today, it seems fine so far"
ANGRY = ["I hate the new editor, the toolbar is gone and saving is slow",
         "The new editor is terrible: the toolbar moved and I can't find anything",
         "Saving in the new editor takes forever, awful update"]
HOSTILE = "<script>alert('x')</script> I hate the new editor <img src=https://t.example/p.gif>"


@pytest.fixture
def project(make_project, store_url: str) -> tuple[Path, Config, Store]:
    path = make_project([], None, store=store_url, timezone="UTC",
                        events=[{"name": "New editor", "date": LAUNCH.isoformat(),
                                 "keywords": ["new editor"], "days": 7}])
    config = load(path)
    store = Store(config.store_url)
    posts = []
    for day in range(1, 8):  # two calm posts a day in the week before
        at = LAUNCH - timedelta(days=day, hours=-1)
        posts += [(CALM, at), (CALM, at + timedelta(hours=2))]
    for day in range(3):  # after: two calm and four angry posts a day
        at = LAUNCH + timedelta(days=day, hours=1)
        posts += [(CALM, at), (CALM, at + timedelta(hours=1))]
        posts += [(text, at + timedelta(hours=2 + i)) for i, text in
                  enumerate([*ANGRY, HOSTILE if day == 0 else ANGRY[day]])]
    posts += [("I hate the old dashboard", LAUNCH + timedelta(hours=5)),  # not about it
              (CALM, LAUNCH - timedelta(days=9))]                       # before the window
    store.save_fetch("forum", "rss", Fetch(tuple(
        Post("forum", f"p{i}", f"https://forum.example/t/{i}", f"user{i}", None, text, at)
        for i, (text, at) in enumerate(posts)), None), NOW)
    score_pending(store, Runtime.of(config))
    yield path, config, store
    store.close()


def report(config: Config, store: Store) -> backlash.Backlash:
    event = find_event(watched(config.main.events, config.timezone), "new EDITOR")
    assert event is not None
    return backlash.build(store, event, config.timezone, NOW)


def test_before_and_after_figures(project: tuple[Path, Config, Store]) -> None:
    _, config, store = project
    made = report(config, store)
    assert made.before["posts"] == 2.0 and made.before["negative"] == 0.0
    assert made.before["negative_share"] == 0.0 and made.before["mean_compound"] > 0
    assert made.after["posts"] == 6.0 and made.after["negative"] == 4.0
    assert made.after["negative_share"] == pytest.approx(0.667, abs=0.001)
    assert made.after["mean_compound"] < 0 and made.after["angry"] >= 0
    assert len(made.by_day) == 11  # every day of the window, quiet ones included
    assert made.by_day["posts"].sum() == 32
    assert made.by_day.loc[NOW.date(), "posts"] == 0  # nothing yet today
    source = made.by_source.loc["forum"]
    assert (source.posts_before, source.posts_after) == (14, 18)
    assert source.negative_share_before == 0.0 and source.negative_share_after > 0.6
    assert made.chart_png.startswith(b"\x89PNG")
    assert made.spikes == []  # four angry posts a day is no storm
    assert made.complaints  # toolbar, saving: the launch's own words never name a group
    for complaint in made.complaints:
        assert complaint.count >= 2 and complaint.quotes
        assert not {"new", "editor"} & set(" ".join(complaint.phrases).split())


def test_reports_are_written_and_escape_posts(project: tuple[Path, Config, Store],
                                              tmp_path: Path) -> None:
    _, config, store = project
    paths = backlash.write(report(config, store), tmp_path / "reports")
    assert sorted(p.name for p in paths) == ["backlash-new-editor.html", "backlash-new-editor.md",
                                             "backlash-new-editor.png"]
    html = (tmp_path / "reports" / "backlash-new-editor.html").read_text()
    assert "<script>alert" not in html and "https://t.example" not in html.replace(
        "&lt;img src=https://t.example", "")
    assert "data:image/png;base64," in html and "(launch)" in html
    markdown = (tmp_path / "reports" / "backlash-new-editor.md").read_text()
    assert "| posts | 2.0 | 6.0 |" in markdown and "<script>" not in markdown


def test_json_for_other_tools(project: tuple[Path, Config, Store]) -> None:
    path, _, _ = project
    result = CliRunner().invoke(main, ["backlash", "New editor", "--format", "json",
                                       "--config", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["event"] == "New editor"  # made as of now: the window is past the seeded days
    assert data["after"]["negative_share"] == pytest.approx(0.667, abs=0.001)
    assert sum(d["posts"] for d in data["by_day"]) == 32
    assert data["by_source"][0] == {"source": "forum", "posts_before": 14, "posts_after": 18,
                                    "negative_share_before": 0.0,
                                    "negative_share_after": 0.667, "angry_after":
                                    data["by_source"][0]["angry_after"], "churn_after": 0}
    assert isinstance(data["spikes"], list) and isinstance(data["complaints"], list)


def test_an_unknown_event_is_a_clear_error(project: tuple[Path, Config, Store]) -> None:
    path, _, _ = project
    result = CliRunner().invoke(main, ["backlash", "New logo", "--config", str(path)])
    assert result.exit_code == 2
    assert "no event named 'New logo' (events: 'New editor')" in result.stderr


def test_writing_html_by_default(project: tuple[Path, Config, Store]) -> None:
    path, config, _ = project
    result = CliRunner().invoke(main, ["backlash", "New editor", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert (config.reports_dir / "backlash-new-editor.html").exists()


def test_a_burst_after_the_launch_is_a_storm_in_the_report(
        project: tuple[Path, Config, Store]) -> None:
    _, config, store = project
    hour = (LAUNCH + timedelta(days=2)).replace(minute=0)
    store.save_fetch("forum", "rss", Fetch(tuple(
        Post("forum", f"b{i}", f"https://forum.example/b/{i}", f"angry{i}", None,
             ANGRY[i % 3], hour + timedelta(minutes=i)) for i in range(30)), None), NOW)
    score_pending(store, Runtime.of(config))
    made = report(config, store)
    hourly = [s for s in made.spikes if s.freq == "h"]
    assert [(s.start, s.count) for s in hourly] == [(hour, 30)]
    assert "30 negative posts in the hour to" in hourly[0].describe()
