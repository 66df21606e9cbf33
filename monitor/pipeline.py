"""One pass, top to bottom: collect -> store -> score -> rules -> route -> file -> deliver.

The only module that imports every stage, and the one that owns the transactions: a
source's posts and cursor are stored in one; a batch's scores, flags, cases and outbox rows
in another (so a pass killed at any moment loses nothing and files nothing twice). Sources are
fetched in parallel (bounded), but all database writes happen on this thread, so SQLite is
never written from two threads and one broken source never stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from queue import Empty, Queue
from typing import Any

from monitor import logs, outbox
from monitor.alarms import raise_alarms
from monitor.collectors.http import HttpClient, deadline
from monitor.collectors.rss import ParsePool
from monitor.config import Config, Source
from monitor.errors import MonitorError
from monitor.health import assess
from monitor.model import Cursor, Fetch, Post
from monitor.outbox import RetryPolicy, deliver_due, remind_untouched
from monitor.parallel import cores
from monitor.registry import collector_class
from monitor.runtime import Runtime, learned_models
from monitor.store import Store, StoredPost

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    name: str
    kind: str
    fetched: int = 0
    new: int = 0
    edited: int = 0
    flagged: int = 0
    unchanged: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunReport:
    started_at: datetime
    seconds: float
    sources: list[SourceReport]
    scored: int = 0
    flagged: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)  # sent / retry / dead batches
    alerts: int = 0  # the monitor's alerts about itself raised in this pass
    skipped: list[str] = field(default_factory=list)  # not tried: backing off after failures

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.error]

    @property
    def exit_code(self) -> int:
        """0 when all went well; 1 when a source failed or was skipped while it backs off
        after failures, or a notification died in this pass (the rest is stored and sent)."""
        return 1 if self.failed or self.skipped or self.deliveries.get("dead") else 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def run_once(config: Config, store: Store, only: list[str] | None = None,
             deliver: bool = True,
             writing: AbstractContextManager[object] | None = None,
             storms: bool = True, runtime: Runtime | None = None,
             sweep: bool = True, jobs: int = 1) -> RunReport:
    """Collect the configured sources (or ``only`` these), then score what is new, file and
    route the flags, and (unless ``deliver`` is False: the daemon sends on its own schedule)
    send the outbox. ``runtime``: the config compiled (the daemon keeps one); made here when
    not given.

    ``writing`` is held from the first fetch stored to the last flag filed, never while
    waiting for the first fetch: the daemon's jobs share one lock, so each job stores and
    scores alone (its counts are its own), and a source that hangs until its timeout delays
    no other source.

    ``sweep``: score every post left unscored in the store (a pass killed before scoring
    leaves some); without it, only the posts this pass saved are scored, so a poll costs the
    same in a store of a thousand posts or of millions (the daemon sweeps in a job of its
    own). ``jobs``: processes that judge the posts when a pass brings many (``monitor run``;
    the daemon, a threaded process that must not fork, judges in its own)."""
    started, clock = datetime.now(UTC), time.monotonic()
    last_pass = store.last_pass_at()
    run_id = store.begin_run(started)
    chosen = [s for s in config.sources if only is None or s.name in only]
    reports = {s.name: SourceReport(s.name, s.kind) for s in chosen}
    saved: list[int] = []
    with ExitStack() as held:
        with HttpClient(**config.main.http.model_dump()) as http:
            work = _with_cursors(store, chosen)
            # store what has landed, then let it go; a late one is "deadline exceeded"
            for n, landed in enumerate(
                    _collect_all(work, http, config.main.concurrency, clock)):
                if n == 0 and writing is not None:
                    held.enter_context(writing)
                saved.extend(_store_fetches(store, landed, reports))
        if not chosen and writing is not None:
            held.enter_context(writing)
        runtime = runtime or Runtime.of(config, learned_models(store))
        scored, by_source = score_pending(store, runtime, ids=None if sweep else saved,
                                          jobs=jobs)
        if storms and runtime.events:  # the daemon looks for storms in a job of its own
            from monitor.backlash.storms import file_storms

            file_storms(store, runtime, datetime.now(UTC))
        alerts = raise_alarms(store, runtime, datetime.now(UTC), deliveries=False,
                              sources=[s.name for s in chosen], last_pass=last_pass)
    sent: Counter[str] = Counter()
    if deliver:  # the daemon sends (and tells of dead notifications) in a job of its own
        remind_untouched(store, runtime.routes, datetime.now(UTC))
        sent = deliver_due(store, config.receivers, datetime.now(UTC), retry_policy(config),
                           flush=True)
        told = raise_alarms(store, runtime, datetime.now(UTC), sources=())
        if alerts or told:  # the alerts of this pass go out with it
            sent.update(deliver_due(store, config.receivers, datetime.now(UTC),
                                    retry_policy(config), flush=True))
        alerts += told
    if deliver:  # the daemon follows answered cases up in a job of its own, as it sends
        follow_up(store, config, datetime.now(UTC))
    for name, count in by_source.items():
        if name in reports:
            reports[name].flagged += count
    report = RunReport(started, time.monotonic() - clock, list(reports.values()), scored,
                       sum(by_source.values()), dict(sent), alerts)
    if storms:  # the daemon tracks complaint themes in a job of its own
        try:  # once a day (monitor.themes); its failure is never the pass's
            from monitor.themes import track_if_due

            track_if_due(store, config, datetime.now(UTC))
        except Exception as error:
            log.error("complaint themes not tracked (the next pass tries again): %s: %s",
                      type(error).__name__, _first_line(error))
    store.record_run(started, datetime.now(UTC), report.as_dict(), run_id)
    return report


def follow_up(store: Store, config: Config, now: datetime) -> None:
    """The follow-up of answered cases (``monitor.followup``), logged; its failure is logged
    too and never fails the pass (or the daemon's job): the next look tries again."""
    from monitor import followup

    try:
        for line in followup.update(store, config, now):
            log.info("follow-up: %s", line)
    except Exception as error:
        log.error("follow-up of answered cases failed (the next look tries again): %s: %s",
                  type(error).__name__, _first_line(error))


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0]


