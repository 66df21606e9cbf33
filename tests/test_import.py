"""``monitor import``: history stored with its own dates, scored and flagged, filed as cases
only when asked, never twice, the same post as when collected live; on SQLite and PostgreSQL.

The files are tests/fixtures/import/ (shapes of real Reddit dumps, see its README).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

import monitor.importer as importer
from monitor.cli import main
from monitor.model import Fetch, Post
from monitor.store import Store
from monitor.store.schema import cases, deliveries, flags, posts, scores

FILES = Path(__file__).parent / "fixtures" / "import"
DUMPS = [FILES / "RS_acmeapp.ndjson", FILES / "RC_acmeapp.ndjson"]
SOURCE = {"name": "acme-reddit", "kind": "reddit", "subreddits": ["acmeapp"],
          "client_id": "id", "client_secret": "secret"}
RULES = """rules:
  - id: anything-negative
    severity: high
    when: {compound: {max: -0.05}}
"""


@pytest.fixture
def project(make_project, store_url: str) -> Path:
    return make_project([SOURCE], RULES, store=store_url)


def monitor(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def imported(project: Path, *args: str) -> Result:
    result = monitor("import", *map(str, DUMPS), "--source", "acme-reddit", "--config",
                     str(project), *args)
    assert result.exit_code == 0, result.output
    return result


def store_of(project: Path) -> Store:
    from monitor.config import load

    return Store(load(project).store_url)


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as db:
        return {t.name: db.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (posts, scores, flags, cases, deliveries)}


def test_history_keeps_its_dates_is_flagged_and_pages_nobody(project: Path) -> None:
    result = imported(project)
    assert "imported 6 new posts from 2 file(s)" in result.output
    assert "0 already stored" in result.output
    assert "skipped 6 records" in result.output and "RS_acmeapp.ndjson:3" in result.output
    assert "0 filed in cases" in result.output
    store = store_of(project)
    with store.engine.connect() as db:
        rows = db.execute(select(posts.c.external_id, posts.c.published_at,
                                 posts.c.first_seen_at, posts.c.imported_at,
                                 flags.c.flagged_at)
                          .outerjoin(flags, flags.c.post_id == posts.c.id)).all()
    assert len(rows) == 6
    for row in rows:
        assert row.first_seen_at == row.published_at < datetime(2024, 1, 1, tzinfo=UTC)
        assert row.imported_at is not None
        assert row.flagged_at in (None, row.published_at)  # last year's anger is dated so
    found = counts(store)
    assert found["scores"] == 6 and found["flags"] >= 1
    assert found["cases"] == found["deliveries"] == 0
    store.close()


def test_importing_twice_adds_nothing(project: Path) -> None:
    imported(project)
    before = counts(store_of(project))
    again = imported(project)
    assert "imported 0 new posts" in again.output and "6 already stored" in again.output
    assert counts(store_of(project)) == before


def test_a_post_collected_live_later_is_the_same_post(project: Path) -> None:
    imported(project)
    store = store_of(project)
    with store.engine.connect() as db:
        row = db.execute(select(posts).where(posts.c.external_id == "t3_c7fvha")).one()
    live = Post(**{k: getattr(row, k) for k in ("source", "external_id", "url", "author",
                                                 "title", "text", "published_at",
                                                 "thread_id", "parent_id", "reach")})
    saved = store.save_fetch("acme-reddit", "reddit", Fetch((live,), None),
                             datetime.now(UTC))
    assert saved.new == saved.edited == ()
    store.close()


def test_open_cases_files_them_but_sends_nothing(project: Path) -> None:
    result = imported(project, "--open-cases")
    found = counts(store_of(project))
    assert found["cases"] >= 1 and found["deliveries"] == 0
    assert f"{found['flags']} filed in cases" in result.output


def test_a_rescore_never_files_imported_posts(project: Path) -> None:
    imported(project)
    rules = project.parent / "rules" / "test.yaml"
    rules.write_text(RULES.replace("max: -0.05", "max: 1.0"))  # every post flagged now
    result = monitor("rescore", "--config", str(project))
    assert result.exit_code == 0, result.output
    found = counts(store_of(project))
    assert found["flags"] == 6 and found["cases"] == found["deliveries"] == 0


def test_export_then_import_round_trips(project: Path, tmp_path: Path, make_project) -> None:
    imported(project)
    dumped = monitor("export", "posts", "--config", str(project))
    assert dumped.exit_code == 0, dumped.output
    (tmp_path / "posts.jsonl").write_text(dumped.stdout)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text(project.read_text())
    (other / "sources").mkdir()
    (other / "sources" / "test.yaml").write_text((project.parent / "sources" / "test.yaml")
                                                 .read_text())
    (other / "rules").mkdir()
    (other / "rules" / "test.yaml").write_text(RULES)
    if "sqlite" in (config := (other / "config.yaml")).read_text():
        config.write_text(config.read_text().replace(str(project.parent), str(other)))
        config.write_text("\n".join(line if not line.startswith("store:") else
                                    f"store: sqlite:///{other / 'copy.db'}"
                                    for line in config.read_text().splitlines()))
    else:
        pytest.skip("one PostgreSQL schema per test: the round trip is checked on SQLite")
    again = monitor("import", str(tmp_path / "posts.jsonl"), "--config", str(config))
    assert again.exit_code == 0, again.output
    assert "imported 6 new posts" in again.output
    back = monitor("export", "posts", "--config", str(config))
    keys = ("source", "external_id", "url", "author", "title", "text", "published_at",
            "first_seen_at", "thread_id", "parent_id", "reach", "compound", "flagged")
    first = sorted((tuple(json.loads(line)[k] for k in keys)
                    for line in dumped.stdout.splitlines()), key=str)
    second = sorted((tuple(json.loads(line)[k] for k in keys)
                     for line in back.stdout.splitlines()), key=str)
    assert first == second


def test_worker_processes_store_what_one_process_stores(project: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def scored() -> list[tuple]:
        store = store_of(project)
        with store.engine.connect() as db:
            found = sorted(db.execute(select(posts.c.external_id, scores.c.compound)
                                      .join(scores, scores.c.post_id == posts.c.id)).all())
        store.close()
        return found

    monkeypatch.setattr(importer, "BATCH", 2)  # three batches: the 2nd and 3rd in workers
    imported(project, "--jobs", "2")
    pooled = scored()
    store = store_of(project)
    with store.engine.begin() as db:
        for table in (flags, scores, posts):
            db.execute(table.delete())
    store.close()
    monkeypatch.setattr(importer, "BATCH", 2_000)
    imported(project, "--jobs", "1")
    assert pooled == scored() and len(pooled) == 6


def test_bad_use_exits_2_with_a_message(project: Path, tmp_path: Path) -> None:
    unknown = monitor("import", str(DUMPS[0]), "--source", "nope", "--config", str(project))
    assert unknown.exit_code == 2 and "'nope' is not a configured source" in unknown.output
    missing = monitor("import", str(DUMPS[0]), "--config", str(project))
    assert missing.exit_code == 2 and "--source NAME" in missing.output
    nothing = monitor("import", str(tmp_path / "absent.ndjson"), "--config", str(project))
    assert nothing.exit_code == 2 and "does not exist" in nothing.output
    (tmp_path / "notes.txt").write_text("just some words\n")
    other = monitor("import", str(tmp_path / "notes.txt"), "--source", "acme-reddit",
                    "--config", str(project))
    assert other.exit_code == 2 and "notes.txt" in other.output
    assert counts(store_of(project))["posts"] == 0


def test_a_cases_export_is_refused_saying_import_takes_posts(project: Path,
                                                             tmp_path: Path) -> None:
    imported(project, "--open-cases")
    for form in ("jsonl", "csv"):
        out = tmp_path / f"cases.{form}"
        made = monitor("export", "cases", "--format", form, "-o", str(out),
                       "--config", str(project))
        assert made.exit_code == 0 and out.stat().st_size, made.output
        before = counts(store_of(project))
        refused = monitor("import", str(out), "--config", str(project))
        assert refused.exit_code == 2, refused.output
        assert f"{out}: a `monitor export cases` file, but import takes posts" in refused.stderr
        assert "skipped" not in refused.stdout and counts(store_of(project)) == before


def test_a_dump_goes_only_to_a_source_of_its_kind(make_project, store_url: str) -> None:
    blog = {"name": "blog-comments", "kind": "rss", "url": "https://blog.test/comments/feed/"}
    project = make_project([SOURCE, blog], RULES, store=store_url)
    reddit = monitor("import", str(DUMPS[0]), "--source", "blog-comments",
                     "--config", str(project))
    assert reddit.exit_code == 2, reddit.output
    assert ("a Reddit dump goes to a source of kind reddit, and --source 'blog-comments' is "
            "of kind rss") in reddit.stderr
    wordpress = monitor("import", str(FILES / "wordpress-export.xml"), "--source",
                        "acme-reddit", "--config", str(project))
    assert wordpress.exit_code == 2, wordpress.output
    assert "a WordPress export goes to a source of kind rss" in wordpress.stderr
    both = monitor("import", str(FILES / "wordpress-export.xml"), str(DUMPS[0]),
                   "--source", "blog-comments", "--config", str(project))
    assert both.exit_code == 2 and "RS_acmeapp.ndjson" in both.stderr
    assert counts(store_of(project))["posts"] == 0  # nothing stored from either file
    fitting = monitor("import", str(FILES / "wordpress-export.xml"), "--source",
                      "blog-comments", "--config", str(project))
    assert fitting.exit_code == 0, fitting.output


def test_dates_no_post_can_have_are_kept_in_range_and_shown_in_any_zone(
        make_project, tmp_path: Path) -> None:
    """Year 1 and year 9999 (a hostile feed's, a broken dump's) overflowed once shown in a
    zone far from UTC: `queue show` and the digest died with a traceback."""
    dump = tmp_path / "odd.ndjson"
    dump.write_text("".join(json.dumps(
        {"id": name, "subreddit": "acmeapp", "author": "u", "title": name,
         "selftext": "I hate this redesign, it is awful", "created_utc": when}) + "\n"
        for name, when in [("ancient", -62135596800), ("future", 253402300799)]))
    for zone in ("America/St_Johns", "Pacific/Chatham"):
        project = make_project([SOURCE], RULES, timezone=zone)
        result = monitor("import", str(dump), "--source", "acme-reddit", "--open-cases",
                         "--config", str(project))
        assert result.exit_code == 0, result.output
        with store_of(project).engine.connect() as db:
            dated = sorted(db.execute(select(posts.c.published_at)).scalars())
        assert [d.replace(tzinfo=UTC) if d.tzinfo is None else d for d in dated] == [
            datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)]
        for args in (["queue", "show", "1"], ["queue", "show", "2"], ["queue", "list"],
                     ["digest", "--day", "today", "--no-send"], ["export", "posts"]):
            result = monitor(*args, "--config", str(project))
            assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_digest_day_outside_the_years_of_posts_is_a_usage_error(project: Path,
                                                                   day: str) -> None:
    result = monitor("digest", "--day", day, "--no-send", "--config", str(project))
    assert result.exit_code == 2 and "give a day from 1971 to 2199" in result.output
