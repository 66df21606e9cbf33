"""Retention (``store.retention``, ``monitor prune``, the daemon's daily prune) on SQLite and,
when reachable, PostgreSQL: old posts lose their text, title, author, evidence and earlier
versions; their figures stay, so the digest and the launch report of past days say the same;
open cases, storms and alerts keep theirs; search forgets the words; batches commit one by one,
so a killed prune loses nothing and a second run finishes it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select, update
from webkit import NOW as WEB_NOW
from webkit import Clock, add_accounts, file, login, project

from monitor import cases as commands
from monitor.cli import main
from monitor.config import Config, load
from monitor.errors import ConfigError
from monitor.model import Fetch, Post
from monitor.pipeline import score_pending
from monitor.runtime import Runtime
from monitor.store import Store, retention
from monitor.store.schema import cases, flags, outcomes, post_edits, posts, scores
from monitor.units import DAY
from monitor.web.app import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(days=500)  # the prune's clock: everything seeded is old by then
CUTOFF = NOW + timedelta(days=1)
ANGRY = ["I hate the new editor, the toolbar is gone and saving is slow",
         "The new editor is terrible: the toolbar moved and I can't find anything",
         "Saving in the new editor takes forever, awful update, cancelling my subscription"]
CALM = ["Trying the new editor today, it seems fine so far",
        "How do I share a notebook with my team? Thanks for any pointers"]


# --- config ----------------------------------------------------------------------------------

def write_config(folder: Path, store: Any, **more: Any) -> Path:
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"store": store, **more}))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(path)
    return [str(p) for p in raised.value.problems]


def test_a_store_url_alone_means_no_retention(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, "sqlite:///data/x.db"))
    assert config.store_url == f"sqlite:///{(tmp_path / 'data' / 'x.db').resolve()}"
    assert config.retention is None and config.main.store.retention is None


def test_a_store_mapping_gives_the_url_and_the_retention(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, {"url": "sqlite:///data/x.db", "retention": "400d"}))
    assert config.store_url == f"sqlite:///{(tmp_path / 'data' / 'x.db').resolve()}"
    assert config.retention == config.main.store.retention == 400 * DAY
    alone = load(write_config(tmp_path, {"retention": "52w"}))  # the default database
    assert alone.store_url == f"sqlite:///{(tmp_path / 'monitor.db').resolve()}"
    assert alone.retention == 52 * 7 * DAY
    url = "postgresql+psycopg://me@db/monitor"
    assert load(write_config(tmp_path, {"url": url})).store_url == url


@pytest.mark.parametrize(("store", "more", "said"), [
    ({"retention": "soon"}, {}, "store.retention: not a duration: 'soon'"),
    ({"retention": "3d"}, {}, "store.retention: must be at least 7d"),
    ({"retention": -1}, {}, "store.retention: not a duration"),
    ({"retention": "20d"}, {}, "store.retention: must be longer than followup.window (30d)"),
    ({"retention": "60d"}, {"followup": {"window": "90d"}},
     "store.retention: must be longer than followup.window (90d)"),
    ({"url": "mysql://db/x", "retention": "400d"}, {}, "store.url: mysql:// is not supported"),
    ("mysql://db/x", {}, "store: mysql:// is not supported"),
    ({"rentention": "400d"}, {}, "store.rentention: unknown key"),
    (5, {}, "store: must be a database URL, or a mapping with url and retention"),
])
def test_a_broken_store_setting_names_its_key(tmp_path: Path, store: Any, more: dict,
                                              said: str) -> None:
    (found,) = problems(write_config(tmp_path, store, **more))
    assert found.startswith(f"config.yaml: {said}"), found


def test_shorter_retention_passes_with_a_shorter_follow_up(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"retention": "20d"}, followup={"window": "14d"})
    assert load(path).retention == 20 * DAY


def test_the_repo_config_and_a_new_project_still_pass(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    result = CliRunner().invoke(main, ["check", "--config", str(repo / "config.yaml")])
    assert result.exit_code == 0, result.output
    made = CliRunner().invoke(main, ["init", str(tmp_path / "new"), "--product", "Acme"])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(main, ["check", "--config", str(tmp_path / "new" /
                                                                "config.yaml")])
    assert result.exit_code == 0, result.output


# --- a store with history --------------------------------------------------------------------

def project_at(make_project: Any, store_url: str, **more: Any) -> Path:
    events = [{"name": "New editor", "date": (NOW - timedelta(days=2)).isoformat(),
               "keywords": ["new editor"], "days": 7}]
    return make_project([], None, store=store_url, events=events, **more)


def seed(store: Store, config: Config, texts: list[tuple[str, datetime]],
         source: str = "forum") -> list[int]:
    """Posts first seen at NOW (published at the times given), scored and filed."""
    saved = store.save_fetch(source, "rss", Fetch(tuple(
        Post(source, f"{source}{i}", f"https://{source}.example/t/{i}", f"user{i}",
             f"Title {i}", text, at) for i, (text, at) in enumerate(texts)), None), NOW)
    score_pending(store, Runtime.of(config))
    return list(saved.new)


@pytest.fixture
def history(make_project: Any, store_url: str) -> Iterator[tuple[Config, Store, list[int]]]:
    """Before the launch two calm posts a day, after it angry ones; the first angry post
    edited once; every case closed but the one of the last post."""
    config = load(project_at(make_project, store_url))
    store = Store(config.store_url)
    launch = NOW - timedelta(days=2)
    texts = [(CALM[i % 2], launch - timedelta(days=1 + i // 2, hours=i % 2)) for i in range(6)]
    texts += [(ANGRY[i % 3], launch + timedelta(hours=3 + i)) for i in range(6)]
    ids = seed(store, config, texts)
    edited = Post("forum", "forum6", "https://forum.example/t/6", "user6", "Title 6",
                  ANGRY[0] + " and my work is lost", texts[6][1])
    assert store.save_fetch("forum", "rss", Fetch((edited,), None), NOW).edited == (ids[6],)
    score_pending(store, Runtime.of(config))
    with store.transaction() as db:
        db.execute(update(cases).values(state="resolved"))
        last = db.execute(select(cases.c.id).order_by(cases.c.id.desc())).scalar()
        db.execute(update(cases).where(cases.c.id == last).values(state="new"))
    yield config, store, ids
    store.close()


def rows(store: Store, table: Any, *leave_out: str) -> dict[int, dict[str, Any]]:
    """``table``'s rows by post id, without the columns a prune clears."""
    with store.engine.connect() as db:
        return {r.post_id: {k: v for k, v in r._mapping.items() if k not in leave_out}
                for r in db.execute(select(table))}


