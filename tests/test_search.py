"""Full-text search over cases (monitor.store.search) on SQLite (FTS5) and, when reachable,
PostgreSQL: words, prefixes, phrases, notes, edits and deletes kept in step, ranking, hostile
queries, a store made before search existed, and SQLite without FTS5 (LIKE)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Connection

from monitor.store import Store, search
from monitor.store.casework import record_event
from monitor.store.schema import case_posts, cases, posts
from monitor.store.search import SearchQueries

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOSTILE = ['") OR *', "NEAR(", "NEAR(a b, 2)", "-", "'", "\\", "''", '"', '""', '"""', "*",
           "a*", "^a", "a:*", "a & b | !c", "(a", "a)", "title:editor", "{title}: editor",
           "AND", "OR NOT", "col:*", "'\\'", "d'accord", "l\\'été", "💥 🔥 editor 🙂",
           "日本語のテキスト", "é" * 300, "ed\x00itor", "\ud800 surrogate", "\t\n ", "",
           "x" * 10_000, " ".join(["editor"] * 2_000), "a-b-c " * 2_000, '"' * 5_001,
           "<->", "a <-> b", "!!", "&", "|", ":", "':*", "'''':*", "\\\\'"]


class SearchStore(Store, SearchQueries):
    """Store with search mixed in, as the lead will wire it."""


@pytest.fixture
def store(store_url: str) -> Iterator[SearchStore]:
    opened = SearchStore(store_url)
    with opened.transaction() as db:
        search.install(db)  # harmless once Store._prepare does it: install is idempotent
    yield opened
    opened.close()


_ids = count(1)


def add_post(db: Connection, text_: str, title: str | None = None) -> int:
    n = next(_ids)
    return int(db.execute(posts.insert().values(
        source="forum", external_id=f"p{n}", url=f"https://f.test/{n}", author="ann",
        title=title, text=text_, published_at=NOW, first_seen_at=NOW, changed_at=NOW,
        content_hash=f"h{n}", version=1)).inserted_primary_key[0])


def add_case(db: Connection, *post_ids: int) -> int:
    case_id = int(db.execute(cases.insert().values(
        post_id=post_ids[0], state="new", severity="high", opened_at=NOW, updated_at=NOW,
        group_key=f"post:{post_ids[0]}")).inserted_primary_key[0])
    for post_id in post_ids:
        db.execute(case_posts.insert().values(case_id=case_id, post_id=post_id, added_at=NOW))
    record_event(db, case_id, NOW, None, "opened", {"post_id": post_ids[0]})
    return case_id


def add_note(db: Connection, case_id: int, note: str) -> None:
    record_event(db, case_id, NOW, "ana", "note", {"text": note})


def new_case(store: Store, body: str, title: str | None = None) -> int:
    with store.transaction() as db:
        return add_case(db, add_post(db, body, title))


def uninstall(db: Connection) -> None:
    """Back to a store made before search existed."""
    if db.dialect.name == "postgresql":
        db.execute(text("DROP INDEX IF EXISTS ix_posts_fulltext"))
        db.execute(text("DROP INDEX IF EXISTS ix_case_events_note_fulltext"))
        return
    for name in search._SQLITE_TRIGGERS:
        db.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    db.exec_driver_sql("DROP TABLE IF EXISTS posts_fts")
    db.exec_driver_sql("DROP TABLE IF EXISTS notes_fts")


def sqlite_index_is_whole(store: Store) -> None:
    """FTS5's own check of posts_fts, and that it holds exactly the posts in cases, as they
    read now (SQLite only)."""
    if store.engine.dialect.name == "sqlite":
        with store.transaction() as db:
            db.exec_driver_sql("INSERT INTO posts_fts (posts_fts, rank) "
                               "VALUES ('integrity-check', 1)")
            indexed = db.exec_driver_sql("SELECT rowid, title, text FROM posts_fts").all()
            in_cases = db.exec_driver_sql(
                "SELECT p.id, p.title, p.text FROM posts p JOIN case_posts c "
                "ON c.post_id = p.id").all()
        assert sorted(map(tuple, indexed)) == sorted(map(tuple, in_cases))


