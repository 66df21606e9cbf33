"""SQLAlchemy 2 tables and queries: SQLite by default, PostgreSQL by URL. The only package
that knows SQL, and it holds no rules of ours (queue policy, routing): only rows.

Two shapes, one for each need. A ``Store`` method is one question or one write in its own
transaction (the mixins of ``casework``, ``deliveries``, ``storms``, ``reports``, ``leases``,
``alerts`` add theirs). A function of a Connection is a piece of a larger write that its caller
puts in one transaction (``store.transaction()``): the pipeline files a batch's scores and
flags (``judged``), cases (``casework``) and outbox rows (``deliveries``) together, so a pass
killed at any moment leaves all of them or none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Table,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError
from monitor.model import Fetch, Severity
from monitor.store import search
from monitor.store.alerts import AlertQueries
from monitor.store.casework import CaseQueries
from monitor.store.deliveries import DeliveryQueries
from monitor.store.followup import FollowupQueries
from monitor.store.history import insert_posts, known_posts
from monitor.store.learning import LearnQueries
from monitor.store.leases import SCHEMA_KEY, LeaseQueries, lock_source
from monitor.store.reports import ReportQueries
from monitor.store.retention import RetentionQueries
from monitor.store.rows import (  # noqa: F401 (StoredPost re-exported: what callers hold)
    SCORE_COLUMNS,
    StoredPost,
    insert_ignoring,
    post_from,
    post_row,
)
from monitor.store.schema import (  # noqa: F401 (re-exported for callers and tests)
    MIGRATIONS,
    SCHEMA_VERSION,
    case_posts,
    cases,
    flags,
    meta,
    metadata,
    post_edits,
    posts,
    runs,
    scores,
    sources,
)
from monitor.store.search import SearchQueries
from monitor.store.storms import WRITTEN, StormQueries
from monitor.store.themes import ThemeQueries
from monitor.store.users import UserQueries
from monitor.store.web import WebQueries


def content_hash(title: str | None, text: str) -> str:
    """What "the post changed" means: its title or text changed."""
    return hashlib.sha256(f"{title or ''}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Saved:
    """What saving one fetch did: ids of posts first seen, and of posts whose text changed."""

    new: tuple[int, ...]
    edited: tuple[int, ...]


class Store(FollowupQueries, DeliveryQueries, CaseQueries, StormQueries, ReportQueries,
            LeaseQueries, AlertQueries, UserQueries, WebQueries, SearchQueries, LearnQueries,
            ThemeQueries, RetentionQueries):
    """The database. Create with ``Store(url)``; the schema is made on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            self._prepare()
        except SQLAlchemyError as error:
            raise StoreError(f"cannot open the store ({_safe(url)}): {error.__class__.__name__}:"
                             f" {str(error).splitlines()[0]}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction for a caller that writes through several of the store's modules at
        once: the pipeline files a batch's scores, flags, cases and outbox rows together."""
        return self.engine.begin()

    def _prepare(self) -> None:
        """Create the schema on first use, or migrate an older one, in one transaction."""
        with self.engine.begin() as db:
            if db.dialect.name == "postgresql":  # two monitors starting at once: one migrates
                db.execute(text(f"SELECT pg_advisory_xact_lock(4242001, {SCHEMA_KEY})"))
            existed = inspect(db).has_table("meta")
            version = db.execute(select(meta.c.value).where(meta.c.key == "schema_version")) \
                .scalar() if existed else None
            if version is not None and int(version) > SCHEMA_VERSION:
                raise StoreError(f"the store has schema version {version}, newer than this "
                                 f"monitor's {SCHEMA_VERSION}: upgrade feedback-monitor")
            metadata.create_all(db)  # new tables first: a migration may fill them
            search.install(db)
            for step in range(int(version or SCHEMA_VERSION), SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    if not _column_exists(db, statement):
                        db.execute(text(statement))
            if version is None:
                db.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(version) < SCHEMA_VERSION:
                db.execute(meta.update().where(meta.c.key == "schema_version")
                           .values(value=str(SCHEMA_VERSION)))

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
                       .scalar_one())

    # --- sources -----------------------------------------------------------------------------

    def cursor(self, source: str) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            return db.execute(select(sources.c.cursor).where(sources.c.name == source)).scalar()

    def save_fetch(self, source: str, kind: str, fetch: Fetch, now: datetime) -> Saved:
        """Store a fetch's posts and its new cursor in one transaction; notice edits."""
        return self.save_fetches([(source, kind, fetch)], now)[0]

    def save_fetches(self, batch: Sequence[tuple[str, str, Fetch | str]],
                     now: datetime) -> list[Saved]:
        """Several sources' fetches in one transaction, each source's posts and cursor still
        together: a commit is a disk sync, and a pass of 1,000 unchanged feeds spent most of
        its time committing one source at a time. A ``str`` in place of a Fetch is that
        source's error, counted as ``record_failure`` counts it. Returns a Saved per item."""
        saved: list[Saved] = []
        done: list[tuple[str, str, Any, bool]] = []  # name, kind, cursor, found new posts
        with self.engine.begin() as db:
            for source in sorted({item[0] for item in batch}):  # one order: never a deadlock
                lock_source(db, source)
            for source, kind, fetch in batch:
                if isinstance(fetch, str):
                    _touch_source(db, source, kind, now, ok=False, error=fetch)
                    saved.append(Saved((), ()))
                    continue
                new: list[int] = []
                edited: list[int] = []
                unique = {p.external_id: p for p in fetch.posts}  # a feed may repeat an entry
                known = known_posts(db, source, list(unique))
                fresh = []
                for post in unique.values():
                    digest = content_hash(post.title, post.text)
                    old = known.get(post.external_id)
                    if old is None:
                        fresh.append({**post_row(post), "first_seen_at": now,
                                      "changed_at": now, "content_hash": digest, "version": 1})
                    elif old.content_hash != digest:
                        db.execute(post_edits.insert().values(
                            post_id=old.id, version=old.version, title=old.title,
                            text=old.text, content_hash=old.content_hash, replaced_at=now))
                        db.execute(posts.update().where(posts.c.id == old.id).values(
                            **post_row(post), changed_at=now, content_hash=digest,
                            version=old.version + 1, pruned_at=None))  # new text to keep
                        edited.append(old.id)
                if fresh:
                    new = insert_posts(db, source, fresh)
                done.append((source, kind, fetch.cursor, bool(new)))
                saved.append(Saved(tuple(new), tuple(edited)))
            _touch_sources(db, done, now)
        return saved

    def record_failure(self, source: str, kind: str, error: str, now: datetime) -> None:
        with self.engine.begin() as db:
            _touch_source(db, source, kind, now, ok=False, error=error)

    def source_health(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The ``sources`` rows (of ``names`` only, if given: a daemon job reads its own)."""
        query = select(sources).order_by(sources.c.name)
        if names is not None:
            query = query.where(sources.c.name.in_(list(names)))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    # --- scoring -----------------------------------------------------------------------------

    def posts_to_score(self, limit: int = 500, rescore: bool = False, after_id: int = 0,
                       since: datetime | None = None,
                       ids: Sequence[int] | None = None) -> list[StoredPost]:
        """Posts never scored, or changed since they were scored (all of them if ``rescore``,
        those first seen from ``since`` on if given, those of ``ids`` only if given: the
        daemon scores what a poll saved without looking through the whole store). A pruned
        post (``monitor prune``) keeps the score it had: its text is gone."""
        query = (select(posts, scores.c.content_hash.label("scored_hash"))
                 .outerjoin(scores, scores.c.post_id == posts.c.id)
                 .where(posts.c.id > after_id,  # a storm is flagged by its detector alone
                        WRITTEN, posts.c.pruned_at.is_(None))
                 .order_by(posts.c.id).limit(limit))
        if since is not None:
            query = query.where(posts.c.first_seen_at >= since)
        if ids is not None:
            query = query.where(posts.c.id.in_([i for i in sorted(ids) if i > after_id][:limit]))
        if not rescore:
            query = query.where((scores.c.content_hash.is_(None))
                                | (scores.c.content_hash != posts.c.content_hash))
        with self.engine.connect() as db:
            return [StoredPost(r.id, post_from(r), r.content_hash, r.imported_at is not None)
                    for r in db.execute(query)]

    def first_post_id(self, since: datetime) -> int:
        """The lowest id of the posts first seen from ``since`` on (by the first_seen_at
        index): where a walk in id order over them starts, instead of at the first post."""
        with self.engine.connect() as db:
            found = db.execute(select(func.min(posts.c.id))
                               .where(posts.c.first_seen_at >= since)).scalar()
        return int(found) if found is not None else 2**62

    def stored_post(self, source: str, external_id: str) -> StoredPost | None:
        with self.engine.connect() as db:
            row = db.execute(select(posts).where(posts.c.source == source,
                                                 posts.c.external_id == external_id)).first()
        return None if row is None else StoredPost(row.id, post_from(row), row.content_hash,
                                                   row.imported_at is not None)

    # --- reading -----------------------------------------------------------------------------

    def flagged(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Flags raised in [start, end), with their post, score and case, worst first."""
        rows = self.flagged_between(start, end)
        return sorted(rows, key=lambda r: (-Severity(r["severity"]).rank, r["compound"] or 0.0))

    def export_posts(self, since: datetime | None = None) -> Iterator[Mapping[str, Any]]:
        """Every post someone wrote (by id), or those first seen from ``since`` on in the
        order they were first seen: that order is the first_seen_at index's own (its entries
        end with the id on SQLite; PostgreSQL sorts equal times incrementally), so the index
        reads the range and stops, where ``ORDER BY id`` walked the whole table by its key
        and filtered. Rows stream (``EXPORT_BATCH`` at a time; a server-side cursor on
        PostgreSQL), so a million posts never sit in memory at once; each a read-only
        mapping of its row (copying each into a dict cost a seventh of an export)."""
        query = (select(*EXPORTED, *SCORE_COLUMNS, scores.c.evidence, flags.c.severity,
                        flags.c.category, flags.c.tags, flags.c.rules, flags.c.reasons)
                 .outerjoin(scores, scores.c.post_id == posts.c.id)
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .where(WRITTEN))  # a storm is not something someone wrote
        if since is None:
            query = query.order_by(posts.c.id)
        else:
            query = query.where(posts.c.first_seen_at >= since).order_by(
                posts.c.first_seen_at, posts.c.id)
        with self.engine.connect() as db:
            for row in db.execution_options(yield_per=EXPORT_BATCH).execute(query):
                yield row._mapping

    def export_cases(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Cases with the opening post's rules and reasons, and ``members``: every post of
        the case (the opening one first); all of them by id, or those opened from ``since``
        on in the order they were opened. The members of ``EXPORT_BATCH`` cases at a time
        are read in one query, not one query per case."""
        query = (select(cases, flags.c.rules, flags.c.reasons)
                 .outerjoin(flags, flags.c.post_id == cases.c.post_id))
        if since is None:
            query = query.order_by(cases.c.id)
        else:  # the opened_at index's order, as export_posts reads by first seen
            query = query.where(cases.c.opened_at >= since).order_by(cases.c.opened_at,
                                                                     cases.c.id)
        with self.engine.connect() as db:
            found = db.execution_options(yield_per=EXPORT_BATCH).execute(query)
            for batch in found.partitions():
                members: dict[int, list[Any]] = {}
                for member in db.execute(
                        select(posts, case_posts.c.case_id.label("member_of"),
                               case_posts.c.added_at.label("member_added_at"))
                        .join(case_posts, case_posts.c.post_id == posts.c.id)
                        .where(case_posts.c.case_id.in_([row.id for row in batch]))):
                    members.setdefault(member.member_of, []).append(member)
                for row in batch:
                    mine = sorted(members.get(row.id, ()), key=lambda m, head=row.post_id: (
                        m.id != head, m.member_added_at, m.id))
                    yield {**row._mapping, "members": [
                        {c.name: m._mapping[c.name] for c in posts.c} for m in mine]}

    def begin_run(self, started_at: datetime) -> int:
        """Note a pass's start (``ended`` false until ``record_run``): if it never ends,
        killed or with its store failing, ``monitor status`` can say so."""
        from monitor.store.passlock import pass_owner

        with self.engine.begin() as db:
            return db.execute(runs.insert().values(
                started_at=started_at, finished_at=started_at, report={"by": pass_owner()},
                ended=False).returning(runs.c.id)).scalar_one()

    def record_run(self, started_at: datetime, finished_at: datetime,
                   report: dict[str, Any], run_id: int | None = None) -> None:
        """Keep what a pass did (the row ``begin_run`` made, or a new one) for ``RUNS_KEPT``;
        a daemon writes a row per poll (96,000 a day at 1,000 sources every 15 minutes), so
        older rows are pruned every ``PRUNE_EVERY``."""
        values = {"started_at": started_at, "finished_at": finished_at, "ended": True,
                  "report": json.loads(json.dumps(report, default=str))}
        with self.engine.begin() as db:
            if run_id is not None:
                db.execute(runs.update().where(runs.c.id == run_id).values(**values))
                row_id = run_id
            else:
                row_id = db.execute(
                    runs.insert().values(**values).returning(runs.c.id)).scalar_one()
            if row_id % PRUNE_EVERY == 0:
                db.execute(runs.delete().where(runs.c.started_at < started_at - RUNS_KEPT))


# --- helpers ---------------------------------------------------------------------------------

EXPORTED = tuple(c for c in posts.c if c.name not in (
    "changed_at", "content_hash", "imported_at", "pruned_at"))
"""The post columns an export reads (each datetime read costs: a million rows read five)."""

EXPORT_BATCH = 1000
"""Rows an export reads at a time (and cases whose posts one query reads)."""

RUNS_KEPT = timedelta(days=30)
PRUNE_EVERY = 1000  # runs recorded between prunings

_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+)")


def _column_exists(db: Connection, statement: str) -> bool:
    """Whether ``statement`` adds a column that is there already: a table new in a later
    version is created whole by ``create_all`` before the older steps run."""
    match = _ADD_COLUMN.match(statement)
    return bool(match) and match.group(2) in {
        c["name"] for c in inspect(db).get_columns(match.group(1))}


def _json(value: str | bytes) -> Any:
    """A JSON column's value: by orjson (an export of a million rows reads four JSON columns
    a row), or by json for what orjson refuses (a lone surrogate json wrote as an escape)."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_deserializer=_json,
                               **POOL)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cur = connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args=_pg_timeouts(url),
                         json_deserializer=_json, **POOL)


