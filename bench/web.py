"""Benchmark the web inbox: 20 people working a queue of 100,000 cases at once, on SQLite and
on PostgreSQL.

    python bench/web.py [--cases 100000 --users 20 --seconds 30 --think 0,1 --db both
                         --seed 1 --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

The store is built fast, with bulk INSERTs straight into the tables (not through the
pipeline): ``--cases`` cases over ~200 sources and ~30,000 authors, their posts (one case in
five is a thread of 2 to 5 flagged posts), as many unflagged posts again (the author
histories), each post's score and each flagged post's flag, and each case's events (opened,
the posts added, its assignment, response, resolution, and a note on one case in ten).
Titles and texts are real ones: GoEmotions' Reddit comments and Mini-BAR's app reviews from
/work/shared/data (a generated sentence when they are missing). Severities are critical 5%,
high 25%, medium 40%, low 30%; states 60% open (new, assigned, responded) and 40% closed
(resolved, dismissed); priorities are ``monitor.queue.priority`` of the severity, a reach and
a VIP author; ``due_at`` is the default SLA from the opening. The schema is the monitor's own
(``Store(url)`` makes it first). SQLite is a file in a temp folder (never ANALYZEd: a real
store is not either); PostgreSQL is a fresh database next to ``--pg-url``'s, VACUUM ANALYZEd
as autovacuum would have, and dropped at the end (skipped with a note when unreachable).

Then ``--users`` accounts (the config's team) are added, and ``monitor web`` serves the
project from a separate process (uvicorn, as in production). ``--users`` threads, each with
its own httpx client and session, log in and then, for ``--seconds``, ask one page after the
other: half the time the inbox (the default view; or ?view=mine, ?view=overdue,
?severity=critical, or one of pages 2 to 5), half the time a case page (/cases/<random id>;
it also writes a presence row). Between two pages a person waits a random 0 to 2x
``--think`` seconds; one measured run for each ``--think`` value, on the same server: 0 (no
waiting: a closed loop at full speed, where latency is about users / throughput) and 1 (a
person glancing at each page) by default. Printed per database: the build's time and the
store's size, then per run: requests, errors, throughput, the server's CPU (share of a core,
and per request), and the median, p95 and p99 latency of the inbox and of the case page,
against the target: inbox and case page <= 150 ms median and <= 400 ms p95 at 20 concurrent
users. Only 127.0.0.1 is contacted; the temp folder (and the PostgreSQL database) are removed
at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import httpx
from _loopback import loopback_only, write_project
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from monitor import accounts
from monitor import config as configuration
from monitor.queue import SlaTimes, priority
from monitor.store import Store
from monitor.store.schema import case_events, case_posts, cases, flags, posts, scores

DATA = Path("/work/shared/data")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_MEDIAN, TARGET_P95 = 0.150, 0.400  # seconds, inbox and case page, at 20 users
SEVERITIES = (("critical", 5), ("high", 25), ("medium", 40), ("low", 30))
STATES = (("new", 25), ("assigned", 20), ("responded", 15), ("resolved", 30), ("dismissed", 10))
CATEGORIES = ("backlash", "bug", "billing", "outage", "churn", "support", None)
KINDS = ("discourse", "reddit", "rss", "hackernews", "appstore")
CHUNK = 5000
PASSWORD = "bench-password-%02d!"
NOW = datetime.now(UTC).replace(microsecond=0)


# --- real text ---------------------------------------------------------------------------------

def corpus(rng: random.Random) -> list[str]:
    """Sentences people wrote: GoEmotions' comments and Mini-BAR's English app reviews."""
    found: list[str] = []
    goemotions = DATA / "goemotions" / "train.tsv"
    if goemotions.exists():
        with goemotions.open(encoding="utf-8") as tsv:
            found += [line.split("\t", 1)[0] for line in tsv if line.strip()]
    for review in sorted((DATA / "mini-bar" / "classification").glob("*.en.csv")):
        with review.open(encoding="utf-8", newline="") as f:
            found += [row["data"] for row in csv.DictReader(f) if row.get("data")]
    found = [t.replace("[NAME]", "Sam").strip() for t in found if len(t.strip()) > 8]
    if not found:  # no shared data: a few generated lines will do
        from _loopback import post_text
        found = [" ".join(post_text(rng)[1]) for _ in range(2000)]
    return found


def title_of(sentence: str) -> str:
    words = re.sub(r"\s+", " ", sentence).split(" ")[:9]
    return " ".join(words).rstrip(".,!?;:") or "Feedback"


# --- the store ---------------------------------------------------------------------------------

def build(engine: Engine, n_cases: int, team: list[str], seed: int) -> dict[str, int]:
    """Fill the tables with ``n_cases`` cases, their posts, scores, flags and events."""
    rng = random.Random(seed)
    texts = corpus(rng)
    source_names = [f"{KINDS[i % len(KINDS)]}-{i:03d}" for i in range(200)]
    source_weights = list(accumulate(1 / (i + 1) ** 0.8 for i in range(200)))  # a few big
    authors = [f"user_{rng.randrange(16**6):06x}_{i}" for i in range(30_000)]  # forums, a tail
    author_weights = list(accumulate(1 / (i + 1) ** 0.7 for i in range(30_000)))  # some write
    vips = set(rng.sample(authors, 300))
    sla = SlaTimes()

    def anyone() -> str:
        return rng.choices(authors, cum_weights=author_weights)[0]

    def somewhere() -> str:
        return rng.choices(source_names, cum_weights=source_weights)[0]
    post_rows: list[dict[str, Any]] = []
    score_rows: list[dict[str, Any]] = []
    flag_rows: list[dict[str, Any]] = []
    case_rows: list[dict[str, Any]] = []
    link_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    post_id = 0

    def add_post(source: str, author: str, external: str, thread: str | None,
                 title: str | None, at: datetime, flagged: str | None) -> dict[str, Any]:
        nonlocal post_id
        post_id += 1
        body = " ".join(rng.choice(texts) for _ in range(rng.choice((1, 1, 2, 3))))
        reach = int(rng.lognormvariate(3, 2)) if rng.random() < 0.7 else None
        row = {"id": post_id, "source": source, "external_id": external,
               "url": f"https://{source}.example.com/t/{external}", "author": author,
               "title": title, "text": body, "published_at": at, "first_seen_at": at,
               "changed_at": at, "content_hash": f"{post_id:064x}", "version": 1,
               "thread_id": thread, "parent_id": thread if thread != external else None,
               "reach": reach}
        post_rows.append(row)
        angry = flagged is not None and rng.random() < 0.6
        compound = round(rng.uniform(-1, -0.3) if flagged else rng.uniform(-0.4, 1), 3)
        neg = round(rng.uniform(0, 0.6), 3)
        score_rows.append({
            "post_id": post_id, "content_hash": row["content_hash"], "compound": compound,
            "pos": round(max(0.0, 1 - neg) * rng.random(), 3), "neu": round(1 - neg, 3),
            "neg": neg, "truncated": False, "scored_at": at + timedelta(seconds=5),
            "anger": round(rng.random() if angry else rng.random() * 0.3, 3),
            "change": round(rng.random() * 0.5, 3), "churn": round(rng.random() * 0.3, 3),
            "angry": angry, "language": "en" if rng.random() < 0.9 else "fr",
            "worst_sentence": body[:120], "evidence": None,
            "complaint": round(rng.random(), 3)})
        if flagged:
            category = rng.choice(CATEGORIES)
            flag_rows.append({
                "post_id": post_id, "severity": flagged, "category": category,
                "rules": [f"{category or 'anger'}-{flagged}"],
                "reasons": [f"anger {score_rows[-1]['anger']:.2f}", "negative tone"],
                "tags": ["launch"] if rng.random() < 0.2 else [],
                "flagged_at": at + timedelta(seconds=5), "updated_at": at + timedelta(seconds=5)})
        return row

    severities, severity_weights = zip(*SEVERITIES, strict=True)
    states, state_weights = zip(*STATES, strict=True)
    for case_id in range(1, n_cases + 1):
        source = somewhere()
        author = anyone()
        severity = rng.choices(severities, severity_weights)[0]
        state = rng.choices(states, state_weights)[0]
        # open cases are mostly recent; closed ones span half a year
        age = rng.expovariate(1 / 4) if state in ("new", "assigned", "responded") \
            else rng.uniform(0, 180)
        opened = NOW - timedelta(days=min(age, 180), seconds=rng.randrange(86400))
        thread = f"t{case_id}"
        head = add_post(source, author, thread, thread, title_of(rng.choice(texts)), opened,
                        severity)
        members = [head]
        lower = severities[severities.index(severity):]  # none above the case's
        if rng.random() < 0.2:  # a thread that kept flaring: replies filed into the case
            for j in range(rng.randint(1, 4)):
                at = opened + timedelta(minutes=rng.randint(5, 600) * (j + 1))
                members.append(add_post(source, anyone(), f"{thread}-{j}", thread, None, at,
                                        rng.choice(lower)))
        weight = max(priority(flag["severity"], post["reach"], post["author"] in vips)
                     for post, flag in zip(members, flag_rows[-len(members):], strict=True))
        assignee = rng.choice(team) if state != "new" else None
        responded = opened + timedelta(minutes=rng.randint(10, 3000)) \
            if state in ("responded", "resolved") else None
        resolved = (responded or opened) + timedelta(hours=rng.randint(1, 96)) \
            if state in ("resolved", "dismissed") else None
        case_rows.append({
            "id": case_id, "post_id": head["id"], "state": state, "severity": severity,
            "opened_at": opened, "updated_at": resolved or responded or opened,
            "group_key": f"thread:{source}:{thread}", "category": flag_rows[-len(members)][
                "category"], "priority": weight, "assignee": assignee,
            "due_at": sla.due(severity, opened), "first_response_at": responded,
            "resolved_at": resolved,
            "reason": rng.choice(("spam", "not a complaint", "duplicate"))
            if state == "dismissed" else None, "reminded_at": None})
        for post in members:
            link_rows.append({"case_id": case_id, "post_id": post["id"],
                              "added_at": post["published_at"]})
        event_rows.append({"case_id": case_id, "at": opened, "actor": None, "action": "opened",
                           "detail": {"post_id": head["id"], "severity": severity,
                                      "category": case_rows[-1]["category"]}})
        for post in members[1:]:
            event_rows.append({"case_id": case_id, "at": post["published_at"], "actor": None,
                               "action": "post added", "detail": {"post_id": post["id"]}})
        if assignee:
            event_rows.append({"case_id": case_id, "at": opened + timedelta(minutes=1),
                               "actor": None, "action": "assigned",
                               "detail": {"assignee": assignee, "auto": True}})
        if rng.random() < 0.1:
            event_rows.append({"case_id": case_id, "at": opened + timedelta(minutes=5),
                               "actor": assignee or rng.choice(team), "action": "note",
                               "detail": {"text": rng.choice(texts)}})
        if responded:
            event_rows.append({"case_id": case_id, "at": responded, "actor": assignee,
                               "action": "responded", "detail": {"text": rng.choice(texts)}})
        if resolved:
            event_rows.append({"case_id": case_id, "at": resolved, "actor": assignee,
                               "action": state, "detail": {"reason": case_rows[-1]["reason"]}})
    for _ in range(n_cases):  # unflagged posts: most of what is collected needs nobody
        at = NOW - timedelta(days=rng.uniform(0, 180))
        add_post(somewhere(), anyone(), f"u{post_id + 1}", None,
                 title_of(rng.choice(texts)) if rng.random() < 0.5 else None, at, None)

    with engine.begin() as db:
        for table, rows in ((posts, post_rows), (scores, score_rows), (flags, flag_rows),
                            (cases, case_rows), (case_posts, link_rows),
                            (case_events, event_rows)):
            for start in range(0, len(rows), CHUNK):
                db.execute(table.insert(), rows[start:start + CHUNK])
        if db.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("posts", "cases", "case_events"):
                db.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.execute(text("VACUUM ANALYZE"))
    return {"posts": len(post_rows), "flags": len(flag_rows), "cases": len(case_rows),
            "events": len(event_rows)}


def store_size(url: str, folder: Path) -> int:
    if url.startswith("sqlite"):
        return sum(p.stat().st_size for p in folder.glob("bench.db*"))
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return int(db.execute(text("SELECT pg_database_size(current_database())"))
                       .scalar_one())
    finally:
        engine.dispose()


@contextmanager
def pg_database(base: str) -> Iterator[str | None]:
    """A fresh database beside ``base``'s (None when PostgreSQL is unreachable), dropped
    afterwards."""
    name = f"fm_bench_web_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as db:
            db.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            db.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:  # noqa: BLE001 (any reason: say it and skip)
        print(f"PostgreSQL skipped: {base} unreachable ({type(error).__name__}: "
              f"{str(error).splitlines()[0] if str(error) else ''})")
        admin.dispose()
        yield None
        return
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as db:
            db.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


# --- the server and the people -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process and its worker processes have used so far (Linux
    /proc; ``--workers`` serves from children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def served(config: Path, workers: int = 1) -> Iterator[tuple[str, int]]:
    """``monitor web`` in its own process; yields its base URL and pid once it answers."""
    port = free_port()
    log = (config.parent / "web.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "web", "--config",
                                str(config), "--host", "127.0.0.1", "--port", str(port),
                                "--workers", str(workers)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=config.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"monitor web exited ({process.returncode}): "
                                   + (config.parent / "web.log").read_text()[-2000:])
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("monitor web did not answer within 60 s")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def log_in(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if csrf is None:
        raise RuntimeError("no csrf field on /login")
    answer = client.post("/login", data={"name": name, "password": password,
                                         "csrf": csrf.group(1), "next": "/"})
    if answer.status_code != 303 or "fm_session" not in client.cookies:
        raise RuntimeError(f"login of {name} failed: {answer.status_code}")
    return client


def person(client: httpx.Client, n_cases: int, seed: int, until: float, think: float,
           results: dict[str, list[float]], errors: list[str], lock: threading.Lock) -> None:
    rng = random.Random(seed)
    mine: dict[str, list[float]] = defaultdict(list)
    while time.monotonic() < until:
        if rng.random() < 0.5:
            kind = "inbox"
            path = rng.choices(["/", "/?view=mine", "/?view=overdue", "/?severity=critical",
                                f"/?page={rng.randint(2, 5)}"], [6, 1, 1, 1, 1])[0]
        else:
            kind, path = "case", f"/cases/{rng.randint(1, n_cases)}"
        start = time.perf_counter()
        try:
            answer = client.get(path)
            took = time.perf_counter() - start
            if answer.status_code != 200:
                errors.append(f"{path}: {answer.status_code}")
            else:
                mine[kind].append(took)
        except httpx.HTTPError as error:
            errors.append(f"{path}: {type(error).__name__}")
        if think:
            time.sleep(rng.uniform(0, 2 * think))
    with lock:
        for kind, values in mine.items():
            results[kind] += values


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(base: str, pid: int, team: list[str], n_cases: int, seconds: float, think: float,
         seed: int) -> tuple[dict[str, list[float]], list[str], float, float]:
    """(latencies by page, errors, wall seconds, server CPU seconds) of one measured run."""
    clients = [log_in(base, name, PASSWORD % i) for i, name in enumerate(team)]
    for client in clients:  # one page each first: templates compiled, pools filled
        client.get("/")
    results: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    cpu = cpu_seconds(pid)
    start = time.monotonic()
    threads = [threading.Thread(target=person, args=(c, n_cases, seed * 1000 + i,
                                                     start + seconds, think, results,
                                                     errors, lock))
               for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    cpu = cpu_seconds(pid) - cpu
    for client in clients:
        client.close()
    return results, errors, wall, cpu


# --- one database --------------------------------------------------------------------------------

def run(db: str, url: str, args: argparse.Namespace, folder: Path) -> None:
    team = [f"agent{i:02d}" for i in range(args.users)]
    config_path = write_project(
        folder, {}, store=url, team=[{"name": n} for n in team],
        events=[{"name": "Redesign", "date": (NOW - timedelta(days=10)).date(),
                 "keywords": ["update", "new version", "redesign"]}])
    print(f"\n== {db}: building {args.cases:,} cases ...", flush=True)
    config = configuration.load(config_path)
    clock = time.perf_counter()
    with Store(config.store_url) as store:  # the monitor's own schema, then the rows
        counts = build(store.engine, args.cases, team, args.seed)
    built = time.perf_counter() - clock
    with Store(config.store_url) as store:
        for i, name in enumerate(team):
            role = "admin" if i == 0 else "lead" if i < 4 else "staff"
            accounts.add_user(store, name, role, PASSWORD % i, NOW)
    size = store_size(config.store_url, folder)
    print(f"built in {built:.1f} s: {counts['cases']:,} cases, {counts['posts']:,} posts "
          f"({counts['flags']:,} flagged), {counts['events']:,} events; store "
          f"{size / 2**20:.0f} MiB", flush=True)
    with served(config_path, args.workers) as (base, pid):
        for think in args.think:
            report(*load(base, pid, team, args.cases, args.seconds, think, args.seed),
                   users=args.users, think=think)


def report(results: dict[str, list[float]], errors: list[str], wall: float, cpu: float, *,
           users: int, think: float) -> None:
    total = sum(len(v) for v in results.values())
    print(f"{users} users for {wall:.1f} s, think {think:g} s: {total:,} requests, "
          f"{total / wall:.1f}/s, {len(errors)} errors"
          + (f" (first: {errors[0]})" if errors else "")
          + f"; server CPU {cpu / wall * 100:.0f}% of a core, "
          f"{cpu / max(total, 1) * 1000:.1f} ms a request")
    met = not errors
    for kind, label in (("inbox", "inbox"), ("case", "case page")):
        values = results.get(kind, [])
        if not values:
            print(f"  {label:9}: no answers")
            met = False
            continue
        median, p95, p99 = (statistics.median(values), quantile(values, 0.95),
                            quantile(values, 0.99))
        ok = median <= TARGET_MEDIAN and p95 <= TARGET_P95
        met = met and ok
        print(f"  {label:9}: {len(values):6,} requests, median {median * 1000:6.1f} ms, "
              f"p95 {p95 * 1000:6.1f} ms, p99 {p99 * 1000:6.1f} ms, "
              f"max {max(values) * 1000:6.1f} ms  {'ok' if ok else 'MISSED'}")
    print(f"  target (inbox and case page <= {TARGET_MEDIAN * 1000:.0f} ms median, "
          f"<= {TARGET_P95 * 1000:.0f} ms p95 at {users} concurrent users): "
          f"{'met' if met else 'NOT met'}"
          + ("  (no think time: a closed loop, so median ~ users / throughput)"
             if not think else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20, help="concurrent people (and team)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per database")
    parser.add_argument("--think", type=lambda v: [float(x) for x in v.split(",")],
                        default=[0.0, 1.0],
                        help="mean seconds a person waits between pages, one measured run "
                        "each (comma-separated; 0: none)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=PG_URL,
                        help="a PostgreSQL server to make (and drop) a bench database on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes serving pages (monitor web --workers)")
    args = parser.parse_args()
    loopback_only()
    print(f"web inbox bench: {args.cases:,} cases, {args.users} users, {args.seconds:.0f} s "
          f"per database, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="fm-bench-web-") as tmp:
        if args.db in ("sqlite", "both"):
            run("SQLite", "sqlite:///bench.db", args, Path(tmp) / "sqlite")
        if args.db in ("postgresql", "both"):
            with pg_database(args.pg_url) as url:
                if url is not None:
                    run("PostgreSQL", url, args, Path(tmp) / "postgresql")
    return 0


if __name__ == "__main__":
    sys.exit(main())