def due_sources(config: Config, store: Store, now: datetime,
                only: list[str] | None = None, backoff_only: bool = False) -> list[str]:
    """The sources (of ``only``, if given) due now: never tried, or their interval (backed
    off while they keep failing) has passed since their last attempt.

    ``backoff_only``: a source that is not failing is always due. The daemon's scheduler
    keeps the interval itself; measured from the store, a run fired a little less than one
    interval after the last one ended (the jitter, a fetch that took a while) would be
    skipped, and a healthy source polled at twice its interval. For the same reason cron mode
    allows a grace of a tenth of the interval (at most a minute): the attempt is stamped when
    it ends, so a source whose interval equals the cron period is not skipped every other run."""
    wanted = [s for s in config.sources if only is None or s.name in only]
    rows = store.source_health(None if only is None else [s.name for s in wanted])
    grace = {s.name: timedelta(seconds=min(60.0, s.interval / 10)) for s in wanted}
    return [h.name for h in assess(wanted, rows, now)
            if h.next_at is None or h.next_at <= now + grace[h.name]
            or (backoff_only and not h.failures)]


def backing_off(config: Config, store: Store, now: datetime,
                only: list[str] | None = None) -> list[str]:
    """The sources (of ``only``, if given) not due now because they keep failing: skipped by
    ``--due-only`` until their backed-off next try."""
    due = set(due_sources(config, store, now, only))
    wanted = {s.name for s in config.sources if only is None or s.name in only}
    return sorted(r["name"] for r in store.source_health(sorted(wanted))
                  if r["failures"] and r["name"] not in due)


def _unscored(store: Store, batch: int, rescore: bool, since: datetime | None,
              ids: Sequence[int] | None) -> Iterator[list[StoredPost]]:
    """The posts ``score_pending`` judges, a batch at a time in id order (read ahead of the
    judging when processes judge them, which is right: a batch read is never read again)."""
    after = store.first_post_id(since) - 1 if since is not None else 0
    while True:
        if ids is None:
            items = store.posts_to_score(limit=batch, rescore=rescore, after_id=after,
                                         since=since)
        else:  # a batch of the given ids at a time: those scored meanwhile just drop out
            chunk = sorted(i for i in ids if i > after)[:batch]
            if not chunk:
                return
            items = store.posts_to_score(limit=batch, ids=chunk)
            after = chunk[-1]
        if not items:
            if ids is None:
                return
            continue
        yield items
        after = max(after, items[-1].id)


def _posts_of(items: Sequence[StoredPost]) -> list[Post]:
    return [item.post for item in items]


def retry_policy(config: Config) -> RetryPolicy:
    """The outbox's retry schedule from config ``delivery``."""
    return RetryPolicy(config.main.delivery.max_attempts, config.main.delivery.backoff)