def stored(store: Store) -> dict[int, Any]:
    with store.engine.connect() as db:
        return {r.id: r for r in db.execute(select(posts))}


def open_case_posts(store: Store) -> set[int]:
    from monitor.store.schema import case_posts

    with store.engine.connect() as db:
        return set(db.execute(select(case_posts.c.post_id).join(
            cases, cases.c.id == case_posts.c.case_id).where(cases.c.state == "new")).scalars())


def test_a_prune_drops_what_was_written_and_keeps_the_figures(
        history: tuple[Config, Store, list[int]]) -> None:
    _, store, ids = history
    before = stored(store)
    numbers = rows(store, scores, "worst_sentence", "evidence")
    flagged = rows(store, flags, "reasons")
    kept = open_case_posts(store)
    assert kept and len(flagged) > len(kept)
    assert any(r["evidence"] for r in rows(store, scores).values())
    done = store.prune_posts(CUTOFF, LATER)
    assert (done.posts, done.edits, done.cutoff) == (len(ids) - len(kept), 1, CUTOFF)
    after = stored(store)
    for post_id, row in after.items():
        if post_id in kept:
            assert row.text == before[post_id].text and row.author and row.pruned_at is None
            continue
        assert (row.text, row.title, row.author, row.pruned_at) == ("", None, None, LATER)
        for column in ("source", "external_id", "url", "published_at", "first_seen_at",
                       "content_hash", "version", "thread_id", "reach"):
            assert getattr(row, column) == getattr(before[post_id], column)
    assert rows(store, scores, "worst_sentence", "evidence") == numbers  # every number
    assert rows(store, flags, "reasons") == flagged  # severity, rules, category, tags
    for post_id, row in rows(store, scores).items():
        assert (row["worst_sentence"] is None and row["evidence"] is None) == (
            post_id not in kept)
    assert all(not r["reasons"] for p, r in rows(store, flags).items() if p not in kept)
    assert all(r["reasons"] for p, r in rows(store, flags).items() if p in kept)
    with store.engine.connect() as db:
        assert db.execute(select(post_edits)).all() == []
    assert store.last_pruned_at() == LATER


