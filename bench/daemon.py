"""Benchmark `monitor daemon` on 1,000 feeds served on 127.0.0.1: a minute with every feed
changing, then a minute with every feed unchanged (304).

    python bench/daemon.py [--feeds 1000 --interval 20 --seconds 60 --entries 10 --new 2
                            --workers default --seed 1]

A loopback server (a child process, bench/_loopback.py) serves ``--feeds`` RSS feeds. While
they *change*, every request gets the feed's next version: ``--new`` items newer than the last
version's, out of ``--entries``. While they are *unchanged*, each feed stays at its version
and answers 304 to the ETag the daemon last saw. A throw-away project (SQLite store, the
packaged demo rule pack, every source on ``--interval`` seconds) is first filled by one
`monitor run` (not measured), so both minutes are steady state. Then, for each ``--workers``
value (APScheduler's thread pool, 10 by default; other sizes are set by starting the daemon
through a small wrapper, as the daemon has no setting for it), `monitor daemon -v` runs as a
subprocess for ``--seconds`` with the feeds changing, then again with them unchanged.

Measured from "daemon started" to SIGTERM: polls (requests the server answered) per second
against the schedule's ``feeds / interval``; the daemon's CPU share ((user + sys) / wall from
/proc/<pid>/stat; 100% = one core); its peak memory (VmHWM from /proc/<pid>/status); posts
stored and scored; and from its log: jobs completed, failed, skipped (a run still going when
the next was due) or missed, how late jobs started (scheduled time to a worker taking it: the
thread pool's queue), and how many workers were busy on average. Then how long SIGTERM took.
Only 127.0.0.1 is contacted; the temp folder is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from _loopback import (
    RSS_TYPE,
    SPAWN,
    CountingHandler,
    Server,
    child_server,
    loopback_only,
    post_text,
    rss_document,
    rss_item,
    serve_until_stopped,
    write_project,
)

EPOCH = datetime(2024, 5, 1, tzinfo=UTC)  # item n of every feed is published n minutes later
CHANGING, UNCHANGED = 0, 1

# `monitor daemon`, with a line logged as each job starts and ends (APScheduler's executor logs
# them at INFO; the daemon shows only its warnings), and with APScheduler's thread pool at
# argv[1] workers unless that is "default" (the daemon has no setting for it).
WRAPPER = """\
import logging
import sys

import monitor.daemon as daemon
from monitor.cli import main

workers, sys.argv[1:] = sys.argv[1], sys.argv[2:]
if workers != "default":
    from apscheduler.executors.pool import ThreadPoolExecutor

    plain = daemon.BlockingScheduler
    daemon.BlockingScheduler = lambda **kw: plain(
        **{**kw, "executors": {"default": ThreadPoolExecutor(int(workers))}})
logging.getLogger("apscheduler.executors.default").setLevel(logging.INFO)
main()
"""


# --- the loopback server (child process) -----------------------------------------------------

def serve(port: Any, ready: Any, stop: Any, feeds: int, entries: int, new: int, seed: int,
          mode: Any, counts: Any) -> None:
    """Child process: /feeds/<i>.xml, each request the next version (CHANGING) or the same
    one, 304 when the client has it (UNCHANGED); counts 200s, 304s and other answers."""
    versions = [-1] * feeds  # the version each feed last served
    items: dict[tuple[int, int], str] = {}
    lock = threading.Lock()

    def item(i: int, n: int, base: str) -> str:
        if (i, n) not in items:
            title, sentences, person = post_text(random.Random(f"{seed}/{i}/{n}"))
            items[i, n] = rss_item(i, n, base, title, sentences, person,
                                   EPOCH + timedelta(minutes=n))
        return items[i, n]

    class Handler(CountingHandler):

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            match = re.fullmatch(r"/feeds/(\d+)\.xml", self.path)
            if not match or int(match[1]) >= feeds:
                self._send(404, b"not found")
                return
            i = int(match[1])
            with lock:
                if mode.value == CHANGING or versions[i] < 0:
                    versions[i] += 1
                version = versions[i]
            etag = f'"{i}.{version}"'
            if mode.value == UNCHANGED and self.headers.get("If-None-Match") == etag:
                self._send(304, b"", etag)
                return
            first = version * new
            with lock:
                body = rss_document(i, base, [item(i, n, base) for n in
                                              reversed(range(first, first + entries))])
            self._send(200, body, etag)

        def _send(self, status: int, body: bytes, etag: str | None = None) -> None:
            self.answer(status, body, RSS_TYPE if status == 200 else None, etag)

    Handler.counts, Handler.lock = counts, lock  # shared with what do_GET counts itself
    httpd = Server(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    serve_until_stopped(httpd, port, ready, stop)


# --- the daemon's process --------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + sys CPU seconds of ``pid`` so far (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 on
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def store_counts(config: Path) -> dict[str, int]:
    """Rows in the project's store (``--store`` or its own SQLite file)."""
    url = yaml.safe_load(config.read_text())["store"]
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        db = path if path.is_absolute() else config.parent / path
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
            return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("posts", "scores", "flags", "cases")}
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as con:
        counts = {table: con.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                  for table in ("posts", "scores", "flags", "cases")}
    engine.dispose()
    return counts


