"""Benchmark one monitor pass over mixed sources on 127.0.0.1, 5% of them slow or failing.

    python bench/mixed.py [--sources 500 --entries 20 --troubled 0.05 --delay 2
                           --concurrency 8 --also 1,16 --seed 1]

The mix comes from KINDS, one row per kind of source: its share of the sources, the options a
source of that kind gets, and the responses a loopback server gives it (RSS 2.0 feeds;
Discourse ``/posts.json`` bodies shaped like ``{"latest_posts": [...]}``; Reddit listings and
the OAuth token a praw client asks for). A kind whose collector cannot be loaded yet, or
whose options its ``Options`` model rejects or does not declare, is skipped with a note and
its share goes to the kinds that remain, so the total stays at ``--sources``.

``--troubled`` of the sources (default 5%) misbehave, split between the two ways: *slow*
ones (the server sleeps ``--delay`` seconds, then answers normally) and *failing* ones (HTTP
500). Each kind gets its proportional part of both, spread evenly through its sources. A
slow source is slow on every request: a Reddit source asks twice (new posts, new comments), so
the delays summed are the slow answers the server gave. The HTTP retries setting does not
reach praw, which retries a 500 twice itself (sleeping about 1 s and 3 s).

The server is a ThreadingHTTPServer in a child process (its CPU and GIL do not count against
the pass). Each timed pass runs ``monitor.pipeline.run_once`` in a fresh child process on a
fresh project folder and SQLite store, with HTTP retries 0: first at ``--concurrency``, then
at each ``--also`` value (``--also ''`` skips them). Per pass it prints the sources per kind,
wall time, the sum of the slow sources' delays, ok/failed counts, posts stored, posts/s, the
peak RSS of the pass's process, and the requests each kind made; the defaults take about two
minutes on 2 cores, most of it the concurrency-1 pass. Only 127.0.0.1 is contacted: the pass
processes refuse any other lookup or connection. The temp folder is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import queue
import random
import re
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from _loopback import (
    PEOPLE,
    SPAWN,
    CountingHandler,
    Server,
    child_server,
    feed_xml,
    loopback_only,
    maxrss_mib,
    post_text,
    serve_until_stopped,
    timed,
    write_project,
)
from pydantic import ValidationError

from monitor.errors import ConfigError
from monitor.registry import collector_class

Body = bytes | Callable[[dict[str, list[str]]], bytes]  # fixed, or computed from the query
Routes = dict[str, tuple[str, Body]]  # path (no query, no trailing /) -> (content type, body)

# --- generated text --------------------------------------------------------------------------


def _plain(html: str) -> str:
    """A sentence's HTML as the markdown-ish text a Reddit body or Discourse raw holds."""
    text = re.sub(r"<[^>]+>", "", html)
    return text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _rng(kind: str, index: int, seed: int) -> random.Random:
    return random.Random(f"{kind}/{index}/{seed}")


# --- rss -------------------------------------------------------------------------------------


def rss_options(i: int, base: str) -> dict[str, Any]:
    return {"url": f"{base}/feeds/{i}.xml"}


def rss_routes(i: int, base: str, entries: int, seed: int) -> Routes:
    return {f"/feeds/{i}.xml": ("application/rss+xml; charset=utf-8",
                                feed_xml(i, entries, base, seed))}


# --- discourse -------------------------------------------------------------------------------


def discourse_options(i: int, base: str) -> dict[str, Any]:
    return {"url": f"{base}/discourse/{i}"}


