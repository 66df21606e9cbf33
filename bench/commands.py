"""Time the everyday commands on a big store (issue 19): each a whole ``monitor`` process,
as a person or a cron line runs it, with its wall time and peak memory.

    python bench/commands.py --url URL [--zone UTC] [--only "queue list" ...]

A throw-away project points at ``URL`` (build one with ``bench/bigstore.py``): config.yaml
with its store, the time zone, a launch two weeks ago (for ``backlash``) and every source the
store has, as configured sources of their kind (``status`` and the digest's health read
them). Each command runs once, its output thrown away (``export`` writes to /dev/null);
its peak resident memory is the child's ``ru_maxrss``, measured by ``/usr/bin/time -v``
when it is there (else by ``resource.getrusage(RUSAGE_CHILDREN)``, exact only while each
command is the largest child so far), its CPU seconds (user + system) from the same. The
target is 2 s and no more for each. A loaded machine (2 cores shared by several jobs) reads
slower on the wall clock than a free one: the first line says by how much (a pure-Python loop
timed here), and the CPU column is the steadier figure.

``rescore --since 1d`` writes to the store (its scores, and flags and cases wherever the rules
now say more than the store held): run it on a store built for measuring, not on one that
matters. The digest's files go into the temp project.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, select

ROOT = Path(__file__).resolve().parent.parent
MONITOR = [sys.executable, "-m", "monitor.cli"]
TARGET = 2.0
LAUNCH = "Big update"

COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("digest", ("digest", "--no-send")),
    ("queue list", ("queue", "list")),
    ("status", ("status",)),
    ("export --since 7d", ("export", "posts", "--since", "7d", "--output", os.devnull)),
    ("export --since 7d (csv)", ("export", "posts", "--since", "7d", "--format", "csv",
                                 "--output", os.devnull)),
    ("export cases --since 7d", ("export", "cases", "--since", "7d", "--output", os.devnull)),
    ("backlash", ("backlash", LAUNCH, "--format", "json")),
    ("rescore --since 1d", ("rescore", "--since", "1d")),
)
"""(name shown, arguments): what is timed, in this order."""


def write_project(folder: Path, url: str, zone: str) -> Path:
    """config.yaml for ``url``, with every source the store knows configured."""
    from sqlalchemy import Table

    from monitor.store.schema import metadata

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            known: Table = metadata.tables["sources"]
            rows = db.execute(select(known.c.name, known.c.kind).order_by(known.c.name)).all()
    finally:
        engine.dispose()
    entries = [_source(name, kind) for name, kind in rows]
    for sub in ("sources", "rules", "reports"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    launch = (datetime.now(UTC) - timedelta(days=14)).date().isoformat()
    settings: dict[str, Any] = {
        "store": url, "timezone": zone, "sources": "sources/", "rules": "rules/",
        "reports": "reports/", "interval": "15m",
        "events": [{"name": LAUNCH, "date": launch, "keywords": ["update"], "days": 14}],
        "routing": {"receivers": ["queue"], "group_by": ["thread"]},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (folder / "sources" / "all.yaml").write_text(
        yaml.safe_dump({"sources": entries}, sort_keys=False))
    for pack in (ROOT / "monitor" / "demo" / "rules").iterdir():
        shutil.copy(pack, folder / "rules" / pack.name)
    return folder / "config.yaml"


def _source(name: str, kind: str) -> dict[str, Any]:
    if kind == "reddit":
        return {"name": name, "kind": "reddit", "subreddits": [re.sub(r"\W", "", name)],
                "client_id": "bench", "client_secret": "bench"}
    if kind == "discourse":
        return {"name": name, "kind": "discourse", "url": f"https://{name}.example.com"}
    return {"name": name, "kind": "rss", "url": f"https://{name}.example.com/feed"}


def run_one(args: Sequence[str], config: Path) -> tuple[float, float, int, float | None]:
    """(seconds, peak MB, exit code, CPU seconds or None) of one ``monitor`` process."""
    command = [*MONITOR, *args, "--config", str(config)]
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    if timer:
        command = [timer, "-v", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, cwd=config.parent, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    peak_kb = 0.0
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if found:
        peak_kb = float(found.group(1))
    else:
        peak_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    cpu = None
    used = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr)
    if used:
        cpu = sum(float(u) for u in used)
    if done.returncode not in (0, 1):
        tail = [line for line in done.stderr.splitlines() if "\t" not in line][-3:]
        print(f"  ({' '.join(args)} exited {done.returncode}: {' / '.join(tail)})",
              file=sys.stderr)
    return seconds, peak_kb / 1024, done.returncode, cpu


def machine_speed() -> float:
    """Milliseconds this machine takes for ``sum(range(10**6))`` (best of 5): ~10 on a
    free laptop core. Wall times of a loaded machine (2 cores shared by several jobs) read
    several times slower; this says by how much."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def time_commands(url: str, zone: str = "UTC",
                  only: Sequence[str] | None = None) -> list[tuple[str, float, float]]:
    """(command, seconds, peak MB) of each of ``COMMANDS`` (those named in ``only``, if
    given) run as a whole ``monitor`` process on a temp project pointing at ``url``;
    prints the table as it goes."""
    results: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as tmp:
        config = write_project(Path(tmp), url, zone)
        print(f"machine: sum(range(10**6)) in {machine_speed():.0f} ms (~10 on a free core)")
        print(f"{'command':<26} {'seconds':>8} {'CPU s':>7} {'peak MB':>8}  "
              f"target {TARGET:.0f} s")
        for name, args in COMMANDS:
            if only and name not in only:
                continue
            seconds, peak, code, cpu = run_one(args, config)
            results.append((name, seconds, peak))
            over = "  OVER" if seconds > TARGET else ""
            failed = f"  (exit {code})" if code not in (0, 1) else ""
            shown = f"{cpu:>7.2f}" if cpu is not None else f"{'-':>7}"
            print(f"{name:<26} {seconds:>8.2f} {shown} {peak:>8.0f}{over}{failed}", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the store's SQLAlchemy URL")
    parser.add_argument("--zone", default="UTC", help="the project's time zone")
    parser.add_argument("--only", action="append", metavar="COMMAND",
                        help="time only this command (its name as shown; repeatable)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    time_commands(args.url, args.zone, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
