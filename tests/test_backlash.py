"""``monitor backlash``: every post of the launch's sources before against after (weekday-
matched, with intervals), a verdict and a trend, in any time zone; written, listed, compared
and e-mailed (to a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from browser import chromium, needs_chromium, probe
from click.testing import CliRunner, Result
from smtp import smtp_server

from monitor.backlash import report as backlash
from monitor.backlash.compare import change, weekday_weights, weighted_share, wilson
from monitor.backlash.events import find_event, watched
from monitor.backlash.mail import report_key, young
from monitor.cli import main
from monitor.config import Config, load
from monitor.daemon import Daemon
from monitor.model import Fetch, Post
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store

NOW = datetime(2026, 11, 20, 12, 40, tzinfo=UTC)
LAUNCH = NOW - timedelta(days=3)
CALM = "Trying the new editor today, it seems fine so far"
ORDINARY = "How do I share a notebook with my team? Thanks for any pointers"
ANGRY = ["I hate the new editor, the toolbar is gone and saving is slow",
         "The new editor is terrible: the toolbar moved and I can't find anything",
         "Saving in the new editor takes forever, awful update"]
HOSTILE = "<script>alert('x')</script> I hate the new editor <img src=https://t.example/p.gif>"


def seed(store: Store, config: Config, posts: list[tuple[str, datetime]],
         source: str = "forum") -> None:
    store.save_fetch(source, "rss", Fetch(tuple(
        Post(source, f"{source}{i}", f"https://{source}.example/t/{i}", f"user{i}", None, text,
             at) for i, (text, at) in enumerate(posts)), None), NOW)
    score_pending(store, Runtime.of(config))


def make_config(make_project: Any, store_url: str, zone: str = "UTC",
                launch: datetime = LAUNCH, **more: Any) -> Path:
    events = [{"name": "New editor", "date": launch.isoformat(), "keywords": ["new editor"],
               "days": 7, **more}]
    return make_project([], None, store=store_url, timezone=zone, events=events)


@pytest.fixture
def project(make_project, store_url: str) -> Iterator[tuple[Path, Config, Store]]:
    path = make_config(make_project, store_url)
    config = load(path)
    store = Store(config.store_url)
    posts = []
    for day in range(1, 8):  # the week before: two ordinary posts a day, naming nothing
        at = LAUNCH - timedelta(days=day, hours=-1)
        posts += [(ORDINARY, at), (ORDINARY, at + timedelta(hours=2))]
    for day in range(3):  # after: two calm and four angry posts a day
        at = LAUNCH + timedelta(days=day, hours=1)
        posts += [(CALM, at), (CALM, at + timedelta(hours=1))]
        posts += [(text, at + timedelta(hours=2 + i)) for i, text in
                  enumerate([*ANGRY, HOSTILE if day == 0 else ANGRY[day]])]
    posts += [("I hate Mondays, my printer jammed again",  # not about it
               LAUNCH + timedelta(hours=5)),
              (ORDINARY, LAUNCH - timedelta(days=9))]  # before the window
    seed(store, config, posts)
    yield path, config, store
    store.close()


def report(config: Config, store: Store, now: datetime = NOW) -> backlash.Backlash:
    event = find_event(watched(config.main.events, config.timezone), "new EDITOR")
    assert event is not None
    return backlash.build(store, event, config.timezone, now)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["backlash", *args])


# --- the figures -------------------------------------------------------------------------------

def test_the_baseline_is_every_post_of_the_sources(project: tuple[Path, Config, Store]) -> None:
    """Nobody names a launch before it ships: "before" is all posts, not the keyword ones."""
    _, config, store = project
    made = report(config, store)
    assert (made.posts_before, made.posts_after) == (14, 19)
    assert made.per_day == (2.0, round(19 / 3, 2))
    negative = made.figures["negative"]
    assert negative.before.value == 0.0 and negative.after.value == pytest.approx(13 / 19)
    assert negative.change.clear and negative.change.value == pytest.approx(13 / 19)
    assert 0 < negative.after.low < 13 / 19 < negative.after.high < 1
    assert made.figures["about"].after.value == pytest.approx(18 / 19)  # the printer: not
    assert made.about_of_negative.value == pytest.approx(12 / 13)
    assert made.median_compound[0] > 0 > made.median_compound[1]
    assert len(made.by_day) == 11 and made.by_day["posts"].sum() == 33
    assert made.by_day.loc[NOW.date(), "posts"] == 0  # nothing yet today
    source = made.by_source.loc["forum"]
    assert (source.posts_before, source.posts_after, source.about_after) == (14, 19, 18)
    assert made.chart_png.startswith(b"\x89PNG") and made.spark_png.startswith(b"\x89PNG")
    assert made.spikes == []  # four angry posts a day is no storm


def test_the_verdict_says_how_much_worse_how_sure_and_where_it_heads(
        project: tuple[Path, Config, Store]) -> None:
    _, config, store = project
    made = report(config, store)
    low, high = made.figures["negative"].after.low, made.figures["negative"].after.high
    assert made.verdict == (
        f"Since the launch on 17 Nov, negative posts are 68 % ({low * 100:.0f}–{high * 100:.0f} "
        "%, 95 % interval; before: 0 % on the same weekdays, +68 points, clearly worse); 92 % "
        f"of them are about the launch; {made.trend}.")
    assert made.trend == "worst on 17 Nov, steady since"  # 5, 4, 4 negative posts a day


def test_a_calmer_launch_is_no_clear_change(make_project, store_url: str) -> None:
    config = load(make_config(make_project, store_url))
    with Store(config.store_url) as store:
        posts = [(ANGRY[0] if i % 4 == 0 else ORDINARY, LAUNCH - timedelta(hours=6 * i + 1))
                 for i in range(28)]
        posts += [(ANGRY[1] if i % 4 == 0 else CALM, LAUNCH + timedelta(hours=6 * i + 1))
                  for i in range(10)]
        seed(store, config, posts)
        made = report(config, store)
    assert not made.figures["negative"].change.clear
    assert "no clear change" in made.verdict


def test_themes_keep_the_launch_words_and_have_a_share_and_a_trend(
        project: tuple[Path, Config, Store]) -> None:
    _, config, store = project
    made = report(config, store)
    assert made.themes
    for theme in made.themes:
        assert theme.complaint.count >= 2 and theme.complaint.quotes
        assert 0 < theme.share <= 1 and len(theme.per_day) == 4  # launch day to today
        assert sum(theme.per_day) == theme.complaint.count and len(theme.trend) == 4


def test_a_storm_is_listed_once(project: tuple[Path, Config, Store]) -> None:
    _, config, store = project
    hour = (LAUNCH + timedelta(days=2)).replace(minute=0)
    seed(store, config, [(ANGRY[i % 3], hour + timedelta(minutes=i)) for i in range(30)],
         source="burst")
    made = report(config, store)
    assert [(s.freq, s.start, s.count) for s in made.spikes] == [("h", hour, 30)]
    assert "30 negative posts in the hour to" in made.spikes[0].describe()


# --- the edges ---------------------------------------------------------------------------------

def test_an_empty_launch(make_project, store_url: str, tmp_path: Path) -> None:
    config = load(make_config(make_project, store_url))
    with Store(config.store_url) as store:
        made = report(config, store)
    assert made.verdict == ("No posts from all sources in the 7 days before or since the "
                            "launch on 17 Nov.")
    assert made.themes == [] and made.spikes == [] and made.by_day["posts"].sum() == 0
    assert all(f.after.value is None and not f.change.clear for f in made.figures.values())
    assert len(backlash.write(made, tmp_path)) == 4
    json.loads(backlash.to_json(made))


def test_a_launch_with_no_posts_before(make_project, store_url: str) -> None:
    config = load(make_config(make_project, store_url))
    with Store(config.store_url) as store:
        seed(store, config, [(ANGRY[0], LAUNCH + timedelta(hours=2)),
                             (CALM, LAUNCH + timedelta(hours=3))])
        made = report(config, store)
    assert made.verdict.startswith("Since the launch on 17 Nov, negative posts are 50 % (")
    assert "no posts before the launch to compare with" in made.verdict
    assert made.figures["negative"].change.value is None


def test_a_launch_with_no_posts_after(make_project, store_url: str) -> None:
    config = load(make_config(make_project, store_url, launch=NOW - timedelta(hours=1)))
    with Store(config.store_url) as store:
        seed(store, config, [(ANGRY[0], NOW - timedelta(days=2)),
                             (ORDINARY, NOW - timedelta(days=1))])
        made = report(config, store)
    assert made.verdict == ("No posts since the launch on 20 Nov yet; before it, 50 % of "
                            "posts were negative.")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles",
                                  "Asia/Kolkata"])
def test_days_are_local_across_a_dst_change(make_project, store_url: str, zone: str) -> None:
    """Berlin leaves summer time on 25 Oct, Los Angeles on 1 Nov; Kolkata is UTC+5:30."""
    tz = ZoneInfo(zone)
    launch = datetime(2026, 10, 29, tzinfo=tz)  # a date alone: local midnight
    now = datetime(2026, 11, 3, 12, tzinfo=tz)
    config = load(make_project([], None, store=store_url, timezone=zone, events=[
        {"name": "New editor", "date": "2026-10-29", "keywords": ["new editor"], "days": 7}]))
    late = [datetime(2026, 10, day, 23, 30, tzinfo=tz) for day in (24, 25, 26)]  # before
    late += [datetime(2026, 10, 31, 23, 30, tzinfo=tz), datetime(2026, 11, 1, 23, 30, tzinfo=tz)]
    with Store(config.store_url) as store:
        seed(store, config, [(ANGRY[i % 3] if at > launch else ORDINARY, at)
                             for i, at in enumerate(late)])
        made = report(config, store, now.astimezone(UTC))
    assert made.launch == launch.astimezone(UTC) and made.timezone == zone
    days = list(made.by_day.index)
    assert days[0].isoformat() == "2026-10-22" and days[-1].isoformat() == "2026-11-03"
    assert len(days) == len(set(days)) == 13  # one row per local day, the DST day too
    for at in late:  # 23:30 local is that local day, whatever UTC says
        assert made.by_day.loc[at.date(), "posts"] == 1
    assert (made.posts_before, made.posts_after) == (3, 2)
    assert made.verdict.startswith("Since the launch on 29 Oct, negative posts are 100 %")
    markdown = backlash.render(made, "backlash.md.j2")
    assert "Launched 2026-10-29 00:00;" in markdown and f"({zone})" in markdown


# --- the numbers behind it ---------------------------------------------------------------------

def test_wilson_and_newcombe_give_the_published_intervals() -> None:
    none, half = wilson(0, 10), wilson(5, 10)
    assert (none.low, round(none.high, 4)) == (0.0, 0.2775)
    assert (round(half.low, 4), round(half.high, 4)) == (0.2366, 0.7634)
    diff = change(wilson(48, 80), wilson(56, 70))  # Newcombe (1998), table II, example (a)
    assert (round(diff.low, 4), round(diff.high, 4)) == (0.0524, 0.3339) and diff.clear
    assert wilson(0, 0).value is None and change(wilson(0, 0), half).value is None


def test_the_days_before_are_weighted_to_the_weekdays_after() -> None:
    """Sundays are calm here: after a launch on a Sunday, Sundays before weigh most."""
    before_days = [6, 6, 0, 0, 1, 1]
    negative = [False, False, True, True, True, True]
    weights = weekday_weights(before_days, [6, 6, 6, 0])
    assert weights == [2.25, 2.25, 0.75, 0.75, 0.0, 0.0]
    matched = weighted_share(negative, weights)
    assert matched.value == pytest.approx(0.25) and matched.n < len(before_days)
    assert weighted_share(negative, [1.0] * 6).value == pytest.approx(4 / 6)
    assert weekday_weights(before_days, [3]) == [1.0] * 6  # no Thursday before: unmatched


# --- the command -------------------------------------------------------------------------------

def test_reports_are_written_and_escape_posts(project: tuple[Path, Config, Store],
                                              tmp_path: Path) -> None:
    _, config, store = project
    made = report(config, store)
    paths = backlash.write(made, tmp_path / "reports")
    assert sorted(p.name for p in paths) == [
        "backlash-new-editor.html", "backlash-new-editor.md", "backlash-new-editor.png",
        "backlash-new-editor.trend.png"]
    html = (tmp_path / "reports" / "backlash-new-editor.html").read_text()
    assert "<script>alert" not in html and "https://t.example" not in html.replace(
        "&lt;img src=https://t.example", "")
    assert html.count("data:image/png;base64,") == 2 and "(launch)" in html
    assert "clearly worse" in html
    markdown = (tmp_path / "reports" / "backlash-new-editor.md").read_text()
    assert f"**{made.verdict}**" in markdown and "<script>" not in markdown
    assert "| posts a day | 2.0 | 6.33 | |" in markdown


def test_json_for_other_tools(project: tuple[Path, Config, Store]) -> None:
    path, _, _ = project
    result = cli("New editor", "--format", "json", "--config", str(path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["event"] == "New editor" and data["verdict"].startswith("Since the launch")
    negative = data["figures"]["negative"]  # made as of now: the window is past the seeded days
    assert negative["after"]["share"] == pytest.approx(13 / 19, abs=1e-4)
    assert negative["change"]["clear"] is True and data["posts"] == {"before": 14, "after": 19}
    assert sum(d["posts"] for d in data["by_day"]) == 33
    assert isinstance(data["spikes"], list) and isinstance(data["complaints"], list)


def test_list_and_compare(project: tuple[Path, Config, Store]) -> None:
    path, _, store = project
    settings = yaml.safe_load(path.read_text())
    settings["events"].append({"name": "Old logo", "date": "2026-09-01",
                               "keywords": ["logo"]})
    path.write_text(yaml.safe_dump(settings))
    listed = cli("--list", "--config", str(path))
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.index("New editor (") < listed.stdout.index("Old logo (2026-09-01")
    assert "No posts from all sources in the 14 days before or since" in listed.stdout
    compared = cli("--compare", "new editor", "Old logo", "--config", str(path))
    assert compared.exit_code == 0, compared.output
    lines = compared.stdout.splitlines()
    assert lines[0].split() == ["New", "editor", "Old", "logo"]
    assert any(line.startswith("negative") and "clear" in line for line in lines)
    as_json = json.loads(cli("--list", "--format", "json", "--config", str(path)).stdout)
    assert [r["event"] for r in as_json] == ["New editor", "Old logo"]


def test_list_and_compare_name_the_zone_of_the_launch(make_project, store_url: str) -> None:
    """A launch at midnight in St John's is 03:30 UTC: --list and --compare show it as the
    report does, in the configured zone, and say which zone that is."""
    path = make_config(make_project, store_url, zone="America/St_Johns",
                       launch=datetime(2026, 11, 17, 3, 30, tzinfo=UTC))
    listed = cli("--list", "--config", str(path))
    assert listed.exit_code == 0, listed.output
    assert "New editor (2026-11-17 00:00 NST," in listed.stdout
    compared = cli("--compare", "New editor", "New editor", "--config", str(path))
    assert compared.exit_code == 0, compared.output
    launched = next(line for line in compared.stdout.splitlines() if line.startswith("launched"))
    assert launched.split()[1:] == ["2026-11-17", "00:00", "NST"] * 2


@pytest.mark.parametrize("args", [[], ["New editor", "--list"], ["--send", "--list"],
                                  ["New editor", "--send"]])  # the last: no report.to
def test_usage_errors(project: tuple[Path, Config, Store], args: list[str]) -> None:
    path, _, _ = project
    result = cli(*args, "--config", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_an_unknown_event_is_a_clear_error(project: tuple[Path, Config, Store]) -> None:
    path, _, _ = project
    for args in (["New logo"], ["--compare", "New editor", "New logo"]):
        result = cli(*args, "--config", str(path))
        assert result.exit_code == 2
        assert "no event named 'New logo' (events: 'New editor')" in result.stderr


# --- by e-mail ---------------------------------------------------------------------------------

def mailing(path: Path, port: int, **report: Any) -> Path:
    settings = yaml.safe_load(path.read_text())
    settings["receivers"] = {"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                                      "security": "none", "timeout": 5,
                                      "sender": "Feedback Monitor <monitor@acme.test>",
                                      "to": ["ops@acme.test"]}}
    settings["events"][0]["report"] = {"at": "08:00", "to": ["lead@acme.test"], **report}
    path.write_text(yaml.safe_dump(settings))
    return path


def test_send_mails_the_report_once_a_day(project: tuple[Path, Config, Store]) -> None:
    path, _, _ = project
    with smtp_server() as (mailbox, port):
        mailing(path, port)
        first = cli("New editor", "--send", "--config", str(path))
        assert first.exit_code == 0, first.output
        assert "sent to lead@acme.test" in first.stdout
        again = cli("New editor", "--send", "--config", str(path))
        assert again.exit_code == 0 and "already sent to lead@acme.test" in again.stdout
        (recipient, message), = mailbox.received()
    assert recipient == "lead@acme.test"
    assert message["Subject"].startswith("[feedback-monitor] Launch New editor: ")
    plain, related = message.get_payload()
    html_part, *images = related.get_payload()
    assert [i.get_content_type() for i in images] == ["image/png", "image/png"]
    assert all(f'src="cid:{i["Content-ID"].strip("<>")}"' in html_part.get_content()
               for i in images)
    assert "Since the launch" in plain.get_content() and "data:image" not in \
        html_part.get_content()


def test_the_daemon_mails_it_while_the_launch_is_young(
        project: tuple[Path, Config, Store]) -> None:
    path, _, store = project
    launch = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    settings = yaml.safe_load(path.read_text())
    settings["events"][0]["date"] = launch.isoformat()
    path.write_text(yaml.safe_dump(settings))
    with smtp_server() as (mailbox, port):
        config = load(mailing(path, port, until="10d"))
        event = find_event(watched(config.main.events, config.timezone), "New editor")
        assert young(event, launch + timedelta(days=9))
        assert not young(event, launch - timedelta(seconds=1))
        assert not young(event, launch + timedelta(days=10))
        daemon = Daemon(path)
        try:
            daemon._launch_report("New editor")
            daemon._launch_report("New editor")  # a second run that day sends nobody anything
        finally:
            daemon.store.close()
            for lock in daemon.single or ():  # the daemon's SQLite locks, held for its life
                lock.close()
        assert [r for r, _ in mailbox.received()] == ["lead@acme.test"]
    today = datetime.now(UTC).date()
    assert store.report_send_states(report_key("New editor", today))["lead@acme.test"][
        "state"] == "sent"
    assert (config.reports_dir / "backlash-new-editor.html").exists()


def test_check_wants_an_email_receiver_for_a_launch_report(
        project: tuple[Path, Config, Store]) -> None:
    path, _, _ = project
    settings = yaml.safe_load(path.read_text())
    settings["events"][0]["report"] = {"at": "08:00", "to": ["lead@acme.test"]}
    path.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "events[0].report: set digest.via" in result.output


@needs_chromium
def test_the_report_opens_in_chromium_and_looks_whole(project: tuple[Path, Config, Store],
                                                      tmp_path: Path) -> None:
    _, config, store = project
    page = next(p for p in backlash.write(report(config, store), tmp_path / "reports")
                if p.suffix == ".html")
    shot = tmp_path / "backlash.png"
    done = chromium(str(tmp_path / "profile"), f"--screenshot={shot}", "--window-size=900,2400",
                    page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
    found = probe(page, tmp_path / "profile", end="backlash-end")
    assert found == {"images": 2, "broken": [], "overflow": False, "end": True, "scripts": 0,
                     "console": []}, found
