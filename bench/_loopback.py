"""What the benchmarks share: generated posts and feeds, a loopback HTTP server run in a child
process, a throw-away project folder, and two measuring helpers.

The server runs in a child process (spawned: a clean interpreter) so its CPU, memory and GIL
never count against what is measured. Only 127.0.0.1 is ever served or contacted.
"""

from __future__ import annotations

import importlib.resources
import multiprocessing as mp
import os
import random
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

SPAWN = mp.get_context("spawn")  # children start clean: no copy of the parent's state

# --- generated posts -------------------------------------------------------------------------

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


def post_text(rng: random.Random) -> tuple[str, list[str], str]:
    """(title, HTML sentences, author) of one post: a mood's opening lines and some filler."""
    _, titles, openings = rng.choices(MOODS, [m[0] for m in MOODS])[0]
    sentences = rng.sample(openings, k=min(len(openings), rng.randint(1, 2)))
    sentences += rng.sample(FILLER, k=rng.randint(1, 3))
    rng.shuffle(sentences)
    return rng.choice(titles), sentences, rng.choice(PEOPLE)


def rss_item(index: int, n: int, base: str, title: str, sentences: list[str], person: str,
             published: datetime) -> str:
    """Item ``n`` of feed ``index`` (guid ``bench-<index>-<n>``)."""
    email = person.lower().replace(" ", ".") + "@example.com"
    paragraphs = "".join(f"<p>{s}</p>" for s in sentences)
    return ("<item>"
            f"<title>{escape(title)} (#{n})</title>"
            f"<link>{base}/forum/{index}/topic/{n}</link>"
            f"<guid isPermaLink=\"false\">bench-{index}-{n}</guid>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<author>{email} ({person})</author>"
            f"<description><![CDATA[{paragraphs}]]></description>"
            "</item>")


def rss_document(index: int, base: str, items: list[str]) -> bytes:
    """An RSS 2.0 feed (board ``index``) of ``items``, as given (newest first)."""
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>"
            f"<title>Acme Notes forum, board {index}</title><link>{base}/forum/{index}</link>"
            f"<description>Posts on board {index}</description>"
            + "".join(items) + "</channel></rss>").encode()


RSS_TYPE = "application/rss+xml; charset=utf-8"


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
        person = rng.choice(PEOPLE)
        published = start - timedelta(hours=n * 3, minutes=rng.randint(0, 59))
        items.append(rss_item(index, n, base, rng.choice(titles), sentences, person,
                              published))
    return rss_document(index, base, items)


# --- the loopback server (child process) -----------------------------------------------------

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen backlog (5 by default: too few for a burst)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up
            super().handle_error(request, client_address)


class CountingHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that counts each answer in ``counts`` (a shared array, set by
    the subclass) at the slot ``slots`` gives its status, ``other_slot`` for the rest."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall
    counts: Any = None
    lock = threading.Lock()
    slots: dict[int, int] = {200: 0, 304: 1}
    other_slot = 2

    def answer(self, status: int, body: bytes, content_type: str | None = None,
               etag: str | None = None) -> None:
        with self.lock:
            self.counts[self.slots.get(status, self.other_slot)] += 1
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve_until_stopped(httpd: ThreadingHTTPServer, port: Any, ready: Any, stop: Any) -> None:
    """In the child: serve on a thread, tell the parent the port, stop when it says so."""
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port.value = httpd.server_address[1]
    ready.set()
    stop.wait()
    httpd.shutdown()
    httpd.server_close()


@contextmanager
def child_server(target: Callable[..., None], *args: Any,
                 timeout: float = 120) -> Iterator[str]:
    """Run ``target(port, ready, stop, *args)`` in a spawned child (it builds a Server and ends
    with ``serve_until_stopped``); yields its base URL, and stops it on the way out."""
    port, ready, stop = SPAWN.Value("i", 0), SPAWN.Event(), SPAWN.Event()
    child = SPAWN.Process(target=target, args=(port, ready, stop, *args), daemon=True)
    child.start()
    try:
        if not ready.wait(timeout):
            raise RuntimeError("the loopback server did not start")
        yield f"http://127.0.0.1:{port.value}"
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.terminate()


def loopback_only() -> None:
    """Never let an inherited proxy setting route 127.0.0.1 elsewhere (children inherit it)."""
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(filter(None, [os.environ.get(var), "127.0.0.1", "localhost"]))


# --- the project folder ----------------------------------------------------------------------

def write_project(folder: Path, sources: dict[str, list[dict[str, Any]]],
                  **config: Any) -> Path:
    """config.yaml (a SQLite store, HTTP retries 0; ``config`` keys override), one file per
    entry of ``sources`` in sources/, and the packaged demo rule pack in rules/."""
    for sub in ("sources", "rules", "reports"):
        (folder / sub).mkdir(parents=True)
    settings = {
        "store": "sqlite:///bench.db", "timezone": "UTC", "sources": "sources/",
        "rules": "rules/", "reports": "reports/", "interval": "15m", "concurrency": 8,
        "http": {"user_agent": "feedback-monitor-bench/0.1", "connect_timeout": 5,
                 "read_timeout": 20, "total_timeout": 60, "retries": 0, "backoff": 0.1},
        **config,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    for name, entries in sources.items():
        (folder / "sources" / f"{name}.yaml").write_text(
            yaml.safe_dump({"sources": entries}, sort_keys=False))
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
