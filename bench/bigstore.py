"""Build a big, realistic store fast: the store the "at scale" measurements (issue 19) run on.

    python bench/bigstore.py --url URL [--posts 1000000] [--seed 1] [--fresh]

Rows go straight into the monitor's own tables (``Store(url)`` makes the schema first) by
bulk SQL, never through the pipeline: SQLAlchemy Core executemany on SQLite, ``COPY`` on
PostgreSQL. What is built, for ``--posts`` N:

- posts over the last 60 days on 200 sources (kinds rss, reddit, discourse; a few big, a long
  tail) by 30,000 authors (Zipf-like: some write a lot), in threads (an opener and a
  geometric number of replies, mean ~8 posts) in the order they were seen, so ids grow with
  ``first_seen_at`` as in a real store;
- texts are real: GoEmotions (train, dev), Mini-BAR (English and French), URR reviews from
  /work/shared/data. Each distinct text is scored once by the monitor's own ``Scorer`` and
  its figures reused for every post carrying it (56k texts: 35 to 90 s on a loaded machine,
  then cached in the temp folder); openers' titles are the first words of another text, not
  scored (the score is the text's alone);
- flags: the shipped demo rules (``monitor/demo/rules``) are evaluated once per (text, source
  kind) on that score. Threads are "hot" (~23 %) or calm: a calm thread's posts draw only
  texts no rule flags, a hot thread's posts draw a flagged text one time in seven, so ~3 % of
  the posts are flagged (praise is left out: its flags open no case). The rules see each
  text alone, as an opener without a title: ``monitor rescore`` of the store, which gives them
  titles and replies' threads, flags ~1 % more of the posts;
- cases: one per hot thread with a flagged post (~16k at 1M), its flagged posts linked
  (``case_posts``), severity the worst, priority ``monitor.queue.priority``, due by the
  default SLA; cases older than two days are mostly resolved or dismissed, newer ones mostly
  new or assigned; ``case_events`` as the monitor writes them (opened, post added,
  assigned, responded, resolved or dismissed); one outbox row per flagged post, sent;
- the ``sources`` rows, and a run row per hour (what ``monitor status`` reads).

SQLite is left un-ANALYZEd (the monitor never runs ANALYZE there); PostgreSQL is VACUUM
ANALYZEd, as autovacuum would have done. ``build(url, posts, seed)`` is the library entry.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import dataclasses
import hashlib
import io
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import Connection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.model import Post, Severity  # noqa: E402
from monitor.queue import SlaTimes, priority  # noqa: E402
from monitor.rules import load_rules  # noqa: E402
from monitor.scoring.scorer import Scorer  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store.rows import flag_row, score_row  # noqa: E402
from monitor.store.schema import (  # noqa: E402
    case_events,
    case_posts,
    cases,
    deliveries,
    flags,
    metadata,
    posts,
    runs,
    scores,
    sources,
)

DATA = Path("/work/shared/data")
DAYS = 60
N_SOURCES = 200
N_AUTHORS = 30_000
KINDS = ("rss", "reddit", "discourse")
HOT_THREADS = 0.23   # threads with trouble in them
HOT_POSTS = 0.14     # a hot thread's post draws a flagged text this often
MEAN_THREAD = 8      # posts per thread, on average
TEAM = ("alice", "bob", "chen", "dana", "emil")
RECEIVER = "team-slack"
CHUNK = 20_000


# --- real text -----------------------------------------------------------------------------

def corpus() -> list[str]:
    """Every distinct text of the shared corpora (people's own words, English and French)."""
    found: list[str] = []
    for split in ("train.tsv", "dev.tsv"):
        path = DATA / "goemotions" / split
        if path.exists():
            with path.open(encoding="utf-8", newline="") as tsv:
                found += [row[0] for row in csv.reader(tsv, delimiter="\t") if row]
    for review in sorted((DATA / "mini-bar" / "classification").glob("*.csv")):
        with review.open(encoding="utf-8", newline="") as f:
            found += [row["data"] for row in csv.DictReader(f) if row.get("data")]
    urr = DATA / "urr-golden-set" / "dev.jsonl"
    if urr.exists():
        with urr.open(encoding="utf-8") as lines:
            found += [json.loads(line).get("text") or "" for line in lines if line.strip()]
    texts = list(dict.fromkeys(t.strip() for t in found if len(t.strip()) > 8))
    if not texts:
        raise SystemExit(f"no texts found under {DATA}")
    return texts


def title_of(sentence: str) -> str:
    words = sentence.split()[:8]
    return " ".join(words).rstrip(".,!?;:") or "Feedback"


@dataclass(frozen=True)
class Judged:
    """Each distinct text's score row, and its flag row per source kind (None: no flag)."""

    score_rows: list[dict[str, Any]]
    flag_rows: list[dict[str, dict[str, Any] | None]]
    hot: list[int]    # texts some rule flags for a person (under any kind)
    calm: list[int]   # texts no rule flags under any kind


def judge(texts: Sequence[str]) -> Judged:
    """Score each text once with the monitor's scorer; run the demo rules per source kind.
    Kept in the temp folder, keyed by the texts and the scorer's and rules' files (a rebuild
    then skips the ~40 s of scoring)."""
    key = hashlib.sha256("\0".join(texts).encode())
    for path in sorted([*(ROOT / "monitor" / "scoring").rglob("*"),
                        *(ROOT / "monitor" / "demo" / "rules").glob("*")]):
        if path.is_file():
            key.update(path.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"bigstore-judged-{key.hexdigest()[:16]}.json"
    if cache.exists():
        return Judged(**json.loads(cache.read_text()))
    judged = _judge(texts)
    cache.write_text(json.dumps(dataclasses.asdict(judged)))
    return judged


def _judge(texts: Sequence[str]) -> Judged:
    scorer = Scorer()
    rules = load_rules(ROOT / "monitor" / "demo" / "rules", ROOT)
    at = datetime.now(UTC)
    score_rows: list[dict[str, Any]] = []
    flag_rows: list[dict[str, dict[str, Any] | None]] = []
    hot: list[int] = []
    calm: list[int] = []
    for start in range(0, len(texts), 2000):
        batch = texts[start:start + 2000]
        for offset, score in enumerate(scorer.score_many([(None, t) for t in batch])):
            i = start + offset
            row = score_row(score)
            row["evidence"] = json.dumps(row["evidence"])  # once per text, not per post
            score_rows.append(row)
            post = Post("x", f"x{i}", "https://x.example", "someone", None, texts[i], at)
            per_kind = {}
            for kind in KINDS:
                flag = rules.evaluate(post, score, kind=kind)
                per_kind[kind] = None if flag is None else {
                    k: json.dumps(v) if isinstance(v, list) else v
                    for k, v in flag_row(flag).items()} | {"_person": flag.needs_person}
            flag_rows.append(per_kind)
            flagged = [f for f in per_kind.values() if f is not None]
            if not flagged:
                calm.append(i)
            elif any(f["_person"] for f in flagged):
                hot.append(i)
    return Judged(score_rows, flag_rows, hot, calm)


# --- the skeleton: sources, authors, threads ----------------------------------------------

@dataclass
class Thread:
    source: int
    key: str
    author: int
    title: int
    hot: bool
    flagged: list[tuple[int, str, dict[str, Any], datetime, int | None, int]]  # see build


def zipf(n: int, s: float) -> list[float]:
    return list(accumulate(1 / (i + 1) ** s for i in range(n)))


def pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


# --- writing -------------------------------------------------------------------------------

def _converters(table: Table, columns: Sequence[str], postgresql: bool) -> list[Any]:
    """Per column, what makes a Python value the driver's: naive UTC datetimes (text with
    microseconds on SQLite, as SQLAlchemy stores them), JSON as text."""
    out: list[Any] = []
    for name in columns:
        kind = type(table.c[name].type).__name__
        if kind == "UTCDateTime":
            out.append(_pg_time if postgresql else _sqlite_time)
        elif kind == "JSON":
            out.append(_json)
        else:
            out.append(None)
    return out


def _pg_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _sqlite_time(value: datetime | None) -> str | None:
    return None if value is None else \
        value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _json(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def write(db: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-insert ``rows`` (all with the same keys): COPY on PostgreSQL, the DB-API's
    executemany on SQLite (SQLAlchemy's per-value binds cost twice the insert itself)."""
    if not rows:
        return
    columns = list(rows[0])
    postgresql = db.dialect.name == "postgresql"
    convert = list(zip(columns, _converters(table, columns, postgresql), strict=True))
    values = [[row[c] if f is None else f(row[c]) for c, f in convert] for row in rows]
    raw = db.connection.dbapi_connection
    if not postgresql:
        raw.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})", values)
        return
    with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)


class Writer:
    """Rows buffered per table, written every ``CHUNK`` in the open transaction."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.buffers: dict[str, list[dict[str, Any]]] = {}
        self.tables = {t.name: t for t in (posts, scores, flags, cases, case_posts,
                                           case_events, deliveries)}
        self.counts: dict[str, int] = {}

    def add(self, table: str, row: dict[str, Any]) -> None:
        buffer = self.buffers.setdefault(table, [])
        buffer.append(row)
        if len(buffer) >= CHUNK:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        # posts first: the others point at them
        for name in [table] if table else ["posts", "scores", "flags", "cases", "case_posts",
                                           "case_events", "deliveries"]:
            buffer = self.buffers.get(name) or []
            if name != "posts" and self.buffers.get("posts"):
                self.flush("posts")
            if name in ("case_posts", "case_events") and self.buffers.get("cases"):
                self.flush("cases")
            write(self.db, self.tables[name], buffer)
            self.counts[name] = self.counts.get(name, 0) + len(buffer)
            self.buffers[name] = []


# --- the build -----------------------------------------------------------------------------

def build(url: str, posts_wanted: int = 1_000_000, seed: int = 1, *, fresh: bool = False,
          now: datetime | None = None, echo: Any = print) -> dict[str, Any]:
    """Fill the (empty) store at ``url`` with ``posts_wanted`` posts and what goes with them;
    returns the counts and seconds taken. ``fresh``: drop the monitor's tables first."""
    started = time.monotonic()
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    if fresh:
        _drop(url)
    store = Store(url)
    engine = store.engine
    with engine.connect() as db:
        if db.execute(select(func.count()).select_from(posts)).scalar():
            raise SystemExit(f"the store at {url} has posts already: use --fresh")
    rng = random.Random(seed)
    texts = corpus()
    t0 = time.monotonic()
    judged = judge(texts)
    echo(f"scored {len(texts):,} distinct texts in {time.monotonic() - t0:.1f} s "
         f"({len(judged.hot):,} flagged for a person, {len(judged.calm):,} never flagged)")

    source_names = [f"{KINDS[i % 3]}-{i:03d}" for i in range(N_SOURCES)]
    source_weights = zipf(N_SOURCES, 0.9)
    authors = [f"user_{rng.randrange(16 ** 6):06x}_{i}" for i in range(N_AUTHORS)]
    author_weights = zipf(N_AUTHORS, 1.0)
    vips = set(rng.sample(range(N_AUTHORS), 30))
    sla = SlaTimes()
    span = DAYS * 86400.0
    start_at = now - timedelta(days=DAYS)

    # every post's (seconds since start_at, thread, reply number), then sorted by time
    threads: list[Thread] = []
    skeleton: list[tuple[float, int, int]] = []
    while len(skeleton) < posts_wanted:
        t = len(threads)
        opened = rng.random() * span
        size = min(1 + int(rng.expovariate(1 / (MEAN_THREAD - 1))),
                   posts_wanted - len(skeleton))
        threads.append(Thread(pick(rng, source_weights), f"t{t}", pick(rng, author_weights),
                              rng.randrange(len(texts)), rng.random() < HOT_THREADS, []))
        skeleton.append((opened, t, 0))
        at = opened
        for n in range(1, size):
            at += rng.expovariate(1 / 3600.0) * (1 + n / 4)  # replies slow down
            if at >= span:
                break
            skeleton.append((at, t, n))
    skeleton.sort()
    echo(f"{len(skeleton):,} posts in {len(threads):,} threads")

    t0 = time.monotonic()
    with engine.begin() as db:
        # the full-text index is made whole at the end (``search.install`` on the next open
        # refills it when the insert trigger is missing): far faster than row by row
        if db.dialect.name == "sqlite":
            db.exec_driver_sql("DROP TRIGGER IF EXISTS posts_fts_insert")
            db.exec_driver_sql("PRAGMA synchronous=OFF")
        else:
            db.exec_driver_sql("DROP INDEX IF EXISTS ix_posts_fulltext")
        out = Writer(db)
        for post_id, (seconds, t, n) in enumerate(skeleton, start=1):
            thread = threads[t]
            source = source_names[thread.source]
            kind = KINDS[thread.source % 3]
            author_i = thread.author if n == 0 else pick(rng, author_weights)
            author = authors[author_i]
            if thread.hot and rng.random() < HOT_POSTS:
                text_i = judged.hot[rng.randrange(len(judged.hot))]
            else:
                text_i = judged.calm[rng.randrange(len(judged.calm))]
            body = texts[text_i]
            title = title_of(texts[thread.title]) if n == 0 else None
            published = start_at + timedelta(seconds=seconds)
            seen = published + timedelta(seconds=rng.randrange(60, 900))
            if seen > now:
                seen = now
            external = thread.key if n == 0 else f"{thread.key}-{n}"
            reach = (int(rng.lognormvariate(2, 1.8)) if kind == "reddit" else
                     rng.randrange(0, 50) if kind == "discourse" else None)
            digest = hashlib.sha256(f"{title or ''}\0{body}".encode()).hexdigest()
            out.add("posts", {
                "id": post_id, "source": source, "external_id": external,
                "url": f"https://{source}.example.com/{thread.key}/{n}", "author": author,
                "title": title, "text": body, "published_at": published,
                "first_seen_at": seen, "changed_at": seen, "content_hash": digest,
                "version": 1, "thread_id": thread.key,
                "parent_id": None if n == 0 else thread.key, "reach": reach,
                "imported_at": None, "pruned_at": None})
            scored_at = seen + timedelta(seconds=2)
            out.add("scores", {**judged.score_rows[text_i], "post_id": post_id,
                               "content_hash": digest, "scored_at": scored_at})
            flag = judged.flag_rows[text_i][kind]
            if flag is not None:
                row = {k: v for k, v in flag.items() if k != "_person"}
                out.add("flags", {**row, "post_id": post_id, "flagged_at": scored_at,
                                  "updated_at": scored_at})
                if flag["_person"]:
                    thread.flagged.append((post_id, flag["severity"], row, scored_at, reach,
                                           author_i))
                    out.add("deliveries", {
                        "key": f"flag:{post_id}:{RECEIVER}", "receiver": RECEIVER,
                        "post_id": post_id, "case_id": None,
                        "group_key": f"thread:{source}:{thread.key}", "state": "sent",
                        "attempts": 1, "next_attempt_at": scored_at, "claimed_until": None,
                        "batch_key": f"{RECEIVER}:{post_id}", "last_error": None,
                        "created_at": scored_at,
                        "sent_at": scored_at + timedelta(seconds=rng.randrange(30, 300)),
                        "folded_into": None})
        out.flush()
        echo(f"posts, scores, flags written in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        case_rows = _cases(threads, source_names, authors, vips, sla, now, rng)
        case_rows.sort(key=lambda c: c[0]["opened_at"])
        event_id = 0
        for case_id, (case, members, events) in enumerate(case_rows, start=1):
            out.add("cases", {**case, "id": case_id})
            for post_id, added in members:
                out.add("case_posts", {"case_id": case_id, "post_id": post_id,
                                       "added_at": added})
            for event in events:
                event_id += 1
                out.add("case_events", {**event, "id": event_id, "case_id": case_id})
        out.flush()
        _sources(db, source_names, now)
        _runs(db, now)
        if db.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("posts", "cases", "case_events", "deliveries", "runs"):
                db.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT coalesce(max(id), 1) FROM {table}))"))
        echo(f"cases, events, sources written in {time.monotonic() - t0:.1f} s")
    store.close()
    t0 = time.monotonic()
    Store(url).close()  # the full-text index, made whole
    echo(f"full-text index made in {time.monotonic() - t0:.1f} s")
    if engine.dialect.name == "postgresql":
        t0 = time.monotonic()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.execute(text("VACUUM ANALYZE"))
        echo(f"VACUUM ANALYZE in {time.monotonic() - t0:.1f} s")
        engine.dispose()
    counts = dict(out.counts)
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


def _cases(threads: Iterable[Thread], source_names: list[str], authors: list[str],
           vips: set[int], sla: SlaTimes, now: datetime, rng: random.Random,
           ) -> list[tuple[dict[str, Any], list[tuple[int, datetime]], list[dict[str, Any]]]]:
    """One case per thread with a flagged post: its row (no id), members and events."""
    out = []
    for thread in threads:
        if not thread.flagged:
            continue
        head_id, _, head_flag, opened, _, _ = thread.flagged[0]
        severity = max((f[1] for f in thread.flagged), key=lambda s: Severity(s).rank)
        weight = max(priority(sev, reach, author in vips)
                     for _, sev, _, _, reach, author in thread.flagged)
        age = (now - opened).total_seconds() / 86400
        if age > 2:
            state = rng.choices(("resolved", "dismissed", "responded", "assigned", "new"),
                                (70, 24, 3, 2, 1))[0]
        else:
            state = rng.choices(("new", "assigned", "responded", "resolved", "dismissed"),
                                (45, 30, 10, 10, 5))[0]
        assignee = rng.choice(TEAM) if state != "new" else None
        last = thread.flagged[-1][3]
        responded = min(now, opened + timedelta(minutes=rng.randint(10, 2000))) \
            if state in ("responded", "resolved") else None
        resolved = min(now, max(responded or opened, last) + timedelta(
            hours=rng.randint(1, 48))) if state in ("resolved", "dismissed") else None
        reason = rng.choice(("spam", "not a complaint", "duplicate")) \
            if state == "dismissed" else None
        events: list[dict[str, Any]] = [{
            "at": opened, "actor": None, "action": "opened",
            "detail": {"post_id": head_id, "severity": head_flag["severity"],
                       "category": head_flag["category"]}}]
        if assignee:
            events.append({"at": opened, "actor": None, "action": "assigned",
                           "detail": {"assignee": assignee, "auto": True}})
        for post_id, sev, _, added, _, _ in thread.flagged[1:]:
            events.append({"at": added, "actor": None, "action": "post added",
                           "detail": {"post_id": post_id, "severity": sev}})
        if responded:
            events.append({"at": responded, "actor": assignee, "action": "responded",
                           "detail": None})
        if resolved:
            events.append({"at": resolved, "actor": assignee, "action": state,
                           "detail": {"reason": reason} if reason else None})
        source = source_names[thread.source]
        case = {
            "post_id": head_id, "state": state, "severity": severity, "opened_at": opened,
            "updated_at": max(e["at"] for e in events),
            "group_key": f"thread:{source}:{thread.key}", "category": head_flag["category"],
            "priority": weight, "assignee": assignee, "due_at": sla.due(severity, opened),
            "first_response_at": responded, "resolved_at": resolved, "reason": reason,
            "reminded_at": None}
        out.append((case, [(f[0], f[3]) for f in thread.flagged], events))
    return out


def _sources(db: Connection, names: list[str], now: datetime) -> None:
    db.execute(sources.insert(), [
        {"name": name, "kind": name.split("-")[0], "cursor": None, "last_attempt_at": now,
         "last_success_at": now, "last_new_at": now, "last_error": None, "last_error_at": None,
         "failures": 0, "leased_by": None, "leased_until": None} for name in names])


def _runs(db: Connection, now: datetime) -> None:
    """A pass every hour for the last 30 days (what a daemon's status shows)."""
    rows = []
    for hour in range(30 * 24, 0, -1):
        at = now - timedelta(hours=hour)
        rows.append({"started_at": at, "finished_at": at + timedelta(seconds=40),
                     "ended": True, "report": {"sources": N_SOURCES, "new": 700,
                                               "flagged": 20, "errors": []}})
    db.execute(runs.insert(), rows)


def _drop(url: str) -> None:
    """Remove the monitor's tables (a SQLite file is removed whole)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    from sqlalchemy import create_engine
    engine = create_engine(url)
    with engine.begin() as db:
        metadata.drop_all(db)
    engine.dispose()


def _rows(counts: dict[str, Any]) -> Iterator[str]:
    for name, value in counts.items():
        yield f"  {name:<12} {value:>12,}" if isinstance(value, int) else \
            f"  {name:<12} {value:>12}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the store's SQLAlchemy URL")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="drop the store's tables first")
    args = parser.parse_args(argv)
    counts = build(args.url, args.posts, args.seed, fresh=args.fresh)
    buffer = io.StringIO()
    print("built:", file=buffer)
    for line in _rows(counts):
        print(line, file=buffer)
    print(buffer.getvalue(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