# --- the daemon's log ------------------------------------------------------------------------

STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ "
RUNNING = re.compile(STAMP + r'apscheduler\.executors\.\w+: Running job "Daemon\._poll.*'
                     r"\(scheduled at ([^)]+)\)$")
EXECUTED = re.compile(STAMP + r'apscheduler\.executors\.\w+: Job "Daemon\._poll.*'
                      r"executed successfully$")
POLLED = re.compile(STAMP + r"monitor\.daemon: .*: fetched \d+, new (\d+), flagged (\d+) in "
                    r"([\d.]+)s(; FAILED)?")
SKIPPED = re.compile(STAMP + r".*skipped: maximum number of running instances reached")
MISSED = re.compile(STAMP + r".*was missed by")
BACKOFF = re.compile(STAMP + r"monitor\.daemon: .*backing off after failures, skipped")


@dataclass
class LogFigures:
    polls: int = 0
    failed: int = 0
    new: int = 0
    flagged: int = 0
    fetch_seconds: float = 0.0
    skipped: int = 0
    missed: int = 0
    backoff: int = 0
    lags: list[float] = field(default_factory=list)
    busy: float = 0.0       # worker-seconds spent in source jobs
    most_busy: int = 0


def when(stamp: str) -> float:
    """A log line's local asctime as a Unix time."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()


def read_log(log: Path, start: float, end: float) -> LogFigures:
    """What the log says happened between Unix times ``start`` and ``end``."""
    found = LogFigures()
    edges: list[tuple[float, int]] = []  # +1 a source job started, -1 one ended (whole log)
    for line in log.read_text(errors="replace").splitlines():
        stamp = re.match(STAMP, line)
        if not stamp:
            continue
        at = when(stamp[1])
        inside = start <= at <= end
        if m := RUNNING.match(line):
            edges.append((at, 1))
            if inside:
                found.lags.append(at - datetime.fromisoformat(m[2]).timestamp())
        elif EXECUTED.match(line):
            edges.append((at, -1))
        elif not inside:
            continue
        elif m := POLLED.match(line):
            found.polls += 1
            found.failed += bool(m[5])
            found.new += int(m[2])
            found.flagged += int(m[3])
            found.fetch_seconds += float(m[4])
        elif SKIPPED.match(line):
            found.skipped += 1
        elif MISSED.match(line):
            found.missed += 1
        elif BACKOFF.match(line):
            found.backoff += 1
    running, last = 0, start  # jobs running at each moment, counted in the window only
    for at, step in sorted(edges):
        if at > start:
            found.busy += running * (min(at, end) - last)
            last = min(at, end)
        running += step
        if start <= at <= end:
            found.most_busy = max(found.most_busy, running)
    found.busy += running * (end - last)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- one measured minute ---------------------------------------------------------------------

def run_daemon(label: str, config: Path, seconds: float, workers: str, feeds: int,
               interval: float, counts: Any) -> dict[str, Any]:
    log = config.parent / f"daemon-{workers}-{label.split()[0]}.log"
    command = [sys.executable, "-c", WRAPPER, workers]
    before = store_counts(config)
    with log.open("w") as stderr:
        process = subprocess.Popen([*command, "-v", "daemon", "--config", str(config)],
                                   stdout=subprocess.DEVNULL, stderr=stderr, cwd=config.parent)
    launched = time.monotonic()
    while "daemon started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() - launched > 120:
            raise RuntimeError(f"the daemon did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    startup = time.monotonic() - launched
    start, clock, cpu0, served0 = time.time(), time.monotonic(), cpu_seconds(process.pid), \
        list(counts)
    load0 = os.getloadavg()[0]
    threads = 0
    while time.monotonic() - clock < seconds:
        if process.poll() is not None:
            raise RuntimeError(f"the daemon exited early:\n{log.read_text()[-2000:]}")
        threads = max(threads, status_kib(process.pid, "Threads"))
        time.sleep(0.5)
    wall, cpu = time.monotonic() - clock, cpu_seconds(process.pid) - cpu0
    end, served = time.time(), [b - a for a, b in zip(served0, list(counts), strict=True)]
    peak, rss = status_kib(process.pid, "VmHWM") / 1024, status_kib(process.pid, "VmRSS") / 1024
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(300)
    stopped = time.monotonic() - stopping
    after = store_counts(config)
    seen = read_log(log, start, end)
    polls = sum(served)
    result = {"label": label, "workers": workers, "polls/s": polls / wall,
              "cpu": cpu / wall, "peak": peak, "lag95": percentile(seen.lags, 0.95),
              "busy": seen.busy / wall, "stored": after["posts"] - before["posts"],
              "skipped": seen.skipped + seen.missed}

    print(f"\n== {label}, {workers} workers: {wall:.0f} s of `monitor daemon` ==")
    print(f"  startup           {startup:8.2f} s   (launch to 'daemon started'; not measured)")
    print(f"  polls / s         {polls / wall:8.1f}     (schedule: {feeds / interval:.1f}; "
          f"server answered 200: {served[0]}, 304: {served[1]}, other: {served[2]})")
    print(f"  jobs completed    {seen.polls:8d}     failed {seen.failed}, skipped while the "
          f"last run went on {seen.skipped}, missed {seen.missed}, backing off {seen.backoff}")
    print(f"  CPU share         {cpu / wall:8.1%}   ({cpu:.1f} s user+sys over {wall:.1f} s; "
          f"100% = one of {os.cpu_count()} cores)")
    print(f"  peak memory       {peak:8.1f} MiB (VmHWM; VmRSS at the end {rss:.1f} MiB; "
          f"{threads} threads at most)")
    stored = after["posts"] - before["posts"]
    print(f"  posts stored      {stored:8d}     ({stored / wall:.1f}/s; scored "
          f"{after['scores'] - before['scores']}, flagged {after['flags'] - before['flags']}, "
          f"cases {after['cases'] - before['cases']})")
    if seen.lags:
        print(f"  start lag         p50 {percentile(seen.lags, 0.5):.2f} s, p95 "
              f"{percentile(seen.lags, 0.95):.2f} s, max {max(seen.lags):.2f} s "
              "(scheduled time, jitter included, to a worker taking the job)")
        print(f"  workers busy      {seen.busy / wall:8.1f}     on average, {seen.most_busy} at "
              f"most; a job took {seen.busy / max(1, seen.polls):.3f} s on average, "
              f"{seen.fetch_seconds / max(1, seen.polls):.3f} s of it fetching")
    else:
        print("  start lag         n/a (no APScheduler 'Running job' lines in the log)")
    print(f"  SIGTERM           exit {code} after {stopped:.2f} s")
    print(f"  machine load      {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          "(1-minute load average: other work competes for the cores)")
    return result


# --- main ------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=20.0, help="seconds, every source")
    parser.add_argument("--seconds", type=float, default=60.0, help="each measured run")
    parser.add_argument("--entries", type=int, default=10, help="items in a feed")
    parser.add_argument("--new", type=int, default=2, help="new items per poll while changing")
    parser.add_argument("--workers", default="default",
                        help="APScheduler thread pool sizes to run, comma-separated "
                             "('default': as the daemon sets it; APScheduler's is 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", metavar="URL",
                        help="run on this store (a big one: bench/bigstore.py, bench/scale.py "
                             "--keep) instead of a new SQLite file; its posts stay, the "
                             "bench's are added")
    args = parser.parse_args()
    pools = [w.strip() for w in args.workers.split(",") if w.strip()]

    loopback_only()
    print(f"feedback-monitor daemon benchmark: {args.feeds} feeds every {args.interval:g} s, "
          f"{args.seconds:g} s per run, {args.entries} items per feed ({args.new} new per poll "
          f"while changing); {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    mode, counts = SPAWN.Value("i", CHANGING), SPAWN.Array("q", 3, lock=False)
    results = []
    with child_server(serve, args.feeds, args.entries, args.new, args.seed, mode,
                      counts) as base, tempfile.TemporaryDirectory(prefix="monitor-bench-") as temp:
        sources = [{"name": f"board-{i:04d}", "kind": "rss", "url": f"{base}/feeds/{i}.xml",
                    "interval": f"{args.interval:g}s", "tags": ["bench"]}
                   for i in range(args.feeds)]
        config = write_project(Path(temp), {"bench": sources},
                               **({"store": args.store} if args.store else {}))
        clock = time.perf_counter()
        fill = subprocess.run([sys.executable, "-m", "monitor.cli", "run", "--config",
                               str(config)], capture_output=True, text=True, cwd=temp)
        filled = store_counts(config)
        print(f"  filled by one `monitor run` (exit {fill.returncode}) in "
              f"{time.perf_counter() - clock:.1f} s: {filled['posts']} posts, "
              f"{filled['flags']} flagged")
        for workers in pools:
            mode.value = CHANGING
            results.append(run_daemon("changing feeds", config, args.seconds, workers,
                                      args.feeds, args.interval, counts))
            mode.value = UNCHANGED
            results.append(run_daemon("unchanged (304)", config, args.seconds, workers,
                                      args.feeds, args.interval, counts))
    print(f"\n== summary: {args.feeds} feeds every {args.interval:g} s (schedule "
          f"{args.feeds / args.interval:.1f} polls/s), {args.seconds:g} s each ==")
    print(f"  {'run':<16} {'workers':>7} {'polls/s':>8} {'CPU':>6} {'peak MiB':>8} "
          f"{'stored':>7} {'lag p95 s':>9} {'busy':>5} {'skipped':>7}")
    for r in results:
        print(f"  {r['label']:<16} {r['workers']:>7} {r['polls/s']:>8.1f} {r['cpu']:>6.0%} "
              f"{r['peak']:>8.1f} {r['stored']:>7} {r['lag95']:>9.2f} {r['busy']:>5.1f} "
              f"{r['skipped']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
