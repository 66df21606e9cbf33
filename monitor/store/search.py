"""Full-text search over cases (their posts and their notes) for the web inbox.

The index lives in the database, kept in step by the database itself (SQLite triggers, a
PostgreSQL expression index): every writer of posts and notes, whichever monitor or daemon it
is, keeps it right without knowing it exists. ``install`` makes it, idempotently, when the
store is opened; ``SearchQueries`` reads it.

- SQLite: FTS5 tables ``posts_fts`` (the title and text of the posts in cases, a copy: a
  post enters when it joins a case; indexing every post would cost an import of a million
  posts a third of its time, for posts no search looks at) and ``notes_fts`` (contentless:
  the text of ``case_events`` rows whose action is 'note'), tokenized with ``unicode61
  remove_diacritics 2`` (posts are English and French: "cafe" finds "café"). Without FTS5,
  search falls back to LIKE: slow, but right.
- PostgreSQL: GIN expression indexes on ``to_tsvector('simple', ...)``: 'simple' because posts
  come in several languages (no stemming, no stop words; and no unaccenting: "cafe" does not
  find "café" there).

What a person types is never handed over as query syntax: it is cut into words and "quoted
phrases", each quoted as a literal, so ``") OR *`` or ``NEAR(`` is just text.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from sqlalchemy import Text, and_, func, literal_column, select, text, union
from sqlalchemy.engine import Connection, Engine

from monitor.store.schema import case_events, case_posts, posts

log = logging.getLogger(__name__)

MAX_TERMS = 16
"""Words and phrases of a query that are used (the rest are ignored): a pasted page must not
become a 2,000-way AND (FTS5 also caps an expression's depth at 256)."""

MAX_TERM_CHARS = 200
"""A longer word is cut (it still matches as a prefix); a longer phrase is cut at a space."""

PG_INDEXED_CHARS = 100_000
"""Characters of a post (or note) that PostgreSQL indexes: a tsvector is limited to 1 MB, and
one too large would make saving the post fail."""

_TOKENIZER = "unicode61 remove_diacritics 2"
_NOTE_TEXT = "json_extract({row}.detail, '$.text')"
_IS_NOTE = "{row}.action = 'note' AND json_valid({row}.detail)"
_PG_POST = f"to_tsvector('simple', left(coalesce(title, '') || ' ' || text, {PG_INDEXED_CHARS}))"
_PG_NOTE = f"to_tsvector('simple', left(coalesce(detail ->> 'text', ''), {PG_INDEXED_CHARS}))"

_SQLITE_TABLES = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5(title, text, "
    f"tokenize='{_TOKENIZER}')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(text, content='', "
    f"tokenize='{_TOKENIZER}')",
)
_IN_CASE = "EXISTS (SELECT 1 FROM case_posts WHERE post_id = {row}.id)"
_CASE_POST_IN = ("DELETE FROM posts_fts WHERE rowid = new.post_id; INSERT INTO posts_fts "
                 "(rowid, title, text) SELECT id, title, text FROM posts WHERE id = new.post_id;")
_NOTE_IN = f"INSERT INTO notes_fts (rowid, text) SELECT new.id, {_NOTE_TEXT.format(row='new')}" \
           f" WHERE {_IS_NOTE.format(row='new')};"
_NOTE_OUT = ("INSERT INTO notes_fts (notes_fts, rowid, text) SELECT 'delete', old.id, "
             f"{_NOTE_TEXT.format(row='old')} WHERE {_IS_NOTE.format(row='old')};")
_SQLITE_TRIGGERS = {  # the insert trigger last: its presence says the index is complete
    "posts_fts_delete": "AFTER DELETE ON posts BEGIN "
                        "DELETE FROM posts_fts WHERE rowid = old.id; END",
    "posts_fts_update": f"AFTER UPDATE OF title, text ON posts WHEN {_IN_CASE.format(row='new')}"
                        " BEGIN UPDATE posts_fts SET title = new.title, text = new.text "
                        "WHERE rowid = new.id; END",
    "case_posts_fts_delete": "AFTER DELETE ON case_posts BEGIN "
                             "DELETE FROM posts_fts WHERE rowid = old.post_id; END",
    "notes_fts_delete": f"AFTER DELETE ON case_events BEGIN {_NOTE_OUT} END",
    "notes_fts_update": f"AFTER UPDATE ON case_events BEGIN {_NOTE_OUT} {_NOTE_IN} END",
    "notes_fts_insert": f"AFTER INSERT ON case_events BEGIN {_NOTE_IN} END",
    "posts_fts_insert": f"AFTER INSERT ON case_posts BEGIN {_CASE_POST_IN} END",
}
_SQLITE_FILL = (  # the whole index, from the rows (first install, or FTS5 back again)
    "DELETE FROM posts_fts",
    "INSERT INTO posts_fts (rowid, title, text) SELECT p.id, p.title, p.text FROM posts p "
    "JOIN case_posts cp ON cp.post_id = p.id",
    "INSERT INTO notes_fts (notes_fts) VALUES ('delete-all')",
    f"INSERT INTO notes_fts (rowid, text) SELECT e.id, {_NOTE_TEXT.format(row='e')} "
    f"FROM case_events e WHERE {_IS_NOTE.format(row='e')}",
)
_PG_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS ix_posts_fulltext ON posts USING gin ({_PG_POST})",
    f"CREATE INDEX IF NOT EXISTS ix_case_events_note_fulltext ON case_events USING gin "
    f"({_PG_NOTE}) WHERE action = 'note'",
)