def _with_cursors(store: Store, chosen: list[Source]) -> list[tuple[Source, Cursor | None]]:
    """Each source with its cursor, read in one query: a query per source cost a warm pass
    of 1,000 feeds about a second on a busy machine."""
    names = [source.name for source in chosen]
    rows = store.source_health(names) if len(names) <= 500 else store.source_health()
    cursors = {row["name"]: row["cursor"] for row in rows}
    return [(source, cursors.get(source.name)) for source in chosen]


def _collect(source: Source, cursor: Cursor | None, http: HttpClient,
             pool: ParsePool | None = None) -> tuple[Fetch | None, str | None, float]:
    """Run one collector; never raises, so one source cannot stop the pass. ``pool``: the
    pass's parsing processes, for a collector that takes them (``parse_pool``)."""
    clock = time.monotonic()
    try:
        collector = collector_class(source.kind)(source.name, source.options, http)
        if pool is not None and hasattr(collector, "parse_pool"):
            collector.parse_pool = pool
        return collector.collect(cursor), None, time.monotonic() - clock
    except MonitorError as error:  # SourceError, or a ConfigError from a plugin
        return None, str(error), time.monotonic() - clock
    except Exception as error:  # a collector's bug is that source's failure, not the pass's
        log.exception("collector for %s crashed", source.name)
        return None, f"collector crashed: {type(error).__name__}: {error}", \
            time.monotonic() - clock


DEADLINE_GRACE = 1.0
"""Seconds a source's thread has past its deadline to hand in what it has (the HTTP client
stops at the deadline itself; parsing, or a collector not using it, may not)."""

POOL_FROM = 50
"""Feeds in a pass from which they are parsed in worker processes (``ParsePool``), one per
core. A smaller pass parses on its fetching threads: the first worker of a process costs
about 2 s (the forkserver starts and imports feedparser), each later one a fork. The daemon
polls one source per run, so it never starts one."""

Outcome = tuple[Fetch | None, str | None, float]


def _collect_all(work: list[tuple[Source, Cursor | None]], http: HttpClient, concurrency: int,
                 clock: float) -> Iterator[list[tuple[Source, Outcome]]]:
    """Collect ``work`` on ``concurrency`` threads; yield the outcomes that have landed, as
    they land (all of them at once when the caller is slower than the fetches: one
    transaction stores them together).

    Each source has ``http.source_deadline`` from its start (retries and parsing included),
    and nothing outlives the pass deadline (``clock`` + ``http.pass_deadline``): a source
    still running then, or not started, yields "deadline exceeded" and is left behind. The
    threads are daemons, so a stuck one holds neither the pass, its lock, nor the process.
    With ``POOL_FROM`` feeds or more, feeds are parsed in a ``ParsePool``, closed (its
    processes ended) when this generator ends.
    """
    feeds = sum(source.kind == "rss" for source, _ in work)
    with ExitStack() as closing:
        pool = closing.enter_context(ParsePool(min(cores(), feeds))) \
            if feeds >= POOL_FROM and cores() > 1 else None
        yield from _landing(work, http, concurrency, clock, pool)


def _landing(work: list[tuple[Source, Cursor | None]], http: HttpClient, concurrency: int,
             clock: float, pool: ParsePool | None) -> Iterator[list[tuple[Source, Outcome]]]:
    pass_end = clock + http.pass_deadline
    todo: Queue[tuple[Source, Cursor | None]] = Queue()
    for item in work:
        todo.put(item)
    events: Queue[tuple[str, Source, Any]] = Queue()

    def worker() -> None:
        while time.monotonic() < pass_end:
            try:
                source, cursor = todo.get_nowait()
            except Empty:
                return
            began = time.monotonic()
            events.put(("started", source, began))
            with deadline(min(began + http.source_deadline, pass_end)):
                events.put(("done", source, _collect(source, cursor, http, pool)))

    def hire() -> None:
        threading.Thread(target=worker, daemon=True, name="collect").start()

    for _ in range(min(concurrency, len(work))):
        hire()
    pending = {source.name for source, _ in work}
    started: dict[str, float] = {}
    while pending:
        ends = [pass_end, *(started[n] + http.source_deadline + DEADLINE_GRACE
                            for n in pending if n in started)]
        try:
            wait = min(max(0.0, min(ends) - time.monotonic()), 3600.0)  # .inf: look again
            got = [events.get(timeout=wait)]
        except Empty:
            late: list[tuple[Source, Outcome]] = []
            now = time.monotonic()
            for source, _ in work:
                began = started.get(source.name)
                over = began is not None and \
                    now >= began + http.source_deadline + DEADLINE_GRACE
                if source.name not in pending or not (over or now >= pass_end):
                    continue
                pending.discard(source.name)
                if began is None:
                    why = f"not started before the pass deadline ({http.pass_deadline:.0f}s, " \
                          "http.pass_deadline)"
                elif over:
                    why = f"still running after {http.source_deadline:.0f}s " \
                          "(http.source_deadline); left behind"
                    if now < pass_end:
                        hire()  # its thread is stuck: another one takes over the queue
                else:
                    why = f"still running at the pass deadline ({http.pass_deadline:.0f}s, " \
                          "http.pass_deadline); left behind"
                late.append((source, (None, f"deadline exceeded: {why}",
                                      now - began if began is not None else 0.0)))
            if late:
                yield late
            continue
        while True:  # and whatever else has landed meanwhile
            try:
                got.append(events.get_nowait())
            except Empty:
                break
        landed: list[tuple[Source, Outcome]] = []
        for kind, source, payload in got:
            if source.name not in pending:
                continue  # it was already reported as over its deadline: too late
            if kind == "started":
                started[source.name] = payload
                continue
            pending.discard(source.name)
            landed.append((source, payload))
        if landed:
            yield landed