def discourse_posts(i: int, entries: int, seed: int) -> list[dict[str, Any]]:
    """``entries`` posts over a few topics, newest first, each with /posts.json's keys.

    Each source is its own small forum, so its post ids run from 1: the collector stops
    paging at id 1, one request per source, as it reads one feed per rss source."""
    rng = _rng("discourse", i, seed)
    topics: list[dict[str, Any]] = []
    posts: list[dict[str, Any]] = []
    clock = datetime(2024, 5, 1, 12, tzinfo=UTC) - timedelta(days=i % 30, hours=entries * 2)
    for n in range(entries):
        title, sentences, person = post_text(rng)
        if not topics or rng.random() < 0.3:  # a new topic, or a reply in one of the last few
            topics.append({"id": 5 + len(topics), "title": title,
                           "slug": _slug(title), "posts": 0, "category": rng.randint(1, 6)})
            topic = topics[-1]
        else:
            topic = rng.choice(topics[-3:])
        topic["posts"] += 1
        number = topic["posts"]
        clock += timedelta(minutes=rng.randint(5, 180), milliseconds=rng.randint(0, 999))
        stamp = clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        username = person.lower().replace(" ", "_")
        posts.append({
            "id": n + 1, "name": person, "username": username,
            "avatar_template": f"/letter_avatar_proxy/v4/letter/{username[0]}/df705f/{{size}}.png",
            "created_at": stamp, "cooked": "".join(f"<p>{s}</p>" for s in sentences),
            "post_number": number, "post_type": 1, "updated_at": stamp,
            "reply_count": 0,
            "reply_to_post_number": (rng.randint(1, number - 1)
                                     if number > 2 and rng.random() < 0.4 else None),
            "quote_count": 0, "avg_time": None, "incoming_link_count": 0,
            "reads": rng.randint(1, 400), "score": round(rng.random() * 40, 1), "yours": False,
            "topic_id": topic["id"], "topic_slug": topic["slug"], "topic_title": topic["title"],
            "topic_html_title": escape(topic["title"]), "category_id": topic["category"],
            "display_username": person, "primary_group_name": None,
            "primary_group_flair_url": None, "primary_group_flair_bg_color": None,
            "primary_group_flair_color": None, "version": 1, "can_edit": False,
            "can_delete": False, "can_recover": False, "can_wiki": False, "user_title": None,
            "raw": "\n\n".join(_plain(s) for s in sentences), "actions_summary": [],
            "moderator": False, "admin": False, "staff": False,
            "user_id": 100 + PEOPLE.index(person), "hidden": False,
            "trust_level": rng.randint(0, 3), "deleted_at": None, "user_deleted": False,
            "edit_reason": None, "can_view_edit_history": True, "wiki": False,
        })
    return posts[::-1]


def discourse_routes(i: int, base: str, entries: int, seed: int) -> Routes:
    posts = discourse_posts(i, entries, seed)
    whole = json.dumps({"latest_posts": posts}).encode()

    def answer(query: dict[str, list[str]]) -> bytes:  # ?before=ID: ID and older (Discourse's)
        before = query.get("before", [""])[0]
        if not before.isdigit():
            return whole
        return json.dumps({"latest_posts": [p for p in posts if p["id"] <= int(before)]}).encode()

    return {f"/discourse/{i}/posts.json": ("application/json; charset=utf-8", answer)}


# --- reddit (praw: app-only OAuth token, then listings) -------------------------------------

REDDIT_LISTINGS = ("new", "hot", "top", "rising", "controversial")


def reddit_options(i: int, base: str) -> dict[str, Any]:
    return {"subreddits": [f"bench{i:03d}"], "client_id": "bench-client",
            "client_secret": "bench-secret", "api_url": base, "auth_url": base}


def reddit_shared(base: str) -> Routes:
    token = {"access_token": "bench-token", "token_type": "bearer", "expires_in": 86400,
             "scope": "*"}
    return {"/api/v1/access_token": ("application/json; charset=UTF-8",
                                     json.dumps(token).encode())}


def _listing(children: list[dict[str, Any]]) -> bytes:
    return json.dumps({"kind": "Listing", "data": {
        "after": None, "dist": len(children), "modhash": "", "geo_filter": "",
        "children": children, "before": None}}).encode()