def install(db: Connection) -> None:
    """Create the search index if it is missing (and fill it from the rows already stored);
    a no-op when it is there. Run in the transaction that prepares the schema, on every open."""
    if db.dialect.name == "postgresql":
        for statement in _PG_INDEXES:
            db.execute(text(statement))
        return
    if db.dialect.name != "sqlite":
        return
    if not _has_fts5(db):
        log.warning("this SQLite has no FTS5: searching cases reads every post (LIKE)")
        for name in _SQLITE_TRIGGERS:  # posts stay writable if an FTS5 store is moved here
            db.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        return
    if _indexes_every_post(db):  # schema 8 and 9: every post, in step with ``posts``
        for name in _SQLITE_TRIGGERS:
            db.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        db.exec_driver_sql("DROP TABLE posts_fts")
    for statement in _SQLITE_TABLES:
        db.exec_driver_sql(statement)
    if not _has_trigger(db, "posts_fts_insert"):  # new, or not kept in step for a while
        for statement in _SQLITE_FILL:
            db.exec_driver_sql(statement)
    for name, body in _SQLITE_TRIGGERS.items():
        db.exec_driver_sql(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")


def _indexes_every_post(db: Connection) -> bool:
    sql = db.execute(text("SELECT sql FROM sqlite_master WHERE name = 'posts_fts'")).scalar()
    return bool(sql) and "content='posts'" in sql


def _has_fts5(db: Connection) -> bool:
    return bool(db.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar())


def _has_trigger(db: Connection, name: str) -> bool:
    return db.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                      {"n": name}).first() is not None