def test_words_match_title_and_text_all_of_them(store: SearchStore) -> None:
    case = new_case(store, "The editor crashed when saving", title="Billing outage")
    other = new_case(store, "Billing is fine, thanks")
    assert store.search_case_ids("billing editor") == [case]
    assert store.search_case_ids("EDITOR Outage") == [case]
    assert sorted(store.search_case_ids("billing")) == sorted([case, other])
    assert store.search_case_ids("billing nowhere") == []
    assert store.search_available() in {"fts5", "postgresql"}


def test_a_word_matches_as_a_prefix_and_a_phrase_as_typed(store: SearchStore) -> None:
    case = new_case(store, "the editor crashed, billing outage again")
    assert store.search_case_ids("edit") == [case]
    assert store.search_case_ids("outa bill") == [case]
    assert store.search_case_ids('"billing outage"') == [case]
    assert store.search_case_ids('"outage billing"') == []
    assert store.search_case_ids('crash "billing outage" ed') == [case]


def test_accents_and_french(store: SearchStore) -> None:
    case = new_case(store, "L'éditeur a planté, le café aussi", title="Très déçu")
    assert store.search_case_ids("éditeur") == [case]
    assert store.search_case_ids("déçu café") == [case]
    assert store.search_case_ids("l'éditeur") == [case]
    if store.search_available() == "fts5":  # 'simple' on PostgreSQL keeps accents
        assert store.search_case_ids("editeur decu cafe") == [case]
        assert store.search_case_ids("tres") == [case]


def test_a_note_finds_its_case(store: SearchStore) -> None:
    case = new_case(store, "nothing special here")
    with store.transaction() as db:
        add_note(db, case, "Called her back about the refund, promised a voucher")
        record_event(db, case, NOW, "ana", "assigned", {"text": "zanzibar"})  # not a note
    assert store.search_case_ids("refund voucher") == [case]
    assert store.search_case_ids("vouch") == [case]
    assert store.search_case_ids("zanzibar") == []


def test_one_case_once_at_most_limit(store: SearchStore) -> None:
    with store.transaction() as db:
        first = add_case(db, add_post(db, "refund please"), add_post(db, "refund now"))
        add_note(db, first, "refund sent")
        second = add_case(db, add_post(db, "refund twice"))
    assert sorted(store.search_case_ids("refund")) == sorted([first, second])
    assert len(store.search_case_ids("refund", limit=1)) == 1
    assert store.search_case_ids("refund", limit=0) == []


def test_an_edited_post_is_found_by_its_new_words_only(store: SearchStore) -> None:
    case = new_case(store, "the invoice was wrong", title="Invoice")
    with store.transaction() as db:
        db.execute(posts.update().where(posts.c.id == _post_of(db, case))
                   .values(text="the dashboard is slow", title="Dashboard"))
    assert store.search_case_ids("dashboard slow") == [case]
    assert store.search_case_ids("invoice") == []
    assert store.search_case_ids("wrong") == []
    with store.transaction() as db:  # a change to other columns leaves the index alone
        db.execute(posts.update().where(posts.c.id == _post_of(db, case)).values(reach=5))
    assert store.search_case_ids("dashboard") == [case]
    sqlite_index_is_whole(store)


def test_a_deleted_post_disappears(store: SearchStore) -> None:
    with store.transaction() as db:
        kept = add_post(db, "login works")
        gone = add_post(db, "kangaroo login broken")
        case = add_case(db, kept, gone)
        db.execute(posts.delete().where(posts.c.id == gone))
        # SQLite may give the next post the deleted one's id: a stale entry would show here
        other = add_case(db, add_post(db, "unrelated words"))
    assert store.search_case_ids("kangaroo") == []
    assert store.search_case_ids("login") == [case]
    assert store.search_case_ids("unrelated") == [other]
    sqlite_index_is_whole(store)


def test_a_deleted_case_takes_its_notes_out_of_the_index(store: SearchStore) -> None:
    case = new_case(store, "first")
    with store.transaction() as db:
        add_note(db, case, "platypus")
        db.execute(cases.delete().where(cases.c.id == case))  # events go by cascade
    assert store.search_case_ids("platypus") == []
    if store.search_available() == "fts5":
        with store.engine.connect() as db:
            assert db.exec_driver_sql("SELECT count(*) FROM notes_fts "
                                      "WHERE notes_fts MATCH 'platypus'").scalar() == 0