def reddit_routes(i: int, base: str, entries: int, seed: int) -> Routes:
    """/r/<sub>/{new,hot,...}: ``entries`` submissions; /r/<sub>/comments: ``entries`` comments.

    Stamped within the last day: a first pass reads back only a backfill window."""
    rng = _rng("reddit", i, seed)
    sub = f"bench{i:03d}"
    when = float(int(time.time()) - 60)
    links, comments = [], []
    for n in range(entries):
        title, sentences, person = post_text(rng)
        ident = f"b{i:03d}{n:03d}"
        permalink = f"/r/{sub}/comments/{ident}/{_slug(title)[:50]}/"
        body = "\n\n".join(_plain(s) for s in sentences)
        links.append({"kind": "t3", "data": {
            "id": ident, "name": f"t3_{ident}", "title": title, "selftext": body,
            "selftext_html": ("<!-- SC_OFF --><div class=\"md\">"
                              + "".join(f"<p>{s}</p>" for s in sentences)
                              + "</div><!-- SC_ON -->"),
            "author": person.replace(" ", "_"), "author_fullname": f"t2_{ident}",
            "created_utc": when - n * 3600.0, "created": when - n * 3600.0,
            "permalink": permalink, "url": f"https://www.reddit.com{permalink}",
            "domain": f"self.{sub}", "is_self": True, "subreddit": sub,
            "subreddit_id": f"t5_{i:05d}", "subreddit_name_prefixed": f"r/{sub}",
            "subreddit_type": "public", "score": rng.randint(0, 900),
            "ups": rng.randint(0, 900), "downs": 0, "upvote_ratio": 0.9,
            "num_comments": rng.randint(0, 300), "over_18": False, "spoiler": False,
            "stickied": False, "locked": False, "archived": False, "edited": False,
            "distinguished": None, "link_flair_text": None, "thumbnail": "self",
            "gilded": 0, "total_awards_received": 0, "hidden": False, "saved": False}})
    for n in range(entries):
        _, sentences, person = post_text(rng)
        link = rng.choice(links)["data"]
        ident = f"c{i:03d}{n:03d}"
        parent = (f"t1_c{i:03d}{rng.randint(0, n - 1):03d}"
                  if n and rng.random() < 0.4 else link["name"])
        comments.append({"kind": "t1", "data": {
            "id": ident, "name": f"t1_{ident}", "link_id": link["name"], "parent_id": parent,
            "author": person.replace(" ", "_"), "author_fullname": f"t2_{ident}",
            "body": "\n\n".join(_plain(s) for s in sentences),
            "body_html": ("<div class=\"md\">" + "".join(f"<p>{s}</p>" for s in sentences)
                          + "</div>"),
            "created_utc": when - n * 1800.0, "created": when - n * 1800.0,
            "permalink": f"{link['permalink']}{ident}/", "link_title": link["title"],
            "link_permalink": link["url"], "link_author": link["author"],
            "subreddit": sub, "subreddit_id": link["subreddit_id"],
            "subreddit_name_prefixed": f"r/{sub}", "subreddit_type": "public",
            "score": rng.randint(-5, 300), "ups": rng.randint(0, 300), "downs": 0,
            "controversiality": 0, "replies": "", "edited": False, "stickied": False,
            "distinguished": None, "is_submitter": False, "score_hidden": False,
            "gilded": 0, "total_awards_received": 0, "saved": False}})
    content = "application/json; charset=UTF-8"
    routes: Routes = {f"/r/{sub}/{listing}": (content, _listing(links))
                      for listing in REDDIT_LISTINGS}
    routes[f"/r/{sub}/comments"] = (content, _listing(comments))
    return routes


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of source in the mix."""

    weight: int  # share of the sources (relative)
    options: Callable[[int, str], dict[str, Any]]  # (i, base) -> keys besides name/kind/tags
    routes: Callable[[int, str, int, int], Routes]  # (i, base, entries, seed) -> its responses
    shared: Callable[[str], Routes] | None = None  # base -> routes every source of it uses


KINDS: dict[str, Kind] = {
    "rss": Kind(2, rss_options, rss_routes),
    "discourse": Kind(2, discourse_options, discourse_routes),
    "reddit": Kind(1, reddit_options, reddit_routes, reddit_shared),
}


def usable_kinds() -> list[str]:
    """The kinds whose collector loads and whose Options accept (and keep) our options."""
    usable = []
    for kind, row in KINDS.items():
        try:
            options_model = collector_class(kind).Options
        except (ConfigError, AttributeError) as error:
            print(f"  skipping {kind}: collector not usable yet ({error})")
            continue
        sample = row.options(0, "http://127.0.0.1:8")
        try:
            options_model.model_validate(sample)
        except ValidationError as error:
            found = "; ".join(f"{'.'.join(map(str, e['loc'])) or '-'}: {e['msg']}"
                              for e in error.errors())
            print(f"  skipping {kind}: its Options reject the generated options ({found})")
            continue
        ignored = sorted(set(sample) - set(options_model.model_fields))
        if ignored:  # an ignored URL override could send a pass to the real site
            print(f"  skipping {kind}: its Options do not declare {', '.join(ignored)} "
                  f"(they declare {', '.join(options_model.model_fields)})")
            continue
        usable.append(kind)
    return usable


@dataclass(frozen=True)
class Planned:
    kind: str
    index: int
    behaviour: str  # "ok", "slow" or "failing"

    @property
    def name(self) -> str:
        suffix = "" if self.behaviour == "ok" else f"-{self.behaviour}"
        return f"{self.kind}-{self.index:03d}{suffix}"


def _split(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` in proportion to ``weights``, largest remainders first (sums to ``total``)."""
    whole = sum(weights.values())
    exact = {k: total * w / whole for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[:total - sum(counts.values())]:
        counts[k] += 1
    return counts


def make_plan(kinds: list[str], total: int, troubled: float) -> list[Planned]:
    sizes = _split(total, {k: KINDS[k].weight for k in kinds})
    bad = round(total * troubled)
    slow = _split(math.ceil(bad / 2), sizes)
    failing = _split(bad // 2, sizes)
    plan = []
    for kind in kinds:
        n, marks = sizes[kind], []
        for j in range(max(slow[kind], failing[kind])):  # alternate slow / failing
            marks += ["slow"] * (j < slow[kind]) + ["failing"] * (j < failing[kind])
        spots = {int((j + 0.5) * n / len(marks)): mark for j, mark in enumerate(marks)}
        plan += [Planned(kind, i, spots.get(i, "ok")) for i in range(n)]
    return plan


# --- the loopback server (child process) -----------------------------------------------------

STATUS_SLOTS = {200: 0, 500: 1, 404: 2}  # then: other statuses, slow answers, requests/kind
KIND_SLOTS = {kind: 5 + n for n, kind in enumerate(KINDS)}


def serve(port: Any, ready: Any, stop: Any, plan: list[Planned], entries: int, seed: int,
          delay: float, counts: Any, missing: Any) -> None:
    """Child process: answer the plan's sources until ``stop`` is set."""
    routes: dict[str, tuple[str, Body, str, int]] = {}
    lock = threading.Lock()

    class Handler(CountingHandler):
        slots, other_slot = STATUS_SLOTS, 3

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path, _, query = self.path.partition("?")
            route = routes.get(path.rstrip("/") or "/")
            if route is None:
                if counts[2] < 20:
                    missing.put(f"{self.command} {path}")
                self._send(404, b"not found", "text/plain")
                return
            content_type, body, behaviour, slot = route
            with lock:
                counts[slot] += 1
            if behaviour == "slow":
                time.sleep(delay)
                with lock:
                    counts[4] += 1
            if behaviour == "failing":
                self._send(500, b"simulated failure", "text/plain")
                return
            self._send(200, body(parse_qs(query)) if callable(body) else body, content_type)

        def do_POST(self) -> None:  # noqa: N802 (the OAuth token request)
            length = self.headers.get("Content-Length", "0")
            self.rfile.read(int(length) if length.isdigit() else 0)
            self.do_GET()

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.answer(status, body, content_type)

    Handler.counts, Handler.lock = counts, lock  # shared with what do_GET counts itself
    httpd = Server(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    for kind in dict.fromkeys(p.kind for p in plan):
        shared = KINDS[kind].shared
        for path, (content_type, body) in (shared(base) if shared else {}).items():
            routes[path] = (content_type, body, "ok", KIND_SLOTS[kind])
    for p in plan:
        for path, (content_type, body) in KINDS[p.kind].routes(p.index, base, entries,
                                                                seed).items():
            routes[path] = (content_type, body, p.behaviour, KIND_SLOTS[p.kind])
    serve_until_stopped(httpd, port, ready, stop)


# --- the project folder ----------------------------------------------------------------------

def make_project(folder: Path, base: str, plan: list[Planned], concurrency: int) -> Path:
    files = {kind: [{"name": p.name, "kind": kind, **KINDS[kind].options(p.index, base),
                     "tags": ["bench", kind]} for p in plan if p.kind == kind]
             for kind in dict.fromkeys(p.kind for p in plan)}  # one file per kind, as a user would
    return write_project(folder, files, concurrency=concurrency)


# --- one pass (child process) ----------------------------------------------------------------

def guard_loopback() -> None:
    """In this process, refuse every name lookup and connection that is not loopback."""
    real_lookup, real_connect = socket.getaddrinfo, socket.socket.connect
    hosts = {"127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost", None}

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in hosts:
            raise socket.gaierror(socket.EAI_NONAME, f"bench: {host!r} is not loopback")
        return real_lookup(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and \
                address[0] not in ("127.0.0.1", "::1"):
            raise ConnectionRefusedError(f"bench: {address[0]} is not loopback")
        real_connect(self, address)

    socket.getaddrinfo = lookup  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]


def timed_pass(config_path: Path, out: Any) -> None:
    """Child process: one run_once on a fresh config and store; puts its figures on ``out``."""
    try:
        guard_loopback()
        logging.getLogger("monitor").setLevel(logging.ERROR)  # not a warning per failing source
        import monitor.pipeline as pipeline
        from monitor.config import load
        from monitor.store import Store

        clock = time.perf_counter()
        config = load(config_path)
        store = Store(config.store_url)
        setup = time.perf_counter() - clock
        rss_before = maxrss_mib()
        parts: dict[str, float] = {}
        with timed(Store, "save_fetch", parts), timed(pipeline, "score_pending", parts):
            clock = time.perf_counter()
            report = pipeline.run_once(config, store)
            wall = time.perf_counter() - clock
        from sqlalchemy import func, select

        from monitor.store import posts
        with store.engine.connect() as db:
            in_store = db.execute(select(func.count()).select_from(posts)).scalar_one()
        store.close()
        out.put({
            "wall": wall, "setup": setup, "rss_before": rss_before,
            "maxrss": maxrss_mib(), "in_store": in_store, "scored": report.scored,
            "flagged": report.flagged, "parts": parts,
            "sources": [(s.name, s.kind, s.fetched, s.new, s.seconds, s.error)
                        for s in report.sources],
        })
    except BaseException:
        out.put({"crash": traceback.format_exc()})


def run_pass(config_path: Path, concurrency: int, plan: list[Planned], delay: float,
             counts: Any, missing: Any) -> dict[str, Any]:
    out = SPAWN.Queue()
    before = list(counts)
    worker = SPAWN.Process(target=timed_pass, args=(config_path, out), daemon=True)
    worker.start()
    try:
        result = out.get(timeout=900)
    except queue.Empty:
        result = {"crash": "the pass did not finish within 900 s"}
    worker.join(30)
    if worker.is_alive():
        worker.terminate()
    if "crash" in result:
        print(f"\n== concurrency {concurrency}: the pass crashed ==\n{result['crash']}")
        return {"concurrency": concurrency, "crash": True}
    served = [after - was for after, was in zip(list(counts), before, strict=True)]
    wanted = {p.name: p for p in plan}
    rows = result["sources"]
    failed = {name: error for name, _, _, _, _, error in rows if error}
    planned_failing = {p.name for p in plan if p.behaviour == "failing"}
    slow_seconds = [sec for name, _, _, _, sec, _ in rows if wanted[name].behaviour == "slow"]
    n_slow = sum(p.behaviour == "slow" for p in plan)
    wall, new = result["wall"], sum(r[3] for r in rows)

    print(f"\n== concurrency {concurrency} ==")
    print(f"  {'kind':<10} {'sources':>7} {'slow':>5} {'failing':>7} {'ok':>5} {'failed':>6} "
          f"{'fetched':>8} {'stored':>7}")
    for kind in dict.fromkeys(p.kind for p in plan):
        mine = [r for r in rows if r[1] == kind]
        print(f"  {kind:<10} {len(mine):>7} "
              f"{sum(wanted[r[0]].behaviour == 'slow' for r in mine):>5} "
              f"{sum(wanted[r[0]].behaviour == 'failing' for r in mine):>7} "
              f"{sum(not r[5] for r in mine):>5} {sum(bool(r[5]) for r in mine):>6} "
              f"{sum(r[2] for r in mine):>8} {sum(r[3] for r in mine):>7}")
    print(f"  wall time         {wall:8.2f} s   (config load + Store open before it: "
          f"{result['setup']:.2f} s)")
    slow_sum = served[4] * delay  # slow answers given: a source may ask more than once
    print(f"  slow delays sum   {slow_sum:8.2f} s   ({served[4]} slow answers x {delay:g} s to "
          f"{n_slow} slow sources; / {concurrency} workers = {slow_sum / concurrency:.2f} s)")
    print(f"  slow sources took {min(slow_seconds, default=0):.2f}-"
          f"{max(slow_seconds, default=0):.2f} s each; the slowest source "
          f"{max(r[4] for r in rows):.2f} s")
    print(f"  sources           {len(rows):8d}     ok {len(rows) - len(failed)}, "
          f"failed {len(failed)}")
    print(f"  posts stored      {new:8d}     (in store {result['in_store']}, scored "
          f"{result['scored']}, flagged {result['flagged']})")
    print(f"  posts / s         {new / wall:8.1f}     sources / s {len(rows) / wall:.1f}")
    parts = result["parts"]
    print(f"  main thread       save_fetch {parts.get('save_fetch', 0):.2f} s while fetching; "
          f"score_pending {parts.get('score_pending', 0):.2f} s after the last fetch")
    print(f"  peak RSS          {result['maxrss']:8.1f} MiB (ru_maxrss of the pass's process; "
          f"{result['rss_before']:.1f} MiB before run_once)")
    print(f"  server answered   200: {served[0]}, 500: {served[1]}, 404: {served[2]}, "
          f"other: {served[3]}; slow answers: {served[4]}")
    print("  requests per kind " + ", ".join(
        f"{kind} {served[KIND_SLOTS[kind]]}" for kind in dict.fromkeys(p.kind for p in plan)))
    if set(failed) == planned_failing:
        print(f"  failures          exactly the {len(planned_failing)} planned failing sources")
    else:
        for name in sorted(set(failed) - planned_failing)[:5]:
            print(f"  UNEXPECTED FAILURE {name}: {failed[name]}")
        for name in sorted(planned_failing - set(failed))[:5]:
            print(f"  planned to fail but did not: {name}")
    while True:
        try:
            print(f"  not served (404)  {missing.get_nowait()}")
        except queue.Empty:
            break
    return {"concurrency": concurrency, "wall": wall, "sources": len(rows), "new": new,
            "slow_sum": slow_sum,
            "ok": len(rows) - len(failed), "failed": len(failed), "maxrss": result["maxrss"]}


# --- main ------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--entries", type=int, default=20,
                        help="posts per feed, per posts.json, per Reddit listing")
    parser.add_argument("--troubled", type=float, default=0.05,
                        help="share of the sources that are slow or failing (half each)")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds a slow source waits")
    parser.add_argument("--concurrency", type=int, default=8, help="config.yaml concurrency")
    parser.add_argument("--also", default="1,16",
                        help="more concurrencies to time, comma-separated ('' for none)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    concurrencies = [args.concurrency] + [int(c) for c in args.also.split(",") if c.strip()]

    loopback_only()
    print(f"feedback-monitor mixed-source benchmark: {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    kinds = usable_kinds()
    if not kinds:
        print("no kind of source is usable", file=sys.stderr)
        return 1
    plan = make_plan(kinds, args.sources, args.troubled)
    behaviours = Counter(p.behaviour for p in plan)
    per_kind = Counter(p.kind for p in plan)
    print(f"  {len(plan)} sources: " + ", ".join(f"{per_kind[k]} {k}" for k in kinds)
          + f"; {behaviours['slow']} slow ({args.delay:g} s), {behaviours['failing']} "
          f"failing (HTTP 500); {args.entries} posts per feed / posts.json / listing")

    counts = SPAWN.Array("q", 5 + len(KINDS), lock=False)  # see STATUS_SLOTS; the child locks
    missing = SPAWN.Queue()
    clock = time.perf_counter()
    results = []
    with child_server(serve, plan, args.entries, args.seed, args.delay, counts,
                      missing) as base:
        print(f"  server (child process) at {base} ready in "
              f"{time.perf_counter() - clock:.2f} s; HTTP retries 0; each pass in a fresh "
              "process on a fresh store")
        with tempfile.TemporaryDirectory(prefix="monitor-bench-mixed-") as temp:
            for concurrency in concurrencies:
                config_path = make_project(Path(temp, f"c{concurrency}"), base, plan,
                                           concurrency)
                results.append(run_pass(config_path, concurrency, plan, args.delay, counts,
                                        missing))
    print(f"\n== summary: {len(plan)} sources ("
          + ", ".join(f"{per_kind[k]} {k}" for k in kinds) + f"), {behaviours['slow']} slow "
          f"({args.delay:g} s per answer), {behaviours['failing']} failing ==")
    print(f"  {'concurrency':>11} {'wall s':>7} {'delays s':>8} {'ok':>5} {'failed':>6} "
          f"{'stored':>7} {'posts/s':>8} {'peak RSS MiB':>12}")
    for r in results:
        if r.get("crash"):
            print(f"  {r['concurrency']:>11} crashed")
            continue
        print(f"  {r['concurrency']:>11} {r['wall']:>7.2f} {r['slow_sum']:>8.1f} {r['ok']:>5} "
              f"{r['failed']:>6} {r['new']:>7} {r['new'] / r['wall']:>8.1f} "
              f"{r['maxrss']:>12.1f}")
    return 1 if any(r.get("crash") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
