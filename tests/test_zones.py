"""Time zones everywhere: every printed time and every day boundary is in the configured
``timezone``; machine output (JSON, CSV) stays UTC ISO 8601.

Each test runs under UTC, Europe/Berlin, America/Los_Angeles and Asia/Kolkata (a half-hour
offset), on posts at fixed times around a local midnight and around the two DST changes of
autumn 2026 (Berlin on 25 October, Los Angeles on 1 November), the repeated hour included.
Expected strings are computed with zoneinfo, never written out for one zone only.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.backlash.spikes import Spike
from monitor.backlash.storms import file_storms
from monitor.cli import main
from monitor.config import load
from monitor.model import Fetch, Flag, Post, Score
from monitor.outbox import record
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store
from monitor.store.schema import flags

ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"]
SHOWN = "%Y-%m-%d %H:%M %Z"  # queue show and silences: local, with the abbreviation
DST_DAYS = [date(2026, 10, 25), date(2026, 11, 1)]  # 25 hours long in Berlin and LA


def moments(zone: ZoneInfo) -> list[datetime]:
    """Posts at 23:30 and 00:30 local around both DST changes, and at both readings of
    Berlin's and Los Angeles's repeated hour (fixed UTC instants), oldest first."""
    local = [datetime(2026, 10, 24, 23, 30), datetime(2026, 10, 25, 0, 30),
             datetime(2026, 10, 25, 23, 30), datetime(2026, 10, 31, 23, 30),
             datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 1, 23, 30)]
    repeated = [datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # Berlin 02:30 CEST
                datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # Berlin 02:30 CET
                datetime(2026, 11, 1, 8, 30, tzinfo=UTC),  # Los Angeles 01:30 PDT
                datetime(2026, 11, 1, 9, 30, tzinfo=UTC)]  # Los Angeles 01:30 PST
    found = {t.replace(tzinfo=zone).astimezone(UTC) for t in local} | set(repeated)
    return sorted(found)


def author(index: int) -> str:
    return f"writer-{index:02d}"


@pytest.fixture(params=ZONES)
def zoned(request: pytest.FixtureRequest, make_project, monkeypatch: pytest.MonkeyPatch):
    """A project in the zone, its posts saved and flagged at their own times, one case each:
    (config path, zone, [(post time, case id)])."""
    monkeypatch.delenv("MONITOR_USER", raising=False)
    zone = ZoneInfo(request.param)
    path = make_project([{"name": "blog", "kind": "rss", "url": "http://127.0.0.1:9/feed"}],
                        timezone=request.param)
    store = Store(load(path).store_url)
    filed = []
    for i, at in enumerate(moments(zone)):
        post = Post("blog", f"p{i}", f"https://blog.test/p{i}", author(i), f"Thread {i}",
                    f"post {i}: the new editor lost my work", at, thread_id=f"t{i}")
        store.save_fetch("blog", "rss", Fetch((post,), None), at)
        stored = store.stored_post("blog", post.external_id)
        assert stored is not None
        flag = Flag("medium", ("r1",), (f"r1: says {i}",), "backlash")
        with store.transaction() as db:
            record(db, [(stored, Score(-0.6, 0.0, 0.4, 0.6), flag)], at, {}, None)
        case = next(c for c in store.list_cases(now=at) if c.post_id == stored.id)
        filed.append((at, case.id))
    store.close()
    return path, zone, filed


def monitor(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.output
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)  # the documented ones
    return result


def test_queue_show_prints_every_time_in_the_zone(zoned) -> None:
    path, zone, filed = zoned
    for at, case_id in filed:
        shown = monitor("queue", "show", str(case_id), "--config", str(path))
        assert shown.exit_code == 0, shown.output
        local = at.astimezone(zone).strftime(SHOWN)
        assert f"opened {local}  due " in shown.stdout
        assert f"on blog, {local}  medium" in shown.stdout  # the post's line
        assert f"  {local}  monitor  opened" in shown.stdout  # the history
        detail = json.loads(monitor("queue", "show", str(case_id), "--json", "--config",
                                    str(path)).stdout)
        assert detail["case"]["opened_at"] == at.isoformat()  # JSON: UTC ISO 8601
        due = datetime.fromisoformat(detail["case"]["due_at"])
        assert f"due {due.astimezone(zone).strftime(SHOWN)} (OVERDUE " in shown.stdout


def test_the_repeated_hour_is_told_apart(zoned) -> None:
    path, zone, filed = zoned
    by_clock: dict[str, list[int]] = {}
    for at, case_id in filed:
        by_clock.setdefault(f"{at.astimezone(zone):%Y-%m-%d %H:%M}", []).append(case_id)
    repeated = [ids for ids in by_clock.values() if len(ids) > 1]
    assert len(repeated) == (1 if zone.key in ("Europe/Berlin", "America/Los_Angeles") else 0)
    for ids in repeated:  # one wall clock, two instants: two abbreviations
        opened = {monitor("queue", "show", str(i), "--config", str(path)).stdout
                  .split("opened ")[1].split("  due")[0] for i in ids}
        assert len(opened) == 2, opened


def test_queue_list_works_and_its_json_is_utc(zoned) -> None:
    path, _zone, filed = zoned
    listed = monitor("queue", "list", "--config", str(path))
    assert listed.exit_code == 0 and "OVERDUE" in listed.stdout
    rows = json.loads(monitor("queue", "list", "--json", "--config", str(path)).stdout)
    assert sorted(r["opened_at"] for r in rows) == sorted(at.isoformat() for at, _ in filed)


def test_status_prints_local_times_and_names_the_zone(zoned) -> None:
    path, zone, filed = zoned
    status = monitor("status", "--config", str(path))
    assert status.exit_code == 0, status.output  # quiet, not broken
    last = filed[-1][0].astimezone(zone).strftime("%Y-%m-%d %H:%M")
    row = next(line for line in status.stdout.splitlines() if line.startswith("blog "))
    assert last in row
    assert f"(times in {zone.key})" in status.stdout
    as_json = json.loads(monitor("status", "--json", "--config", str(path)).stdout)
    assert as_json["sources"][0]["last_success_at"] == filed[-1][0].isoformat()

    store = Store(load(path).store_url)
    for _ in range(3):  # alerts.after_failures: broken
        store.record_failure("blog", "rss", "HTTP 500", datetime.now(UTC))
    store.close()
    broken = monitor("status", "--config", str(path))
    assert broken.exit_code == 1 and " broken " in broken.stdout
    assert last in broken.stdout and f"(times in {zone.key})" in broken.stdout


@pytest.mark.parametrize("day", DST_DAYS)
def test_the_digest_cuts_the_local_day(zoned, day: date) -> None:
    path, zone, filed = zoned
    made = monitor("digest", "--day", day.isoformat(), "--config", str(path))
    assert made.exit_code == 0, made.output
    md = Path(next(p for p in made.stdout.split() if p.endswith(".md"))).read_text()
    assert f"Times in {zone.key}." in md
    for i, (at, _) in enumerate(filed):
        local = at.astimezone(zone)
        if local.date() == day:  # 23:30 local is still that day, wherever UTC is
            assert f"({author(i)}, blog, {local:%H:%M}" in md, (author(i), md)
        else:
            assert author(i) not in md


def test_export_is_utc_and_since_is_a_local_day(zoned) -> None:
    path, zone, filed = zoned
    lines = monitor("export", "posts", "--config", str(path)).stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    expected = [at.isoformat().replace("+00:00", "Z") for at, _ in filed]
    assert [p["published_at"] for p in exported] == expected
    table = monitor("export", "posts", "--format", "csv", "--config", str(path)).stdout
    assert [r["published_at"] for r in csv.DictReader(io.StringIO(table))] == expected
    since = monitor("export", "posts", "--since", "2026-10-25", "--config", str(path))
    assert since.exit_code == 0
    midnight = datetime(2026, 10, 25, tzinfo=zone)
    assert [json.loads(line)["author"] for line in since.stdout.splitlines()] == \
        [author(i) for i, (at, _) in enumerate(filed) if at >= midnight]


def test_silences_and_deliveries(zoned) -> None:
    path, zone, _ = zoned
    added = monitor("silence", "add", "--match", "author=troll", "--for", "30d", "--reason",
                    "known", "--config", str(path))
    assert added.exit_code == 0, added.output
    store = Store(load(path).store_url)
    [silence] = store.silences(datetime.now(UTC))
    store.close()
    until = silence["ends_at"].astimezone(zone).strftime(SHOWN)
    assert added.stdout == f"silence {silence['id']} until {until}\n"
    listed = monitor("silence", "list", "--config", str(path))
    assert f"until {until}  author=troll" in listed.stdout
    retried = monitor("deliveries", "retry", "--config", str(path))
    assert retried.exit_code == 0 and retried.stdout == "0 dead deliveries will be sent again\n"


# --- storm texts -----------------------------------------------------------------------------

def clock(moment: datetime, day: datetime) -> str:
    """A time as a storm's text says it on ``day``: ``14:00``, ``24:00`` for the midnight
    ending the day, else with its own date."""
    if moment.date() == day.date():
        return f"{moment:%H:%M}"
    if moment.date() == day.date() + timedelta(days=1) and (moment.hour, moment.minute) == (0, 0):
        return "24:00"
    return f"{moment:%a} {moment.day} {moment:%b} {moment:%H:%M}"


def head(start: datetime, zone_name: str) -> str:
    return f"{start:%a} {start.day} {start:%b} {start.year} ({zone_name}): "


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("hour", [  # UTC hours: around both DST changes and a local midnight
    datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 8, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC),
    datetime(2026, 11, 20, 14, tzinfo=UTC)])
def test_a_storm_says_its_hour_in_the_zone_and_names_it(zone_name: str, hour: datetime) -> None:
    zone = ZoneInfo(zone_name)
    spike = Spike(start=hour, end=hour + timedelta(hours=1), peak_at=hour, count=42, total=42,
                  baseline=3.0, score=8.14, freq="h", season=24)
    start, end = hour.astimezone(zone), (hour + timedelta(hours=1)).astimezone(zone)
    assert spike.describe("negative posts about New editor", zone) == (
        f"{head(start, zone_name)}42 negative posts about New editor in the hour to "
        f"{clock(end, start)}, typical 3 at that hour (z 8.1)")
    assert spike.describe() == spike.describe(zone=UTC)  # no zone: as counted (UTC)


@pytest.mark.parametrize("zone_name", ZONES)
def test_a_long_storm_across_local_midnight_and_dst(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    first = datetime(2026, 10, 24, 21, tzinfo=UTC)  # 6 hours over Berlin's change
    spike = Spike(start=first, end=first + timedelta(hours=6),
                  peak_at=first + timedelta(hours=4), count=57, total=194, baseline=4.5,
                  score=12.3, freq="h", season=1)
    start, end, peak_end = (t.astimezone(zone) for t in (
        first, first + timedelta(hours=6), first + timedelta(hours=5)))
    assert spike.describe("angry posts", zone) == (
        f"{head(start, zone_name)}194 angry posts in 6 hours from {clock(start, start)} to "
        f"{clock(end, start)}, peak 57 in the hour to {clock(peak_end, start)}, typical 4.5 "
        "an hour (z 12.3)")


ANGRY = ["I hate the new editor, it is awful and slow",
         "The new editor is terrible, I hate what you did",
         "Awful. The new editor broke my whole workflow, I hate it"]
RULES = """\
rules:
  - {id: hate, severity: high, category: backlash, when: {words: [hate, awful, terrible]}}