def _store_fetches(store: Store, landed: list[tuple[Source, Outcome]],
                   reports: dict[str, SourceReport]) -> list[int]:
    """Store the outcomes that landed together, in one transaction (each source's posts and
    cursor still together); returns the ids of the posts saved new or edited."""
    now = datetime.now(UTC)
    batch: list[tuple[str, str, Fetch | str]] = []
    for source, (fetch, error, seconds) in landed:
        report = reports[source.name]
        report.seconds = seconds
        if fetch is None:
            report.error = error
            batch.append((source.name, source.kind, error or "unknown error"))
        else:
            batch.append((source.name, source.kind, fetch))
    saved_ids: list[int] = []
    for (source, (fetch, _, _)), saved in zip(landed, store.save_fetches(batch, now),
                                             strict=True):
        report = reports[source.name]
        if fetch is not None:
            report.fetched, report.unchanged = len(fetch.posts), fetch.unchanged
            report.new, report.edited = len(saved.new), len(saved.edited)
            report.problems = list(fetch.problems)
            saved_ids += saved.new + saved.edited
        # flags come later, for the whole pass: its summary has them
        logs.source_line(_SOURCE_LOG, report, flagged=False)
    return saved_ids


_SOURCE_LOG = logging.getLogger(logs.PASS_SOURCES)


def score_pending(store: Store, runtime: Runtime, rescore: bool = False,
                  since: datetime | None = None, batch: int = 500,
                  ids: Sequence[int] | None = None, jobs: int = 1) -> tuple[int, Counter[str]]:
    """Score every post not yet scored (or changed since); returns (scored, new flags/source:
    flags that need a person, praise not counted).

    Works from the store, not from this pass's fetches, so posts saved by a pass that was
    killed before scoring are scored by the next one. ``rescore`` re-applies the current
    scorer and rules to every stored post (first seen from ``since`` on): flags follow the
    rules as they are now, and a newly flagged post opens its one case. ``ids``: only these
    posts (those a poll saved), if they still need it. ``jobs``: processes that judge the
    posts when there are many (``Runtime.judge_batches``); the daemon, a threaded process,
    never forks.
    """
    total, flagged = 0, Counter[str]()
    if ids is not None and not ids:  # a poll that saved nothing: nothing to look up
        return total, flagged
    muted = [s["matchers"] for s in store.silences(datetime.now(UTC))]
    storms: dict[str, int] = {}
    if runtime.events:  # storms need pandas: loaded only where launches are watched
        from monitor.backlash.storms import STORM_HOLD

        storms = store.open_storms(datetime.now(UTC), STORM_HOLD)
    for items, judgements in runtime.judge_batches(
            _unscored(store, batch, rescore, since, ids), _posts_of, jobs):
        judged = [(item, score, flag) for item, (score, flag)
                  in zip(items, judgements, strict=True)]
        routes = {item.id: runtime.route(item.post, score, flag, muted, storms)
                  for item, score, flag in judged if flag is not None}
        now = datetime.now(UTC)
        with store.transaction() as db:  # scores, flags, cases and outbox rows: all or none
            newly = outbox.record(db, judged, now, routes, runtime.config.policy,
                                  drop_unmatched=rescore)
        flagged.update(stored.post.source for stored, flag in newly if flag.needs_person)
        total += len(items)
    return total, flagged