class SearchQueries:
    """Full-text search of cases, mixed into Store (uses ``self.engine``)."""

    engine: Engine

    def search_available(self) -> str:
        """How search works on this store, for display: "fts5", "postgresql" or "like"."""
        if self.engine.dialect.name == "postgresql":
            return "postgresql"
        with self.engine.connect() as db:
            return "fts5" if _has_trigger(db, "posts_fts_insert") else "like"

    def search_case_ids(self, query: str, limit: int = 500) -> list[int]:
        """Ids of the cases with a post or a note matching ``query``, best match first, at
        most ``limit``. Every word must be in the same post (title or text) or the same note;
        a word matches as a prefix ("edit" finds "editor"); "a phrase" matches as typed."""
        found = terms(query)
        if not found or limit <= 0:
            return []
        mode = self.search_available()
        with self.engine.connect() as db:
            if mode == "postgresql":
                rows = db.execute(text(_PG_SEARCH), {"q": pg_query(found), "limit": limit})
            elif mode == "fts5":
                rows = db.execute(text(_FTS5_SEARCH), {"q": fts5_query(found), "limit": limit})
            else:
                rows = db.execute(_like_search(found, limit))
            return [int(r[0]) for r in rows]


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def terms(query: str) -> list[tuple[str, bool]]:
    """The words and "quoted phrases" of what a person typed, as (text, is_phrase): those
    holding a letter or digit, at most ``MAX_TERMS``, cut at ``MAX_TERM_CHARS``."""
    query = query.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")
    found: list[tuple[str, bool]] = []
    for match in _TERM.finditer(unicodedata.normalize("NFC", query)):
        phrase = match.group(1) is not None
        term = " ".join((match.group(1) or match.group(2) or "").split())
        if len(term) > MAX_TERM_CHARS:
            term = term[:MAX_TERM_CHARS]
            if phrase and " " in term:
                term = term.rsplit(" ", 1)[0]
        if any(c.isalnum() for c in term):
            found.append((term, phrase))
    return found[:MAX_TERMS]


def fts5_query(found: list[tuple[str, bool]]) -> str:
    """An FTS5 expression: each term a quoted string (one the tokenizer splits is a phrase),
    a word a prefix, all ANDed."""
    return " ".join('"' + t.replace('"', '""') + '"' + ("" if phrase else "*")
                    for t, phrase in found)


def pg_query(found: list[tuple[str, bool]]) -> str:
    """A to_tsquery text: each term a quoted lexeme ('' and \\ escaped), a word a prefix."""
    return " & ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'"
                      + ("" if phrase else ":*") for t, phrase in found)


_FTS5_SEARCH = """
SELECT case_id FROM (
    SELECT cp.case_id AS case_id, bm25(posts_fts) AS rank
    FROM posts_fts JOIN case_posts cp ON cp.post_id = posts_fts.rowid
    WHERE posts_fts MATCH :q
    UNION ALL
    SELECT e.case_id, bm25(notes_fts)
    FROM notes_fts JOIN case_events e ON e.id = notes_fts.rowid
    WHERE notes_fts MATCH :q
) GROUP BY case_id ORDER BY min(rank), case_id DESC LIMIT :limit
"""  # bm25: lower is better

_PG_SEARCH = f"""
SELECT case_id FROM (
    SELECT cp.case_id, ts_rank({_PG_POST}, to_tsquery('simple', :q)) AS rank
    FROM posts JOIN case_posts cp ON cp.post_id = posts.id
    WHERE {_PG_POST} @@ to_tsquery('simple', :q)
    UNION ALL
    SELECT case_id, ts_rank({_PG_NOTE}, to_tsquery('simple', :q))
    FROM case_events
    WHERE action = 'note' AND {_PG_NOTE} @@ to_tsquery('simple', :q)
) AS hits GROUP BY case_id ORDER BY max(rank) DESC, case_id DESC LIMIT :limit
"""  # the expressions as the indexes have them, so the planner uses the indexes


def _like_search(found: list[tuple[str, bool]], limit: int) -> Any:
    """Without FTS5: each term a substring (ASCII case aside, accents count), newest first."""
    post_text = func.coalesce(posts.c.title, "") + " " + posts.c.text
    note_text = func.json_extract(case_events.c.detail, literal_column("'$.text'"), type_=Text)
    matched_posts = select(case_posts.c.case_id).join(
        posts, posts.c.id == case_posts.c.post_id).where(
        and_(*(post_text.contains(t, autoescape=True) for t, _ in found)))
    matched_notes = select(case_events.c.case_id).where(
        case_events.c.action == "note", func.json_valid(case_events.c.detail),
        and_(*(note_text.contains(t, autoescape=True) for t, _ in found)))
    hits = union(matched_posts, matched_notes).subquery()
    return select(hits.c.case_id).order_by(hits.c.case_id.desc()).limit(limit)