"""


@pytest.mark.parametrize("zone_name", ZONES)
def test_a_filed_storm_is_told_in_the_configured_zone(make_project, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    now = datetime.now(UTC).replace(minute=40, second=0, microsecond=0)
    path = make_project([], RULES, timezone=zone_name, events=[
        {"name": "New editor", "date": (now - timedelta(days=3)).isoformat(),
         "keywords": ["new editor"]}])
    config = load(path)
    store = Store(config.store_url)
    rng, hour = random.Random(7), now.replace(minute=0)
    texts = [(rng.choice(ANGRY), hour - timedelta(hours=h, minutes=40))
             for h in range(8 * 24, 0, -1) if rng.random() < 0.3]
    texts += [(ANGRY[i % 3], hour + timedelta(minutes=i % 39)) for i in range(30)]
    found = tuple(Post("forum", f"p{i}", f"https://forum.test/{i}", f"user{i}", None, text, at,
                       thread_id=f"t{i}") for i, (text, at) in enumerate(texts))
    store.save_fetch("forum", "rss", Fetch(found, None), now)
    judge = Runtime.of(config)
    score_pending(store, judge)
    assert file_storms(store, judge, now) == 1
    [case] = [c for c in store.list_cases(now=now) if c.storm]
    with store.engine.connect() as db:
        reasons = db.execute(select(flags.c.reasons)
                             .where(flags.c.post_id == case.post_id)).scalar_one()
    store.close()
    start, end = hour.astimezone(zone), (hour + timedelta(hours=1)).astimezone(zone)
    for said in (case.text, reasons[0]):  # the storm post's text, its flag's reason
        assert said.startswith(head(start, zone_name)), said
        assert f"in the hour to {clock(end, start)}, typical" in said
