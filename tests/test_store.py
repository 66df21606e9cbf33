"""The store on SQLite and (when reachable) PostgreSQL: dedupe, edits, cursors, cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from filing import save_scores
from sqlalchemy import select

from monitor.errors import StoreError
from monitor.model import STORM_SOURCE, Fetch, Flag, Post, Score
from monitor.store import SCHEMA_VERSION, Store, meta, post_edits, search

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FLAG = Flag(severity="high", rules=("r",), reasons=("r: mentions 'redesign'",),
            category="backlash", tags=("change",))


def post(external_id: str, text: str = "hello", title: str | None = "t") -> Post:
    return Post(source="blog", external_id=external_id, url=f"https://x.test/{external_id}",
                author="ann", title=title, text=text, published_at=NOW - timedelta(hours=1))


@pytest.fixture
def store(store_url: str):
    opened = Store(store_url)
    yield opened
    opened.close()


def test_schema_is_created_with_a_version(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    Store(store.url).close()  # opening again keeps the data and the version
    assert store.schema_version == SCHEMA_VERSION


def test_a_newer_schema_is_refused(store: Store) -> None:
    with store.engine.begin() as db:
        db.execute(meta.update().values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(StoreError, match="newer than this monitor"):
        Store(store.url)


def test_posts_are_unique_by_source_and_external_id(store: Store) -> None:
    first = store.save_fetch("blog", "rss", Fetch((post("a"), post("b"), post("a")), {"n": 1}),
                             NOW)
    assert len(first.new) == 2 and not first.edited
    again = store.save_fetch("blog", "rss", Fetch((post("a"), post("b")), {"n": 2}), NOW)
    assert again.new == () and again.edited == ()
    assert store.cursor("blog") == {"n": 2}
    assert len(list(store.export_posts())) == 2
    from dataclasses import replace

    elsewhere = store.save_fetch("forum", "rss", Fetch((replace(post("a"), source="forum"),),
                                                       None), NOW)
    assert len(elsewhere.new) == 1  # the same id in another source is another post


def test_an_edit_is_kept_as_an_edit_not_a_duplicate(store: Store) -> None:
    saved = store.save_fetch("blog", "rss", Fetch((post("a", "first words"),), None), NOW)
    later = NOW + timedelta(minutes=5)
    edited = store.save_fetch("blog", "rss", Fetch((post("a", "second words"),), None), later)
    assert edited.edited == saved.new and edited.new == ()
    rows = list(store.export_posts())
    assert len(rows) == 1 and rows[0]["text"] == "second words" and rows[0]["version"] == 2
    with store.engine.connect() as db:
        history = db.execute(select(post_edits)).all()
    assert [(h.version, h.text) for h in history] == [(1, "first words")]


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    store.save_fetch("blog", "rss", Fetch((post("a"),), None), NOW)
    row = next(store.export_posts())
    assert row["published_at"] == NOW - timedelta(hours=1)
    assert row["published_at"].tzinfo is UTC and row["first_seen_at"] == NOW


def test_export_leaves_storms_out(store: Store) -> None:
    """A storm is stored as a post of source ``event:<name>``, but nobody wrote it."""
    from dataclasses import replace

    from monitor.export import post_records

    storm = replace(post("storm:2026-11-02T08"), source=STORM_SOURCE + "New editor")
    store.save_fetch(storm.source, "storm", Fetch((storm,), None), NOW)
    store.save_fetch("blog", "rss", Fetch((post("a"),), None), NOW)
    assert [(r["source"], r["external_id"]) for r in post_records(store)] == [("blog", "a")]

def test_failures_are_counted_and_reset(store: Store) -> None:
    store.record_failure("blog", "rss", "HTTP 500", NOW)
    store.record_failure("blog", "rss", "HTTP 503", NOW)
    health = store.source_health()[0]
    assert (health["failures"], health["last_error"]) == (2, "HTTP 503")
    store.save_fetch("blog", "rss", Fetch((), {"etag": "x"}), NOW)
    health = store.source_health()[0]
    assert health["failures"] == 0 and health["last_success_at"] == NOW


def test_scoring_queue_and_one_case_per_flagged_post(store: Store) -> None:
    store.save_fetch("blog", "rss", Fetch((post("a"), post("b")), None), NOW)
    pending = store.posts_to_score()
    assert [p.post.external_id for p in pending] == ["a", "b"]
    score = Score(-0.8, 0.0, 0.5, 0.5)
    newly = save_scores(store, [(pending[0], score, FLAG), (pending[1], score, None)], NOW)
    assert [s.post.external_id for s, _ in newly] == ["a"]
    assert store.posts_to_score() == []
    # Scoring the same post again (a rescore, a re-run) never opens a second case.
    again = save_scores(store, [(pending[0], score, FLAG)], NOW)
    assert again == []
    cases = list(store.export_cases())
    assert len(cases) == 1 and cases[0]["state"] == "new" and cases[0]["severity"] == "high"
    # An edit puts the post back in the scoring queue, and still no second case.
    store.save_fetch("blog", "rss", Fetch((post("a", "changed"),), None), NOW)
    assert [p.post.text for p in store.posts_to_score()] == ["changed"]
    save_scores(store, [(store.posts_to_score()[0], score, FLAG)], NOW)
    assert len(list(store.export_cases())) == 1


def test_flagged_lists_worst_first_within_a_window(store: Store) -> None:
    store.save_fetch("blog", "rss", Fetch((post("a"), post("b"), post("c")), None), NOW)
    a, b, c = store.posts_to_score()
    low = Flag("low", ("r",), ("r: x",))
    save_scores(store, [(a, Score(-0.2, 0, 1, 0), low), (b, Score(-0.9, 0, 1, 0), FLAG),
                        (c, Score(-0.5, 0, 1, 0), FLAG)], NOW)
    rows = store.flagged(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert [r["external_id"] for r in rows] == ["b", "c", "a"]
    assert rows[0]["case_state"] == "new" and rows[0]["reasons"] == list(FLAG.reasons)
    assert store.flagged(NOW + timedelta(hours=1), NOW + timedelta(hours=2)) == []
    assert store.post_counts([(NOW, NOW + timedelta(seconds=1))])[0].read == 3


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        Store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(caught.value)


SCHEMA_2_COLUMNS = ("anger", "change", "churn", "angry", "language", "worst_sentence", "evidence")
SCHEMA_3_COLUMNS = ("group_key", "category", "priority", "assignee", "due_at",
                    "first_response_at", "resolved_at", "reason", "reminded_at")
SCHEMA_3_TABLES = ("case_posts", "case_events", "deliveries", "silences")


def test_a_version_1_store_is_migrated_keeping_its_data(store: Store) -> None:
    from sqlalchemy import inspect, text

    store.save_fetch("blog", "rss", Fetch((post("a"),), None), NOW)
    stored = store.posts_to_score()[0]
    save_scores(store, [(stored, Score(-0.8, 0.0, 0.5, 0.5), FLAG)], NOW)
    with store.engine.begin() as db:  # turn it back into what version 1 wrote
        if db.dialect.name == "sqlite":  # no search then (its triggers name later tables)
            for name in search._SQLITE_TRIGGERS:
                db.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
            db.exec_driver_sql("DROP TABLE IF EXISTS posts_fts")
            db.exec_driver_sql("DROP TABLE IF EXISTS notes_fts")
        db.execute(text("DROP TABLE report_sends"))
        for table in SCHEMA_3_TABLES:
            db.execute(text(f"DROP TABLE {table}"))
        for column in ("leased_by", "leased_until"):
            db.execute(text(f"ALTER TABLE sources DROP COLUMN {column}"))
        listed = ("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases'"
                  if db.dialect.name == "sqlite" else
                  "SELECT indexname FROM pg_indexes WHERE tablename = 'cases' "
                  "AND schemaname = current_schema()")
        for (index,) in db.execute(text(listed)).all():  # those of schema 3 and later
            if index.startswith("ix_cases_") and index != "ix_cases_opened_at":
                db.execute(text(f"DROP INDEX {index}"))
        for table in ("web_sessions", "presence", "users", "identities", "outcomes", "labels",
                      "models", "case_themes", "themes"):  # schemas 7, 8 and 9
            db.execute(text(f"DROP TABLE {table}"))
        for column in SCHEMA_3_COLUMNS:
            db.execute(text(f"ALTER TABLE cases DROP COLUMN {column}"))
        db.execute(text("UPDATE cases SET state = 'open'"))
        for column in (*SCHEMA_2_COLUMNS, "complaint", "model"):  # schemas 5 and 9
            db.execute(text(f"ALTER TABLE scores DROP COLUMN {column}"))
        db.execute(text("ALTER TABLE runs DROP COLUMN ended"))  # schema 6
        for column in ("imported_at", "pruned_at"):  # schema 10
            db.execute(text(f"ALTER TABLE posts DROP COLUMN {column}"))
        db.execute(meta.update().values(value="1"))
    store.close()
    migrated = Store(store.url)
    assert migrated.schema_version == SCHEMA_VERSION == 10
    with migrated.engine.connect() as db:
        assert {"leased_by", "leased_until"} <= {c["name"] for c in
                                                 inspect(db).get_columns("sources")}
        assert "folded_into" in {c["name"] for c in inspect(db).get_columns("deliveries")}
        assert "complaint" in {c["name"] for c in inspect(db).get_columns("scores")}
        assert "ended" in {c["name"] for c in inspect(db).get_columns("runs")}
        assert {"imported_at", "pruned_at"} <= {c["name"] for c in
                                                inspect(db).get_columns("posts")}
        assert {"ix_cases_state_priority", "ix_cases_assignee"} <= {
            i["name"] for i in inspect(db).get_indexes("cases")}
        assert {"users", "web_sessions", "presence", "identities", "outcomes", "labels",
                "models"} <= set(inspect(db).get_table_names())
        assert "model" in {c["name"] for c in inspect(db).get_columns("scores")}
        assert set(SCHEMA_2_COLUMNS) <= {c["name"] for c in inspect(db).get_columns("scores")}
        assert set(SCHEMA_3_COLUMNS) <= {c["name"] for c in inspect(db).get_columns("cases")}
        case = db.execute(text("SELECT state, group_key, category FROM cases")).one()
        members = db.execute(text("SELECT case_id, post_id FROM case_posts")).all()
    row = next(migrated.export_posts())
    assert (row["compound"], row["anger"], row["angry"]) == (-0.8, 0.0, False)
    assert tuple(case) == ("new", f"post:{stored.id}", FLAG.category)
    assert [tuple(m) for m in members] == [(1, stored.id)]
    assert len(list(migrated.export_cases())) == 1
    migrated.close()


def test_signals_are_stored(store: Store) -> None:
    store.save_fetch("blog", "rss", Fetch((post("a"),), None), NOW)
    score = Score(-0.9, 0.0, 0.4, 0.6, anger=0.7, change=0.5, churn=0.2, angry=True,
                  language="en", worst_sentence="You ruined it.",
                  evidence=(("anger", "says 'you ruined'"),))
    save_scores(store, [(store.posts_to_score()[0], score, None)], NOW)
    row = next(store.export_posts())
    assert (row["anger"], row["change"], row["churn"], row["angry"], row["language"],
            row["worst_sentence"]) == (0.7, 0.5, 0.2, True, "en", "You ruined it.")


def test_rescore_drops_a_flag_a_fixed_rule_no_longer_raises(store: Store) -> None:
    store.save_fetch("blog", "rss", Fetch((post("a"),), None), NOW)
    stored = store.posts_to_score()[0]
    save_scores(store, [(stored, Score(-0.8, 0, 0.5, 0.5), FLAG)], NOW)
    save_scores(store, [(stored, Score(-0.8, 0, 0.5, 0.5), None)], NOW)  # a pass: flag kept
    assert len(store.flagged(NOW, NOW + timedelta(seconds=1))) == 1
    save_scores(store, [(stored, Score(-0.8, 0, 0.5, 0.5), None)], NOW, drop_unmatched=True)
    assert store.flagged(NOW, NOW + timedelta(seconds=1)) == []
    assert len(list(store.export_cases())) == 1  # the case people may be working stays


def test_old_runs_are_pruned_as_new_ones_are_recorded(store: Store) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from monitor.store import PRUNE_EVERY
    from monitor.store.schema import runs

    old = NOW - timedelta(days=40)
    for i in range(PRUNE_EVERY - 1):
        store.record_run(old + timedelta(minutes=i), old + timedelta(minutes=i), {"n": i})
    store.record_run(NOW, NOW, {"n": "now"})  # the thousandth: prunes what is over 30 days old
    with store.engine.connect() as db:
        assert db.execute(select(func.count()).select_from(runs)).scalar_one() == 1


def test_a_broken_unicode_escape_is_stored_and_scored(store: Store) -> None:
    """A JSON API's lone surrogate ("\\ud800") is valid in a Python string but not in UTF-8:
    the post is kept (the surrogate as U+FFFD) and scored, and the pass goes on."""
    from monitor.scoring import Scorer

    store.save_fetch("blog", "rss", Fetch((post("s", "I hate the new \ud800 editor!"),), None),
                     NOW)
    stored, = store.posts_to_score()
    assert stored.post.text == "I hate the new \ufffd editor!"
    assert Scorer(anger_model=False).score_post(stored.post).compound < 0