def test_a_pruned_post_fetched_again_unchanged_is_no_edit(
        history: tuple[Config, Store, list[int]]) -> None:
    _, store, ids = history
    store.prune_posts(CUTOFF, LATER)
    same = Post("forum", "forum1", "https://forum.example/t/1", "user1", "Title 1",
                CALM[1], NOW - timedelta(days=3))
    saved = store.save_fetch("forum", "rss", Fetch((same,), None), LATER)
    assert saved.new == () and saved.edited == ()


def test_open_cases_running_follow_ups_storms_and_alerts_keep_their_posts(
        make_project: Any, store_url: str) -> None:
    config = load(project_at(make_project, store_url))
    with Store(config.store_url) as store:
        ids = seed(store, config, [(text, NOW - timedelta(hours=i))
                                   for i, text in enumerate(ANGRY)])
        storm = seed(store, config, [("A storm about the new editor", NOW)], "event:New editor")
        alert = seed(store, config, [("forum is broken", NOW)], "system:alerts")
        with store.transaction() as db:
            found = db.execute(select(cases.c.id, cases.c.post_id).order_by(cases.c.id)).all()
            assert len(found) >= 2, found
            followed, closed = found[0].id, found[1].id
            db.execute(update(cases).where(cases.c.id.in_([followed, closed]))
                       .values(state="resolved"))
            db.execute(outcomes.insert().values(
                case_id=followed, outcome="too early", responded_at=NOW,
                window_ends_at=LATER + timedelta(days=1), evidence={}, updated_at=NOW))
        closed_post = found[1].post_id
        done = store.prune_posts(CUTOFF, LATER)
        after = stored(store)
        pruned = {i for i, r in after.items() if r.pruned_at is not None}
        assert closed_post in pruned and done.posts == len(pruned)
        assert found[0].post_id not in pruned  # its author is still followed
        assert not pruned & {*storm, *alert}
        assert all(after[i].text for i in ids if i != closed_post and i not in pruned)
        assert after[storm[0]].text and after[alert[0]].text


def test_search_forgets_pruned_words(history: tuple[Config, Store, list[int]]) -> None:
    _, store, _ = history
    assert store.search_case_ids("toolbar")
    store.prune_posts(CUTOFF, LATER)
    assert set(store.search_case_ids("toolbar")) <= set(_open_cases(store))
    assert set(store.search_case_ids("title")) == set(_open_cases(store))  # titles: gone too
    if store.engine.dialect.name == "sqlite":  # FTS5's own check: the index says what posts do
        with store.transaction() as db:
            db.exec_driver_sql("INSERT INTO posts_fts (posts_fts, rank) "
                               "VALUES ('integrity-check', 1)")


def _open_cases(store: Store) -> list[int]:
    with store.engine.connect() as db:
        return list(db.execute(select(cases.c.id).where(cases.c.state == "new")).scalars())


def test_a_dry_run_counts_and_writes_nothing(history: tuple[Config, Store, list[int]]) -> None:
    _, store, ids = history
    before = stored(store)
    counted = store.prune_posts(CUTOFF, LATER, dry_run=True)
    assert counted.dry_run and counted.batches == 0 and counted.edits == 1
    assert stored(store) == before and store.last_pruned_at() is None
    done = store.prune_posts(CUTOFF, LATER)
    assert done.posts == counted.posts > 0