POOL = {"pool_size": 20, "max_overflow": 10}
"""Connections kept open: the web inbox's 20 people at once each hold one per request
(SQLAlchemy's default of 5 opened and closed the rest under load)."""


PG_CONNECT_TIMEOUT = 10
"""Seconds to open a PostgreSQL connection (libpq ``connect_timeout``): a server that accepts
the TCP connection and never answers fails the run instead of hanging it."""

PG_STATEMENT_TIMEOUT = "5min"
"""The longest one statement (lock waits included) may run, server side."""


def _pg_timeouts(url: str) -> dict[str, Any]:
    """libpq settings that bound every wait on PostgreSQL: connecting, one statement, and a
    peer that vanished mid-pass (TCP keepalives notice it within about a minute). What the URL
    sets itself wins; its ``options`` (a search_path, say) are kept, not replaced."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return {}
    given = dict(parsed.query)
    options = given.get("options") or ""
    options = " ".join(options) if isinstance(options, tuple) else options
    if "statement_timeout" not in options:
        options = f"{options} -c statement_timeout={PG_STATEMENT_TIMEOUT}".strip()
    if "jit" not in options:  # compiling a count of the inbox cost 0.9 s of its 1.5 s
        options = f"{options} -c jit=off"
    wanted: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT, "keepalives": 1,
                              "keepalives_idle": 30, "keepalives_interval": 10,
                              "keepalives_count": 3}
    return {"options": options, **{k: v for k, v in wanted.items() if k not in given}}


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _touch_source(db: Connection, name: str, kind: str, now: datetime, *, ok: bool,
                  cursor: Any = None, error: str | None = None, found_new: bool = False) -> None:
    values: dict[str, Any] = {"kind": kind, "last_attempt_at": now}
    if ok:
        values.update(cursor=cursor, last_success_at=now, failures=0)
        if found_new:
            values["last_new_at"] = now
    else:
        values.update(last_error=error, last_error_at=now,
                      failures=sources.c.failures + 1)
    if db.execute(sources.update().where(sources.c.name == name).values(**values)).rowcount:
        return
    values["failures"] = 0 if ok else 1
    _insert_ignore(db, sources, {"name": name, **values}, ["name"])


def _touch_sources(db: Connection, done: Sequence[tuple[str, str, Any, bool]],
                   now: datetime) -> None:
    """``_touch_source`` of many fetched sources (name, kind, cursor, found new) in a statement
    or two: each statement lets go of the GIL, and won it back only after the pass's busy
    fetch threads (1.5 ms a source, most of a warm pass of 1,000 feeds)."""
    names = [name for name, *_ in done]
    known: set[str] = set()
    for start in range(0, len(names), 500):  # bound the IN list
        known.update(db.execute(select(sources.c.name).where(
            sources.c.name.in_(names[start:start + 500]))).scalars())
    for found_new in (False, True):
        rows = [{"b_name": name, "b_kind": kind, "b_cursor": cursor}
                for name, kind, cursor, new in done if new is found_new and name in known]
        if not rows:
            continue
        values: dict[str, Any] = {
            "kind": bindparam("b_kind"), "last_attempt_at": now, "last_success_at": now,
            "cursor": bindparam("b_cursor", type_=sources.c.cursor.type), "failures": 0}
        if found_new:
            values["last_new_at"] = now
        db.execute(sources.update().where(sources.c.name == bindparam("b_name"))
                   .values(**values), rows)
    for name, kind, cursor, new in done:
        if name not in known:  # a source's first fetch
            _touch_source(db, name, kind, now, ok=True, cursor=cursor, found_new=new)


def _insert_ignore(db: Connection, table: Table, values: dict[str, Any],
                   keys: list[str]) -> bool:
    """INSERT unless a row with the same unique ``keys`` exists; True when inserted."""
    return bool(db.execute(insert_ignoring(db, table, keys).values(**values)).rowcount)