def test_more_mentions_rank_first(store: SearchStore) -> None:
    once = new_case(store, "outage today, other words here too")  # the older id: ties go last
    often = new_case(store, "outage outage outage today again")
    assert store.search_case_ids("outage") == [often, once]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(store: SearchStore, query: str) -> None:
    case = new_case(store, "the editor crashed")
    found = store.search_case_ids(query)
    assert isinstance(found, list)
    assert set(found) <= {case}
    if not query.strip():
        assert found == []


SYNTAX = "\"'\\*():&|!<->^ NEARORANDNOT-+"  # both engines' query operators


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=60) | st.text(alphabet=SYNTAX, max_size=30))
def test_any_text_is_a_query(store: SearchStore, query: str) -> None:
    assert isinstance(store.search_case_ids(query), list)


def test_empty_query() -> None:
    assert search.terms("") == search.terms("   \t") == search.terms("- * ) 💥") == []
    assert len(search.terms("a " * 1000)) == search.MAX_TERMS
    assert search.fts5_query(search.terms('x") OR "y')) == '"x"")"* "OR"* """y"*'


def test_a_store_made_before_search_is_filled_on_install(store: SearchStore) -> None:
    with store.transaction() as db:
        uninstall(db)
        case = add_case(db, add_post(db, "the old wombat post", title="Legacy"))
        add_note(db, case, "old echidna note")
    with store.transaction() as db:
        search.install(db)
        search.install(db)  # again: nothing doubles
    assert store.search_case_ids("wombat legacy") == [case]
    assert store.search_case_ids("echidna") == [case]
    sqlite_index_is_whole(store)


def test_an_index_of_every_post_becomes_one_of_the_posts_in_cases(store: SearchStore) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with store.transaction() as db:  # as schemas 8 and 9 made it: every post, in step
        uninstall(db)
        db.exec_driver_sql("CREATE VIRTUAL TABLE posts_fts USING fts5(title, text, "
                           "content='posts', content_rowid='id')")
        db.exec_driver_sql("CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN "
                           "INSERT INTO posts_fts (rowid, title, text) "
                           "VALUES (new.id, new.title, new.text); END")
        lone = add_post(db, "a wombat in no case")
        case = add_case(db, add_post(db, "a wombat in a case"))
    with store.transaction() as db:
        search.install(db)
    assert lone and store.search_case_ids("wombat") == [case]
    sqlite_index_is_whole(store)


def test_postgresql_uses_its_indexes(store: SearchStore) -> None:
    if store.search_available() != "postgresql":
        pytest.skip("PostgreSQL only")
    with store.transaction() as db:
        db.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in db.execute(text("EXPLAIN " + search._PG_SEARCH),
                                                   {"q": "'x':*", "limit": 5}))
    assert "ix_posts_fulltext" in plan and "ix_case_events_note_fulltext" in plan


def test_sqlite_without_fts5_falls_back_to_like(
        store: SearchStore, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    before = new_case(store, "before the move")
    monkeypatch.setattr(search, "_has_fts5", lambda db: False)
    with caplog.at_level(logging.WARNING), store.transaction() as db:
        search.install(db)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert store.search_available() == "like"
    with store.transaction() as db:  # written while the index is not kept
        during = add_case(db, add_post(db, "Written without the Editor"))
        add_note(db, during, "a 100% refund_ok")
    assert store.search_case_ids("editor without") == [during]
    assert store.search_case_ids("edit") == [during]
    assert store.search_case_ids("100% refund_ok") == [during]
    assert store.search_case_ids("%") == [] and store.search_case_ids("_") == []
    for query in HOSTILE:
        store.search_case_ids(query)
    monkeypatch.undo()
    with store.transaction() as db:  # FTS5 again: the index is rebuilt from the rows
        search.install(db)
    assert store.search_available() == "fts5"
    assert store.search_case_ids("editor") == [during]
    assert store.search_case_ids("refund") == [during]
    assert store.search_case_ids("move") == [before]
    sqlite_index_is_whole(store)


def _post_of(db: Connection, case_id: int) -> int:
    return int(db.execute(cases.select().where(cases.c.id == case_id)).one().post_id)
