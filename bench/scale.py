"""Benchmark a big community's history: `monitor import` of a million posts, then every
command on the store it made (issue 19).

    python bench/scale.py [--posts 1000000] [--db sqlite|postgresql|both] [--seed 1]
                          [--keep DIR] [--skip-commands]

1. A Reddit-dump-style file (the newline-delimited JSON of submissions and comments that
   Pushshift and Arctic Shift publish, fields as in tests/fixtures/import/) is generated from
   the real texts in /work/shared/data (bench/bigstore.corpus: GoEmotions, Mini-BAR English
   and French, URR), spread over the last 60 days, by 30,000 authors in threads.
2. A throw-away project (the packaged demo rules, one reddit source the dump belongs to, the
   store on SQLite or on a fresh PostgreSQL schema) runs `monitor import FILE --source
   bench-reddit --open-cases` as a subprocess (so cases fill the queue as a worst case):
   wall time, posts/s, and the peak memory of the command with its worker processes (the sum
   of their proportional set sizes, PSS, sampled every 0.2 s: forked workers share pages).
3. On that store, bench/commands.time_commands runs `digest`, `backlash`, `queue list`,
   `status`, `export --since 7d` and `rescore --since 1d` as whole processes.

Targets: the import <= 5 min and <= 1 GB peak on 2 cores; each command <= 2 s. Only
127.0.0.1 is contacted (PostgreSQL); the temp folder and schema are removed at the end unless
``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bigstore import corpus, judge, title_of  # noqa: E402
from commands import time_commands  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DAYS = 60
AUTHORS = 30_000
SUBREDDIT = "acmeapp"


# --- the dump ----------------------------------------------------------------------------------

def write_dump(path: Path, posts: int, seed: int) -> int:
    """Write ``posts`` records (a submission, then its comments) in time order; returns how
    many it wrote. About one post in eight opens a thread. As in bench/bigstore.py, threads
    are hot (15 %) or calm: a calm thread draws texts no demo rule flags, a hot one draws a
    flagged text one time in five, so some 3 % of the posts are flagged, as in a real
    community (drawn uniformly, a third of these corpora's texts would be)."""
    rng = random.Random(seed)
    texts = corpus()
    judged = judge(texts)
    hot, calm = [texts[i] for i in judged.hot], [texts[i] for i in judged.calm]
    now = datetime.now(UTC).timestamp()
    start = now - DAYS * 86400
    step = DAYS * 86400 / posts
    written = 0
    with path.open("w") as out:
        for record in _records(rng, hot, calm, start, step, posts):
            out.write(json.dumps(record) + "\n")
            written += 1
    return written


def _records(rng: random.Random, hot: list[str], calm: list[str], start: float, step: float,
             posts: int) -> Iterator[dict[str, object]]:
    thread: dict[str, object] | None = None
    comments: list[str] = []
    heated = False
    for n in range(posts):
        created = int(start + n * step)
        author = f"user{int(rng.paretovariate(1.2)) % AUTHORS}"
        opens = thread is None or rng.random() < 0.125
        if opens:
            heated = rng.random() < 0.15
        text = rng.choice(hot if heated and rng.random() < 0.2 else calm)
        if opens:
            ident = f"s{n:07x}"
            title = title_of(rng.choice(calm))
            slug = "_".join(title.lower().split()[:6]) or "post"
            thread = {"id": ident, "title": title, "slug": slug}
            comments = []
            yield {"id": ident, "author": author, "created_utc": created,
                   "subreddit": SUBREDDIT, "title": thread["title"], "selftext": text,
                   "permalink": f"/r/{SUBREDDIT}/comments/{ident}/{slug}/",
                   "url": f"https://www.reddit.com/r/{SUBREDDIT}/comments/{ident}/{slug}/",
                   "is_self": True, "score": rng.randint(0, 300),
                   "num_comments": 0, "retrieved_on": created + 3600}
            continue
        ident = f"c{n:07x}"
        parent = f"t1_{rng.choice(comments)}" if comments and rng.random() < 0.4 \
            else f"t3_{thread['id']}"
        comments.append(ident)
        yield {"id": ident, "author": author, "body": text, "created_utc": created,
               "link_id": f"t3_{thread['id']}", "parent_id": parent, "subreddit": SUBREDDIT,
               "permalink": f"/r/{SUBREDDIT}/comments/{thread['id']}/{thread['slug']}/{ident}/",
               "score": rng.randint(-5, 50), "retrieved_on": created + 3600}


# --- the project and the import ----------------------------------------------------------------

def write_project(folder: Path, url: str) -> Path:
    import shutil

    (folder / "sources").mkdir(parents=True)
    shutil.copytree(ROOT / "monitor" / "demo" / "rules", folder / "rules")
    (folder / "config.yaml").write_text(yaml.safe_dump({"store": url}))
    (folder / "sources" / "reddit.yaml").write_text(yaml.safe_dump({"sources": [
        {"name": "bench-reddit", "kind": "reddit", "subreddits": [SUBREDDIT],
         "client_id": "bench", "client_secret": "bench"}]}))
    return folder / "config.yaml"


def run_import(config: Path, dump: Path) -> tuple[float, float, str]:
    """(seconds, peak MB of the process tree's PSS, the command's summary line)."""
    clock = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "import", str(dump), "--source", "bench-reddit",
         "--open-cases", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config.parent)
    peak = [0.0]
    done = threading.Event()
    threading.Thread(target=_sample_pss, args=(process.pid, peak, done), daemon=True).start()
    out, err = process.communicate()
    done.set()
    seconds = time.monotonic() - clock
    if process.returncode != 0:
        raise SystemExit(f"monitor import failed ({process.returncode}):\n{out}\n{err}")
    return seconds, peak[0], out.strip().splitlines()[0]


def _sample_pss(pid: int, peak: list[float], done: threading.Event) -> None:
    while not done.wait(0.2):
        total = sum(_pss_kib(p) for p in (pid, *_descendants(pid)))
        peak[0] = max(peak[0], total / 1024)


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(c) for c in children]
    for child in list(found):
        found.extend(_descendants(child))
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- one database ------------------------------------------------------------------------------

def measure(kind: str, dump: Path, folder: Path, keep: bool, commands: bool) -> None:
    from sqlalchemy import create_engine, text

    schema = f"scale_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        url = f"sqlite:///{folder / kind / 'monitor.db'}"
    else:
        with create_engine(PG).begin() as db:
            db.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{PG}?options=-csearch_path%3D{schema}"
    try:
        config = write_project(folder / kind, url)
        seconds, peak, summary = run_import(config, dump)
        print(f"\n{kind}: import {seconds:.0f} s, peak {peak:.0f} MB (PSS, with workers)")
        print(f"  {summary}")
        if commands:
            print(f"{kind}: commands on the imported store")
            time_commands(url, "Europe/Paris")
    finally:
        if kind != "sqlite" and not keep:
            with create_engine(PG).begin() as db:
                db.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        elif kind != "sqlite":
            print(f"  kept: {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    parser.add_argument("--skip-commands", action="store_true")
    args = parser.parse_args()
    os.environ.pop("MONITOR_CONFIG", None)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / "RC_bench.ndjson"
    clock = time.monotonic()
    count = write_dump(dump, args.posts, args.seed)
    print(f"dump: {count:,} records, {dump.stat().st_size / 2**20:.0f} MB, written in "
          f"{time.monotonic() - clock:.0f} s; {os.cpu_count()} CPUs")
    try:
        for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
            measure(kind, dump, folder, args.keep is not None, not args.skip_commands)
    finally:
        if args.keep is None:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
