"""Peak memory of `monitor run`, `monitor daemon` and `monitor check` when the config and the
sources are as hostile as the bounds allow (issue 15's target: under 500 MB).

    python bench/memory.py [--seconds 60]

A loopback server (a child process, bench/_loopback.py) serves feeds of the costliest shapes:
16 MiB (``http.max_bytes``'s maximum) of one entry of escaped markup (expat hands feedparser
one piece per entity), of 20,000 small entries, and a JSON Feed; and just under 256 KiB of
escaped markup, the most a response may hold before it waits for the one large-response slot.
Every answer differs (a counter at the end), so every poll is parsed again. The project sets
``concurrency`` (32) and ``http.max_bytes`` to their maxima, 32 sources on a 1 s interval.

Measured: `monitor run` (one pass) and `monitor check` on a YAML alias bomb and on the largest
config file read (1 MiB), by the peak resident set of the child (``os.wait4``); `monitor
daemon` for ``--seconds`` by VmHWM (/proc/<pid>/status), with the passes it completed.
Only 127.0.0.1 is contacted; the temp folder is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _loopback import (
    CountingHandler,
    Server,
    child_server,
    loopback_only,
    serve_until_stopped,
    write_project,
)

MONITOR = [sys.executable, "-m", "monitor.cli"]
MAX_BYTES = 16 * 1024 * 1024
HEAD = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        '<link>http://127.0.0.1/</link>')


def escaped(size: int) -> bytes:
    piece = "&lt;p&gt;word&lt;/p&gt;"
    body = piece * ((size - 400) // len(piece))
    return (f'{HEAD}<item><guid>1</guid><title>Huge</title><link>http://127.0.0.1/1</link>'
            f'<description>{body}</description></item></channel></rss>').encode()


def many_items(size: int) -> bytes:
    item = ('<item><guid>{0}</guid><title>Post {0}</title><link>http://127.0.0.1/{0}</link>'
            '<description>The redesign is awful and I want the old one back. {0}'
            '</description></item>')
    items, total, n = [], len(HEAD) + 40, 0
    while total < size - 400:
        items.append(item.format(n))
        total += len(items[-1])
        n += 1
    return (HEAD + "".join(items) + "</channel></rss>").encode()


def json_feed(size: int) -> bytes:
    item = ('{{"id": "{0}", "url": "http://127.0.0.1/j{0}", "title": "Post {0}", '
            '"content_text": "Since the update nothing works, I am leaving. {0}"}},')
    items, total, n = [], 100, 0
    while total < size - 200:
        items.append(item.format(n))
        total += len(items[-1])
        n += 1
    return ('{"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": ['
            + "".join(items)[:-1] + "]}").encode()


SHAPES = {"escaped-16m": lambda: escaped(MAX_BYTES - 64),
          "items-16m": lambda: many_items(MAX_BYTES - 64),
          "json-16m": lambda: json_feed(MAX_BYTES - 64),
          "escaped-250k": lambda: escaped(250 * 1024)}
PLAN = ["escaped-16m"] * 4 + ["items-16m", "json-16m"] + ["escaped-250k"] * 26


def serve(port: Any, ready: Any, stop: Any) -> None:
    documents = {name: make() for name, make in SHAPES.items()}
    polls = [0]

    class Handler(CountingHandler):
        counts = [0, 0, 0]

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            name = self.path.strip("/").split("/")[0]
            if name == "robots.txt" or name not in documents:
                self.answer(404, b"")
                return
            polls[0] += 1
            tail = f"<!-- {polls[0]} -->".encode() if name != "json-16m" else b" " * (
                polls[0] % 50)
            self.answer(200, documents[name] + tail, "application/xml")

    serve_until_stopped(Server(("127.0.0.1", 0), Handler), port, ready, stop)


def peak_of(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """Peak RSS in MB, exit code and the last line of output of ``command``, run to its end."""
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines() or [""]
    return usage.ru_maxrss / 1024, child.returncode, lines[-1][:100]


def daemon_peak(config: Path, seconds: float) -> tuple[float, int, list[float]]:
    """VmHWM of `monitor daemon` after ``seconds``, the passes its log reported, and its
    resident memory at each tenth of the time (does it level off, or keep growing?)."""
    log = config.parent / "daemon.log"
    samples: list[float] = []
    with log.open("w") as out:
        child = subprocess.Popen([*MONITOR, "-v", "daemon", "--config", str(config)],
                                 stdout=out, stderr=subprocess.STDOUT)
        for _ in range(10):
            time.sleep(seconds / 10)
            now = Path(f"/proc/{child.pid}/status").read_text() if child.poll() is None else ""
            found = re.search(r"VmRSS:\s+(\d+) kB", now)
            samples.append(int(found[1]) / 1024 if found else 0.0)
        status = Path(f"/proc/{child.pid}/status").read_text()
        child.send_signal(signal.SIGTERM)
        child.wait(60)
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    if found is None:  # the daemon ended early: say why
        raise SystemExit(f"the daemon exited: {log.read_text()[-2000:]}")
    peak = int(found[1]) / 1024
    passes = len(re.findall(r"pass", log.read_text()))
    return peak, passes, samples


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join(f"*a{i - 1}" for _ in range(9))
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long the daemon runs")
    args = parser.parse_args()
    loopback_only()
    root = Path(__file__).resolve().parent.parent
    os.environ["PYTHONPATH"] = str(root)
    with tempfile.TemporaryDirectory() as tmp, child_server(serve, timeout=300) as base:
        folder = Path(tmp) / "project"
        sources = [{"name": f"s{i:02d}-{shape}", "kind": "rss", "interval": "1s",
                    "url": f"{base}/{shape}/{i}"} for i, shape in enumerate(PLAN)]
        config = write_project(folder, {"hostile": sources}, concurrency=32,
                               http={"user_agent": "feedback-monitor-bench/0.1",
                                     "max_bytes": MAX_BYTES, "retries": 0,
                                     "total_timeout": 120, "read_timeout": 60})
        print(f"{len(PLAN)} sources: {', '.join(f'{PLAN.count(s)} x {s}' for s in SHAPES)}; "
              f"concurrency 32, max_bytes {MAX_BYTES}")
        rows = []
        started = time.monotonic()
        peak, code, last = peak_of([*MONITOR, "run", "--config", str(config)], folder)
        rows.append(("monitor run (one pass)", peak,
                     f"exit {code}, {time.monotonic() - started:.0f} s: {last}"))
        print(*rows[-1], flush=True)
        peak, passes, samples = daemon_peak(config, args.seconds)
        rows.append((f"monitor daemon ({args.seconds:.0f} s)", peak,
                     f"{passes} log lines naming a pass; resident MB each tenth of the time: "
                     + " ".join(f"{s:.0f}" for s in samples)))
        bomb = folder / "bomb.yaml"
        bomb.write_text(alias_bomb())
        big = folder / "big.yaml"
        big.write_text("# " + "x" * (1024 * 1024 - 200) + "\nsources: sources/\n")
        for name, path in (("alias bomb", bomb), ("1 MiB config", big)):
            peak, code, last = peak_of([*MONITOR, "check", "--config", str(path)], folder)
            rows.append((f"monitor check ({name})", peak, f"exit {code}: {last}"))
    print(f"\n{'what':34} {'peak RSS':>9}  notes")
    for what, peak, notes in rows:
        print(f"{what:34} {peak:7.0f} MB  {notes}")
    print(f"\nall under 500 MB: {all(peak < 500 for _, peak, _ in rows)}")


if __name__ == "__main__":
    main()
