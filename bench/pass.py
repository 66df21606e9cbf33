"""Benchmark one monitor pass against generated RSS feeds served on 127.0.0.1.

    python bench/pass.py [--feeds 1000 --entries 50 --concurrency 8 --seed 1 --trace-feeds 50
                          --no-pool]

A loopback ThreadingHTTPServer (in a child process, so its CPU, memory and GIL do not count
against the pass) serves ``--feeds`` RSS 2.0 feeds of ``--entries`` items each and answers
``If-None-Match`` with 304. A throw-away project folder (config.yaml, a SQLite store,
sources/bench.yaml, rules/ holding a copy of the packaged demo rule pack) is written to a temp
folder, then:

* a cold pass (every post new: fetch, parse, store, score, flag) and
* a warm pass (every feed answers 304)

each run ``monitor.pipeline.run_once`` on a fresh ``monitor.config.load`` and ``Store``.
For each pass it prints wall time, CPU time (this process and its feed-parsing workers),
posts stored, posts/s, feeds/s, the process's ru_maxrss, what the server answered, and the
time spent waiting for feeds to be parsed / in save_fetches / score_pending.

Beside them, in the same run, the naive loop the pass is measured against: ``feedparser.parse``
of every feed URL on ``--concurrency`` threads (feedparser's own HTTP, its HTML sanitising,
nothing stored or scored), cold and then warm (each feed's ETag sent back: all 304).

tracemalloc slows this workload about fivefold, so the timed passes run without it and the
tracemalloc peak of Python allocations comes from a second cold + warm pair on a fresh store
over the first ``--trace-feeds`` feeds (default 50, to stay near a minute in all). That peak
grows with the posts a pass fetches (run_once keeps every fetch until it returns), so pass
``--trace-feeds 200`` for the full-size figure, at about two more minutes. Only 127.0.0.1 is
ever contacted; the temp folder is removed at the end. The feeds, the server's setup and the
project folder come from bench/_loopback.py, shared with the other benchmarks.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing.forkserver
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import feedparser
from _loopback import (
    RSS_TYPE,
    SPAWN,
    CountingHandler,
    Server,
    child_server,
    feed_xml,
    loopback_only,
    maxrss_mib,
    serve_until_stopped,
    timed,
    write_project,
)
from sqlalchemy import func, select

import monitor.collectors.rss as rss
import monitor.pipeline as pipeline
from monitor.config import load
from monitor.store import Store, posts

# --- the loopback server (child process) -----------------------------------------------------

def serve(port: Any, ready: Any, stop: Any, feeds: int, entries: int, seed: int,
          counts: Any) -> None:
    """Child process: serve /feeds/<i>.xml until ``stop`` is set; count 200s and 304s."""
    routes: dict[str, tuple[bytes, str]] = {}
    lock = threading.Lock()

    class Handler(CountingHandler):

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
            self.answer(status, body, RSS_TYPE if status == 200 else None, etag)

    Handler.counts, Handler.lock = counts, lock  # shared with what do_GET counts itself
    httpd = Server(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    for i in range(feeds):
        body = feed_xml(i, entries, base, seed)
        routes[f"/feeds/{i}.xml"] = (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')
    serve_until_stopped(httpd, port, ready, stop)


# --- the project folder ----------------------------------------------------------------------

def make_project(folder: Path, base: str, feeds: int, concurrency: int) -> Path:
    sources = [{"name": f"board-{i:03d}", "kind": "rss", "url": f"{base}/feeds/{i}.xml",
                "tags": ["bench"]} for i in range(feeds)]
    return write_project(folder, {"bench": sources}, concurrency=concurrency)


# --- measuring -------------------------------------------------------------------------------

def cpu_seconds() -> float:
    """CPU time of this process, plus that of the feed-parsing workers that have ended (they
    are children of multiprocessing's forkserver, which reaps them)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    seconds = own.ru_utime + own.ru_stime
    server = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    if server:
        try:
            fields = Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()
            seconds += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return seconds


def naive_loop(label: str, base: str, feeds: int, concurrency: int, counts: Any,
               etags: dict[int, str]) -> dict[str, Any]:
    """``feedparser.parse(url)`` of every feed on ``concurrency`` threads: what a pass costs
    with nothing stored or scored. Sends back the ETags in ``etags`` (and fills it)."""
    def one(index: int) -> int:
        parsed = feedparser.parse(f"{base}/feeds/{index}.xml", etag=etags.get(index))
        if parsed.get("etag"):
            etags[index] = parsed.etag
        return len(parsed.entries)

    before, cpu = list(counts), cpu_seconds()
    clock = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        entries = sum(pool.map(one, range(feeds)))
    wall, cpu = time.perf_counter() - clock, cpu_seconds() - cpu
    ok200, got304, other = (after - was for after, was in zip(list(counts), before, strict=True))
    print(f"\n== naive {label} loop (feedparser.parse, {concurrency} threads) ==")
    print(f"  wall time         {wall:8.2f} s   CPU {cpu:.2f} s")
    print(f"  entries parsed    {entries:8d}     server answered 200: {ok200}, 304: {got304}, "
          f"other: {other}")
    return {"label": f"naive {label}", "wall": wall, "cpu": cpu, "feeds": feeds, "new": entries,
            "peak": None, "maxrss": maxrss_mib(), "got304": got304}


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
        with timed(rss, "parse_feed", parts), timed(rss.ParsePool, "run", parts), \
                timed(Store, "save_fetches", parts), timed(pipeline, "score_pending", parts):
            clock, cpu = time.perf_counter(), cpu_seconds()
            report = pipeline.run_once(config, store)
            wall = time.perf_counter() - clock
            time.sleep(0.2)  # the pool's workers are reaped: their CPU is counted
            cpu = cpu_seconds() - cpu
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
    figures = {"label": label, "wall": wall, "cpu": cpu, "feeds": feeds, "new": new,
               "peak": peak, "maxrss": maxrss_mib(), "got304": got304}

    print(f"\n== {label} pass ==")
    print(f"  wall time         {wall:8.2f} s   (config load + Store open before it: "
          f"{setup:.2f} s); CPU {cpu:.2f} s (parsing workers included)")
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
    print(f"  time inside       parse_feed {parts.get('parse_feed', 0):.2f} s inline, "
          f"ParsePool.run {parts.get('run', 0):.2f} s (both summed over "
          f"{config.main.concurrency} threads); on the main thread save_fetches "
          f"{parts.get('save_fetches', 0):.2f} s, "
          f"score_pending {parts.get('score_pending', 0):.2f} s")
    for source in report.failed[:5]:
        print(f"  FAILED {source.name}: {source.error}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8, help="config.yaml concurrency")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-pool", action="store_true",
                        help="parse every feed on the fetching threads (no ParsePool), to "
                        "compare")
    parser.add_argument("--trace-feeds", type=int, default=50, metavar="N",
                        help="feeds in the traced (tracemalloc) passes; 0 skips them")
    args = parser.parse_args()
    trace_feeds = min(args.trace_feeds, args.feeds)
    if args.no_pool:
        pipeline.POOL_FROM = sys.maxsize

    loopback_only()
    counts = SPAWN.Array("q", 3, lock=False)  # 200s, 304s, others; the child locks its writes
    clock = time.perf_counter()
    with child_server(serve, args.feeds, args.entries, args.seed, counts, timeout=60) as base:
        print(f"feedback-monitor pass benchmark: {args.feeds} feeds x {args.entries} entries "
              f"at {base}, concurrency {args.concurrency}, {os.cpu_count()} CPUs, "
              f"{'no parsing processes' if args.no_pool else 'parsing processes'}, "
              f"Python {sys.version.split()[0]}")
        print(f"server (child process) ready in {time.perf_counter() - clock:.2f} s; "
              f"ru_maxrss before the passes: {maxrss_mib():.1f} MiB")
        results = []
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as temp:
            timed_dir, traced_dir = Path(temp, "timed"), Path(temp, "traced")
            config_path = make_project(timed_dir, base, args.feeds, args.concurrency)
            print("\n-- timed passes (tracemalloc off: it slows this workload about 5x) --")
            results.append(run_pass("cold", config_path, counts, trace=False))
            results.append(run_pass("warm", config_path, counts, trace=False))
            etags: dict[int, str] = {}
            for label in ("cold", "warm"):
                results.append(naive_loop(label, base, args.feeds, args.concurrency, counts,
                                          etags))
            if trace_feeds:
                config_path = make_project(traced_dir, base, trace_feeds, args.concurrency)
                print(f"\n-- traced passes: the first {trace_feeds} of {args.feeds} feeds, "
                      "fresh store, tracemalloc on (their times are not representative; "
                      "the peak grows with the posts fetched) --")
                results.append(run_pass("traced cold", config_path, counts, trace=True))
                results.append(run_pass("traced warm", config_path, counts, trace=True))
        print("\n== summary (naive: feedparser.parse alone, entries parsed, not stored) ==")
        print(f"  {'pass':<12} {'feeds':>5} {'wall s':>7} {'CPU s':>7} {'stored':>7} "
              f"{'posts/s':>8} {'feeds/s':>8} {'304s':>5} {'tracemalloc MiB':>15} "
              f"{'maxrss MiB':>10}")
        for r in results:
            peak = "-" if r["peak"] is None else f"{r['peak'] / 2**20:.1f}"
            print(f"  {r['label']:<12} {r['feeds']:>5} {r['wall']:>7.2f} {r['cpu']:>7.2f} "
                  f"{r['new']:>7} {r['new'] / r['wall']:>8.1f} {r['feeds'] / r['wall']:>8.1f} "
                  f"{r['got304']:>5} {peak:>15} {r['maxrss']:>10.1f}")
        by_label = {r["label"]: r for r in results}
        for label in ("cold", "warm"):
            ours, naive = by_label[label], by_label[f"naive {label}"]
            print(f"  {label}: the pass took {ours['wall'] / naive['wall']:.2f}x the naive "
                  f"loop's wall time, {ours['cpu'] / max(naive['cpu'], 1e-9):.2f}x its CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
