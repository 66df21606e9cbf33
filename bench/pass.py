"""Benchmark one monitor pass against generated RSS feeds served on 127.0.0.1.

    python bench/pass.py [--feeds 200 --entries 50 --concurrency 8 --seed 1 --trace-feeds 50]

A loopback ThreadingHTTPServer (in a child process, so its CPU, memory and GIL do not count
against the pass) serves ``--feeds`` RSS 2.0 feeds of ``--entries`` items each and answers
``If-None-Match`` with 304. A throw-away project folder (config.yaml, a SQLite store,
sources/bench.yaml, rules/ holding a copy of the packaged demo rule pack) is written to a temp
folder, then:

* a cold pass (every post new: fetch, parse, store, score, flag) and
* a warm pass (every feed answers 304)

each run ``monitor.pipeline.run_once`` on a fresh ``monitor.config.load`` and ``Store``.
For each pass it prints wall time, posts stored, posts/s, feeds/s, the process's ru_maxrss,
what the server answered, and the time spent inside parse_feed / save_fetch / score_pending.

tracemalloc slows this workload about fivefold, so the timed passes run without it and the
tracemalloc peak of Python allocations comes from a second cold + warm pair on a fresh store
over the first ``--trace-feeds`` feeds (default 50, to stay near a minute in all). That peak
grows with the posts a pass fetches (run_once keeps every fetch until it returns), so pass
``--trace-feeds 200`` for the full-size figure, at about two more minutes. Only 127.0.0.1 is
ever contacted; the temp folder is removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import multiprocessing as mp
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

import monitor.collectors.rss as rss
import monitor.pipeline as pipeline
from monitor.config import load
from monitor.store import Store, posts

# --- generated feeds -------------------------------------------------------------------------

PEOPLE = ["Jane Doe", "Ravi Patel", "Chen Wei", "Maria Garcia", "Tom Becker", "Aiko Sato",
          "Olu Adeyemi", "Sam Fischer", "Lena Novak", "Diego Ramos", "Priya Nair", "Mark Olsen"]

# (weight, titles, opening sentences): each entry draws one mood, then mixes in filler.
MOODS: list[tuple[int, list[str], list[str]]] = [
    (15, ["The redesign is a disaster", "Why did you change everything?", "New layout is awful",
          "Since the update nothing works"],
     ["The redesign is a <strong>complete disaster</strong> and I hate using it now.",
      "Since the update I can't find anything, this new layout is terrible and confusing.",
      "You removed the export button without asking anyone. Awful, stupid decision.",
      "I used to be able to sort my notes by date, now it is gone. This is infuriating!",
      "The new design is ugly, slow and broken. Worst update ever, seriously angry."]),
    (10, ["Bring back the old editor", "Please give us the old version",
          "Feedback on the new editor"],
     ["Could you please bring back the old editor? I was much faster with it.",
      "I would love to go back to the old layout, the sidebar worked better for me.",
      "Honestly, please revert the redesign, or at least give us a setting for it."]),
    (15, ["App keeps crashing", "Sync lost my notes", "Support never answers"],
     ["The app crashed three times today and I lost an hour of work. Absolutely furious.",
      "Sync deleted half my notebook. This is unacceptable and I want a refund.",
      "Support has ignored my ticket for two weeks. Terrible service, I am cancelling."]),
    (35, ["Love the dark mode", "Thanks for the quick fix", "Great release",
          "Small praise for the team"],
     ["Love the new dark mode, great work team! It looks <em>beautiful</em> on my laptop.",
      "Thanks for the quick fix, everything works perfectly now and sync is fast.",
      "Really happy with this release, the search is so much better. Nice job!",
      "The offline mode saved me on a flight yesterday. Wonderful feature, thank you."]),
    (25, ["How do I export to PDF?", "Question about shared notebooks", "Keyboard shortcuts"],
     ["Does anyone know how to export a notebook to PDF on the desktop app?",
      "Is there a limit on how many people can edit a shared notebook at once?",
      "Where can I find the list of keyboard shortcuts for the editor?"]),
]
FILLER = [
    "I have used Acme Notes every day for about three years, mostly for work.",
    "My setup is a Windows laptop at the office and an Android phone at home.",
    "I mainly keep meeting notes, recipes &amp; a reading list in separate notebooks.",
    "A colleague of mine noticed the same thing on her iPad this morning.",
    "I checked the help centre before posting but did not find an answer.",
    "For context, I am on the Pro plan and the latest desktop version.",
    "Screenshots are in the <a href=\"https://example.com/shot.png\">attached image</a>.",
    "We rely on it for our team\u2019s weekly planning, so this matters to us.",
]


def feed_xml(index: int, entries: int, base: str, seed: int) -> bytes:
    """One RSS 2.0 feed of ``entries`` items; deterministic for (index, seed)."""
    rng = random.Random(seed * 1_000_003 + index)
    weights = [m[0] for m in MOODS]
    start = datetime(2024, 5, 1, 12, tzinfo=UTC) - timedelta(days=index % 30)
    items = []
    for n in range(entries):
        _, titles, openings = rng.choices(MOODS, weights)[0]
        sentences = rng.sample(openings, k=min(len(openings), rng.randint(1, 2)))
        sentences += rng.sample(FILLER, k=rng.randint(1, 3))
        rng.shuffle(sentences)
        paragraphs = "".join(f"<p>{s}</p>" for s in sentences)
        person = rng.choice(PEOPLE)
        email = person.lower().replace(" ", ".") + "@example.com"
        published = start - timedelta(hours=n * 3, minutes=rng.randint(0, 59))
        items.append(
            "<item>"
            f"<title>{escape(rng.choice(titles))} (#{n})</title>"
            f"<link>{base}/forum/{index}/topic/{n}</link>"
            f"<guid isPermaLink=\"false\">bench-{index}-{n}</guid>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<author>{email} ({person})</author>"
            f"<description><![CDATA[{paragraphs}]]></description>"
            "</item>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>"
            f"<title>Acme Notes forum, board {index}</title><link>{base}/forum/{index}</link>"
            f"<description>Posts on board {index}</description>"
            + "".join(items) + "</channel></rss>").encode()


# --- the loopback server (child process) -----------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 is small for 8+ connects at once


def serve(feeds: int, entries: int, seed: int, port: Any, ready: Any, stop: Any,
          counts: Any) -> None:
    """Child process: serve /feeds/<i>.xml until ``stop`` is set; count 200s and 304s."""
    routes: dict[str, tuple[bytes, str]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            route = routes.get(self.path)
            if route is None:
                self._send(404, b"not found", None)
                return
            body, etag = route
            wanted = [t.strip().removeprefix("W/")
                      for t in self.headers.get("If-None-Match", "").split(",")]
            if etag in wanted or "*" in wanted:
                self._send(304, b"", etag)
            else:
                self._send(200, body, etag)

        def _send(self, status: int, body: bytes, etag: str | None) -> None:
            with lock:
                counts[{200: 0, 304: 1}.get(status, 2)] += 1
            self.send_response(status)
            if etag:
                self.send_header("ETag", etag)
            if status == 200:
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = _Server(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    for i in range(feeds):
        body = feed_xml(i, entries, base, seed)
        routes[f"/feeds/{i}.xml"] = (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port.value = httpd.server_address[1]
    ready.set()
    stop.wait()
    httpd.shutdown()
    httpd.server_close()


# --- the project folder ----------------------------------------------------------------------

def write_project(folder: Path, base: str, feeds: int, concurrency: int) -> Path:
    (folder / "sources").mkdir()
    (folder / "rules").mkdir()
    (folder / "reports").mkdir()
    config = {
        "store": "sqlite:///bench.db", "timezone": "UTC", "sources": "sources/",
        "rules": "rules/", "reports": "reports/", "interval": "15m",
        "concurrency": concurrency,
        "http": {"user_agent": "feedback-monitor-bench/0.1", "connect_timeout": 5,
                 "read_timeout": 20, "total_timeout": 60, "retries": 0, "backoff": 0.1},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    sources = [{"name": f"board-{i:03d}", "kind": "rss", "url": f"{base}/feeds/{i}.xml",
                "tags": ["bench"]} for i in range(feeds)]
    (folder / "sources" / "bench.yaml").write_text(yaml.safe_dump({"sources": sources},
                                                                  sort_keys=False))
    pack = importlib.resources.files("monitor") / "demo" / "rules" / "backlash.yaml"
    with importlib.resources.as_file(pack) as path:
        shutil.copy(path, folder / "rules" / "backlash.yaml")
    return folder / "config.yaml"


# --- measuring -------------------------------------------------------------------------------

@contextmanager
def timed(owner: Any, name: str, into: dict[str, float]) -> Iterator[None]:
    """Add the seconds spent in ``owner.name`` (all threads) to ``into[name]``, if it exists."""
    original: Callable[..., Any] | None = getattr(owner, name, None)
    if original is None:  # renamed in monitor/: just time less
        yield
        return
    lock = threading.Lock()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        clock = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                into[name] = into.get(name, 0.0) + time.perf_counter() - clock

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_pass(label: str, config_path: Path, counts: Any, trace: bool) -> dict[str, Any]:
    """One run_once on a fresh config and Store; prints and returns its figures."""
    clock = time.perf_counter()
    config = load(config_path)
    store = Store(config.store_url)
    setup = time.perf_counter() - clock
    before = list(counts)
    rss_before = maxrss_mib()
    parts: dict[str, float] = {}
    if trace:
        tracemalloc.start()
    try:
        with timed(rss, "parse_feed", parts), timed(Store, "save_fetch", parts), \
                timed(pipeline, "score_pending", parts):
            clock = time.perf_counter()
            report = pipeline.run_once(config, store)
            wall = time.perf_counter() - clock
        peak = tracemalloc.get_traced_memory()[1] if trace else None
    finally:
        tracemalloc.stop()
    with store.engine.connect() as db:
        in_store = db.execute(select(func.count()).select_from(posts)).scalar_one()
    store.close()
    ok200, got304, other = (after - was for after, was in zip(list(counts), before, strict=True))
    feeds = len(report.sources)
    fetched = sum(s.fetched for s in report.sources)
    new = sum(s.new for s in report.sources)
    figures = {"label": label, "wall": wall, "feeds": feeds, "new": new, "peak": peak,
               "maxrss": maxrss_mib(), "got304": got304}

    print(f"\n== {label} pass ==")
    print(f"  wall time         {wall:8.2f} s   (config load + Store open before it: "
          f"{setup:.2f} s)")
    print(f"  feeds             {feeds:8d}     ok {feeds - len(report.failed)}, "
          f"failed {len(report.failed)}, unchanged {sum(s.unchanged for s in report.sources)}")
    print(f"  posts stored      {new:8d}     (fetched {fetched}, edited "
          f"{sum(s.edited for s in report.sources)}, in store now {in_store})")
    print(f"  posts scored      {report.scored:8d}     flagged {report.flagged}")
    print(f"  posts / s         {new / wall:8.1f}     (fetched posts / s {fetched / wall:.1f})")
    print(f"  feeds / s         {feeds / wall:8.1f}")
    if peak is None:
        print("  tracemalloc peak       n/a     (not traced: see the traced passes)")
    else:
        print(f"  tracemalloc peak  {peak / 2**20:8.1f} MiB (Python allocations during the pass)")
    print(f"  ru_maxrss         {maxrss_mib():8.1f} MiB (process peak so far; "
          f"{rss_before:.1f} MiB before this pass)")
    print(f"  server answered   200: {ok200}, 304: {got304}, other: {other}")
    print(f"  time inside       parse_feed {parts.get('parse_feed', 0):.2f} s (summed over "
          f"{config.main.concurrency} threads); on the main thread save_fetch "
          f"{parts.get('save_fetch', 0):.2f} s, "
          f"score_pending {parts.get('score_pending', 0):.2f} s")
    for source in report.failed[:5]:
        print(f"  FAILED {source.name}: {source.error}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8, help="config.yaml concurrency")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trace-feeds", type=int, default=50, metavar="N",
                        help="feeds in the traced (tracemalloc) passes; 0 skips them")
    args = parser.parse_args()
    trace_feeds = min(args.trace_feeds, args.feeds)

    # Loopback only: never let an inherited proxy setting route 127.0.0.1 elsewhere.
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(filter(None, [os.environ.get(var), "127.0.0.1", "localhost"]))

    ctx = mp.get_context("spawn")  # a clean child: no copy of this process's state
    port, ready, stop = ctx.Value("i", 0), ctx.Event(), ctx.Event()
    counts = ctx.Array("q", 3, lock=False)  # 200s, 304s, others; the child locks its own writes
    clock = time.perf_counter()
    server = ctx.Process(target=serve, args=(args.feeds, args.entries, args.seed, port, ready,
                                             stop, counts), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            print("the loopback server did not start", file=sys.stderr)
            return 1
        base = f"http://127.0.0.1:{port.value}"
        print(f"feedback-monitor pass benchmark: {args.feeds} feeds x {args.entries} entries "
              f"at {base}, concurrency {args.concurrency}, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]}")
        print(f"server (child process) ready in {time.perf_counter() - clock:.2f} s; "
              f"ru_maxrss before the passes: {maxrss_mib():.1f} MiB")
        results = []
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as temp:
            timed_dir, traced_dir = Path(temp, "timed"), Path(temp, "traced")
            timed_dir.mkdir()
            config_path = write_project(timed_dir, base, args.feeds, args.concurrency)
            print("\n-- timed passes (tracemalloc off: it slows this workload about 5x) --")
            results.append(run_pass("cold", config_path, counts, trace=False))
            results.append(run_pass("warm", config_path, counts, trace=False))
            if trace_feeds:
                traced_dir.mkdir()
                config_path = write_project(traced_dir, base, trace_feeds, args.concurrency)
                print(f"\n-- traced passes: the first {trace_feeds} of {args.feeds} feeds, "
                      "fresh store, tracemalloc on (their times are not representative; "
                      "the peak grows with the posts fetched) --")
                results.append(run_pass("traced cold", config_path, counts, trace=True))
                results.append(run_pass("traced warm", config_path, counts, trace=True))
        print("\n== summary ==")
        print(f"  {'pass':<12} {'feeds':>5} {'wall s':>7} {'stored':>7} {'posts/s':>8} "
              f"{'feeds/s':>8} {'304s':>5} {'tracemalloc MiB':>15} {'maxrss MiB':>10}")
        for r in results:
            peak = "-" if r["peak"] is None else f"{r['peak'] / 2**20:.1f}"
            print(f"  {r['label']:<12} {r['feeds']:>5} {r['wall']:>7.2f} {r['new']:>7} "
                  f"{r['new'] / r['wall']:>8.1f} {r['feeds'] / r['wall']:>8.1f} "
                  f"{r['got304']:>5} {peak:>15} {r['maxrss']:>10.1f}")
    finally:
        stop.set()
        server.join(10)
        if server.is_alive():
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