def test_batches_commit_one_by_one_and_a_killed_prune_is_finished_by_the_next(
        history: tuple[Config, Store, list[int]], monkeypatch: pytest.MonkeyPatch) -> None:
    _, store, _ = history
    wanted = store.prune_posts(CUTOFF, LATER, dry_run=True).posts
    real, calls = retention._prune_batch, []

    def killed(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed in its third batch
        return real(*args)

    monkeypatch.setattr(retention, "_prune_batch", killed)
    with pytest.raises(KeyboardInterrupt):
        store.prune_posts(CUTOFF, LATER, batch=2)
    monkeypatch.setattr(retention, "_prune_batch", real)
    assert sum(r.pruned_at is not None for r in stored(store).values()) == 4  # two batches
    assert store.last_pruned_at() is None  # not done
    done = store.prune_posts(CUTOFF, LATER, batch=2)
    assert done.posts == wanted - 4 and done.batches == -(-(wanted - 4) // 2)
    assert store.prune_posts(CUTOFF, LATER, batch=2).posts == 0  # idempotent
    assert store.last_pruned_at() == LATER
    with pytest.raises(ValueError):
        store.prune_posts(CUTOFF, LATER, batch=0)


# --- what the reports make of a pruned store -----------------------------------------------

def test_the_launch_report_says_the_same_figures_once_pruned(
        history: tuple[Config, Store, list[int]], tmp_path: Path) -> None:
    from monitor.backlash import report as backlash
    from monitor.backlash.events import find_event, watched

    config, store, _ = history
    event = find_event(watched(config.main.events, config.timezone), "New editor")
    assert event is not None
    was = backlash.build(store, event, config.timezone, NOW)
    store.prune_posts(CUTOFF, LATER)
    now = backlash.build(store, event, config.timezone, NOW)
    assert (now.posts_before, now.posts_after) == (was.posts_before, was.posts_after) == (6, 6)
    assert now.median_compound == was.median_compound
    for name in ("negative", "angry", "churn", "complaint", "flagged"):
        if name in now.figures:
            assert now.figures[name] == was.figures[name], name
    assert list(now.by_day["posts"]) == list(was.by_day["posts"])
    assert list(now.by_day["negative"]) == list(was.by_day["negative"])
    assert now.themes == [] or all(t.complaint.count for t in now.themes)  # no text to group
    assert backlash.write(now, tmp_path / "reports")
    assert json.loads(backlash.to_json(now))["event"] == "New editor"


def test_the_digest_of_a_pruned_day_keeps_its_counts(
        history: tuple[Config, Store, list[int]], tmp_path: Path) -> None:
    from monitor.reports import digest, render

    config, store, _ = history
    day = NOW.astimezone(config.timezone).date()
    was = digest.build(store, day, config.timezone, now=NOW)
    store.prune_posts(CUTOFF, LATER)
    now = digest.build(store, day, config.timezone, now=NOW)
    assert (now.posts.value, now.flagged.value, now.negative.value, now.by_severity) == (
        was.posts.value, was.flagged.value, was.negative.value, was.by_severity)
    assert len(now.items) == len(was.items) > 0
    pruned = [i for i in now.items if not i.text]
    assert pruned and all(i.author is None and i.quote == "" for i in pruned)
    assert render.write(now, tmp_path / "reports")


# --- monitor prune ---------------------------------------------------------------------------

def prune(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["prune", "--config", str(config), *args])


def test_prune_without_a_retention_is_a_usage_mistake(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite:///monitor.db")
    result = prune(config)
    assert result.exit_code == 2
    assert "no retention: set store.retention in config.yaml" in result.output
    assert not (tmp_path / "monitor.db").exists()  # nothing opened for a mistake


@pytest.mark.parametrize(("span", "said"), [
    ("soon", "not a duration"), ("2d", "must be at least 7d"),
    ("10d", "must be longer than followup.window (30d)")])
def test_a_bad_older_than_exits_2_saying_why(tmp_path: Path, span: str, said: str) -> None:
    result = prune(write_config(tmp_path, {"retention": "400d"}), "--older-than", span)
    assert result.exit_code == 2 and "--older-than" in result.output and said in result.output


def test_a_store_that_cannot_be_opened_exits_1(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    result = prune(write_config(tmp_path, {"url": "sqlite:///taken/x.db", "retention": "400d"}))
    assert result.exit_code == 1 and "cannot open the store" in result.output


def test_prune_by_retention_and_by_older_than(make_project: Any, store_url: str) -> None:
    path = make_project([], None, store={"url": store_url, "retention": "400d"},
                        timezone="Europe/Berlin")
    config = load(path)
    old = datetime.now(UTC) - timedelta(days=401)
    with Store(config.store_url) as store:
        store.save_fetch("forum", "rss", Fetch(tuple(
            Post("forum", f"p{i}", f"https://f.example/{i}", "ann", None, "old words", old)
            for i in range(3)), None), old)
        store.save_fetch("forum", "rss", Fetch((Post(
            "forum", "new", "https://f.example/new", "ann", None, "new words", old),), None),
            datetime.now(UTC) - timedelta(days=100))
    dry = prune(path, "--dry-run")
    assert dry.exit_code == 0, dry.output
    cutoff = (datetime.now(UTC) - timedelta(days=400)).astimezone(config.timezone)
    assert dry.output.startswith(f"would prune 3 posts first seen before {cutoff:%Y-%m-%d}")
    assert "nothing changed" in dry.output and dry.output.rstrip().split()[-1] == "(--dry-run)"
    assert f"{cutoff:%Z}" in dry.output and f"{cutoff:%Z}" in ("CET", "CEST")
    done = prune(path)
    assert done.exit_code == 0 and done.output.startswith("pruned 3 posts first seen before")
    assert prune(path).output.startswith("pruned 0 posts")
    shorter = prune(path, "--older-than", "90d")
    assert shorter.exit_code == 0 and shorter.output.startswith("pruned 1 post first seen")


# --- the daemon ------------------------------------------------------------------------------

def test_the_daemon_prunes_once_a_day_when_retention_is_set(make_project: Any) -> None:
    from monitor.daemon import Daemon

    path = make_project([], None, store={"url": "sqlite:///monitor.db", "retention": "400d"})
    old = datetime.now(UTC) - timedelta(days=500)
    with Store(load(path).store_url) as store:
        store.save_fetch("forum", "rss", Fetch((Post(
            "forum", "p", "https://f.example/p", "ann", None, "old words", old),), None), old)
    daemon = Daemon(path)
    try:
        daemon._schedule(daemon.config)
        assert "prune" in {job.id for job in daemon.scheduler.get_jobs()}
        daemon._prune()
        assert daemon.store.last_pruned_at() is not None
        first = daemon.store.last_pruned_at()
        daemon._prune()  # within the day: not again
        assert daemon.store.last_pruned_at() == first
        with daemon.store.engine.connect() as db:
            assert db.execute(select(posts.c.text, posts.c.author)).one() == ("", None)
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()),
                                        "store": "sqlite:///monitor.db"}))
        daemon._reload(0, None)
        assert "prune" not in {job.id for job in daemon.scheduler.get_jobs()}
    finally:
        daemon.store.close()


# --- the web inbox ---------------------------------------------------------------------------

def test_a_pruned_case_still_opens_in_the_inbox_and_search_forgets_it(
        tmp_path: Path, store_url: str) -> None:
    config = load(project(tmp_path / "p", store_url))
    with Store(config.store_url) as store:
        add_accounts(store)
        closed = file(store, config, "p1", title="Drafts gone", text="Where did my drafts go?")
        kept = file(store, config, "p2", title="Drafts again", text="My drafts vanished")
        commands.resolve(store, closed, actor="ana", now=WEB_NOW)
        assert store.prune_posts(WEB_NOW + timedelta(days=1), WEB_NOW).posts == 1
        ana = login(create_app(config, store, Clock()), "ana")
        page = ana.get(f"/cases/{closed}")
        assert page.status_code == 200 and "drafts go" not in page.text
        found = ana.get("/?q=drafts&state=all")
        assert found.status_code == 200
        listed = found.text.split('id="cases"', 1)[-1]
        assert [int(i) for i in re.findall(r'data-case="(\d+)"', listed)] == [kept]
