"""``monitor daemon``: the pass, source by source, on each source's own schedule (APScheduler 3).

One job per source (its interval, with jitter), one that sends the outbox (honouring each
group's ``group_wait``), one that looks for backlash storms (with ``events``), and the digest
as a cron job at ``digest.at`` in the configured time zone (made at start if the daemon was
down then, unless ``digest.catch_up`` is off), and with ``store.retention`` a prune of old
posts once a day. A source's first run is when the store says it is due, so a restart or a
reload does not poll every source at once. ``job_defaults`` make a
late or slow job coalesce instead of piling up or being skipped silently (APScheduler's own
default drops runs over 1 s late). A source backing off after failures is skipped until its
next try. A watchdog thread, outside the scheduler, alerts the admins when no pass has ended
for the stall limit (``monitor.alarms``). SIGTERM/SIGINT: no new jobs, running ones finish
(each writes in its own transactions; the send stops after the notice it is sending, and lets
go of the ones it claimed), exit 0. SIGHUP: the config and rules are read again
(also when a config, source or rule file changes); a broken new config is refused and the old
one keeps running.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import SQLAlchemyError

from monitor import config as configuration
from monitor import logs
from monitor.alarms import raise_alarms, stall_limit
from monitor.config import Config, Source
from monitor.errors import ConfigError, StoreError
from monitor.health import assess
from monitor.leases import Leases
from monitor.metrics import Metrics
from monitor.outbox import SEND_FOR, deliver_due, remind_untouched
from monitor.pipeline import due_sources, follow_up, retry_policy, run_once, score_pending
from monitor.runtime import Runtime, learned_models
from monitor.store import Store
from monitor.store.passlock import daemon_lock

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
SEND_EVERY = 10.0  # seconds between outbox runs
SEND_STUCK = SEND_FOR.total_seconds() + 300.0  # a send running longer has hung: warn
STORMS_EVERY = 60.0  # seconds between looks for backlash storms
WATCH_EVERY = 5.0  # seconds between looks at the config files' modification times
THEMES_EVERY = 3600.0  # seconds between looks at whether themes are due (daily)
FOLLOWUP_EVERY = 600.0  # seconds between looks at answered cases: did we win them back?
PRUNE_LOOK_EVERY = 3600.0  # seconds between looks at whether old posts are due a prune
PRUNE_EVERY = timedelta(days=1)  # with store.retention: old posts pruned once a day
SWEEP_EVERY = 600.0  # seconds between looks through the whole store for posts left unscored


class Daemon:
    """The scheduler and what its jobs share: the config compiled (``runtime``, swapped whole
    on reload) and the store."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        config = configuration.load(config_path)
        logs.protect(config)
        self.store = Store(config.store_url)
        self.models = self.store.models_mark()  # the learned models in use (`monitor learn`)
        self.runtime = Runtime.of(config, learned_models(self.store))
        self.single = _single_instance(self.store)
        self.leases = Leases(self.store)
        self.scoring = threading.Lock()  # one thread scores and files at a time
        self.stopping = threading.Event()  # SIGTERM/SIGINT: a job still queued does nothing
        self.stopper: threading.Thread | None = None
        self.sending_since: float | None = None  # monotonic start of the running send job
        self.scheduler = BlockingScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self.metrics = Metrics(self.store, lambda: self.config)
        self.stamp = _stamp(self.config)
        self.web: Any = None  # the web inbox's server, when config.yaml has `web:`

    @property
    def config(self) -> Config:
        return self.runtime.config

    def run(self) -> None:
        few_malloc_arenas()
        # each job logs its source's one line, flags and all: the pass's own would repeat it
        logging.getLogger(logs.PASS_SOURCES).setLevel(logging.CRITICAL + 1)
        self._schedule(self.config)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        log.info("daemon started: %d sources", len(self.config.sources))
        threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()
        scheduler_log = logging.getLogger("apscheduler.scheduler")
        scheduler_log.addFilter(self._quiet_send_skips)
        web = None
        try:
            self.metrics.serve(self.config.main.metrics)
            if self.config.main.web is not None:  # the web inbox, from a thread of ours
                from monitor.web.server import WebServer

                web = self.web = WebServer(self.config, self.store)
                web.start()
            self.scheduler.start()
        finally:
            if self.stopper is not None:  # start() returns once shutdown begins: wait for it
                self.stopper.join()
            if web is not None:
                web.stop()
            self.metrics.stop()
            self.store.close()
            scheduler_log.removeFilter(self._quiet_send_skips)
            log.info("daemon stopped")

    def _schedule(self, config: Config) -> None:
        now = datetime.now(UTC)
        first = first_runs(config.sources, self._stored_health(), now)
        for job in self.scheduler.get_jobs():
            job.remove()
        for source in config.sources:
            self.scheduler.add_job(
                self._poll, "interval", seconds=source.interval, args=[source.name],
                jitter=min(30.0, source.interval / 10), id=f"source:{source.name}",
                next_run_time=first[source.name], replace_existing=True)
        self.scheduler.add_job(self._send, "interval", seconds=SEND_EVERY, id="send",
                               next_run_time=now + timedelta(seconds=1), replace_existing=True)
        self.scheduler.add_job(self._watch, "interval", seconds=WATCH_EVERY, id="watch",
                               replace_existing=True)
        self.scheduler.add_job(self._themes, "interval", seconds=THEMES_EVERY, id="themes",
                               next_run_time=now + timedelta(seconds=30), replace_existing=True)
        self.scheduler.add_job(self._sweep, "interval", seconds=SWEEP_EVERY, id="sweep",
                               next_run_time=now + timedelta(seconds=5), replace_existing=True)
        self.scheduler.add_job(self._follow_up, "interval", seconds=FOLLOWUP_EVERY,
                               id="follow-up", replace_existing=True)
        if config.retention is not None:
            self.scheduler.add_job(self._prune, "interval", seconds=PRUNE_LOOK_EVERY,
                                   id="prune", next_run_time=now + timedelta(seconds=60),
                                   replace_existing=True)
        if config.main.events:
            self.scheduler.add_job(self._storms, "interval", seconds=STORMS_EVERY, id="storms",
                                   next_run_time=now + timedelta(seconds=2),
                                   replace_existing=True)
        if config.main.digest.at:
            hour, minute = map(int, config.main.digest.at.split(":"))
            self.scheduler.add_job(self._digest, "cron", hour=hour, minute=minute,
                                   timezone=config.timezone, id="digest",
                                   replace_existing=True)
            missed = missed_digest(config, now)
            if missed and config.main.digest.catch_up:
                log.info("digest %s missed while the daemon was down: making it now", missed)
                self.scheduler.add_job(self._digest, id="digest-catch-up",
                                       next_run_time=now + timedelta(seconds=3),
                                       replace_existing=True)
            elif missed:
                log.info("digest %s missed while the daemon was down; not made, as "
                         "digest.catch_up is off (monitor digest --day %s makes it)",
                         missed, missed)
        for event in config.main.events:
            if event.report is not None:
                hour, minute = map(int, event.report.at.split(":"))
                self.scheduler.add_job(self._launch_report, "cron", hour=hour, minute=minute,
                                       timezone=config.timezone, args=[event.name],
                                       id=f"launch-report:{event.name}", replace_existing=True)

    def _stored_health(self) -> list[dict[str, Any]]:
        """The store's ``sources`` rows; none when it cannot be read (a reload during an
        outage then polls every source now, rather than failing)."""
        try:
            return self.store.source_health()
        except SQLAlchemyError as error:
            log.warning("store unreadable, every source is polled now: %s", error)
            return []

    def _poll(self, name: str) -> None:
        """Poll ``name`` while holding its lease: on a shared PostgreSQL another daemon may
        hold it (it is polling the source now), and this run is skipped."""
        if self.stopping.is_set():  # queued before SIGTERM, its turn came after
            return
        source = next((s for s in self.config.sources if s.name == name), None)
        kind, interval = (source.kind, source.interval) if source else ("", 0.0)
        with self.leases.held(name, kind, spacing=interval / 2) as mine:
            if not mine:
                log.debug("%s: leased by another daemon (polling it, or just did), skipped",
                          name)
                return
            self._poll_leased(name)

    def _poll_leased(self, name: str) -> None:
        runtime = self.runtime
        config = runtime.config
        if name not in due_sources(config, self.store, datetime.now(UTC), [name],
                                   backoff_only=True):
            log.info("%s: backing off after failures, skipped", name,
                     extra={"source": name, "skipped": "backoff"})
            self.metrics.skipped(name)
            now = datetime.now(UTC)  # a pass that chose to wait: the daemon is not stalled
            self.store.record_run(now, now, {"skipped": [name]})
            return
        report = run_once(config, self.store, [name], deliver=False, writing=self.scoring,
                          storms=False, runtime=runtime, sweep=False)
        for s in report.sources:
            logs.source_line(log, s, flagged=True)
            self.metrics.polled(s)

    def _send(self) -> None:
        """Reminders, then the outbox; it stops between two notices on SIGTERM, letting go
        of what it claimed and did not send (the next start sends it)."""
        if self.stopping.is_set():  # queued before SIGTERM, its turn came after
            return
        config = self.config
        self.sending_since = time.monotonic()
        try:
            with self.scoring:
                remind_untouched(self.store, config.routes, datetime.now(UTC))
            outcome = deliver_due(self.store, config.receivers, retry=retry_policy(config),
                                  stop=self.stopping)
            if outcome:
                log.info("notifications: %s", dict(outcome),
                         extra={"notifications": dict(outcome)})
            if self.stopping.is_set():  # dead ones are told by the next start's send
                return
            with self.scoring:  # a notification that died: the admins hear of it (next send)
                raise_alarms(self.store, self.runtime, datetime.now(UTC), sources=())
        finally:
            self.sending_since = None

    def _quiet_send_skips(self, record: logging.LogRecord) -> bool:
        """APScheduler warns each time the send job is due while it still runs. A send may
        run for minutes with slow receivers (``SEND_FOR`` and one receiver's timeout): that is
        no problem, so it is said at DEBUG. One running past ``SEND_STUCK`` still warns."""
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        since = self.sending_since
        if getattr(job, "id", None) == "send" and "maximum number of running instances" in \
                str(record.msg) and since is not None and \
                time.monotonic() - since < SEND_STUCK:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True

    def _watchdog(self) -> None:
        """Outside the scheduler (whose jobs may be what hangs): when no pass has ended for
        longer than the stall limit, alert the admins and send it at once, without the
        scoring lock a hung job may hold. A pass that ends clears the way for the next gap."""
        while not self.stopping.wait(min(60.0, stall_limit(self.config) / 4)):
            now, last = datetime.now(UTC), self.store.last_pass_at()
            if last is None or (now - last).total_seconds() <= stall_limit(self.config):
                continue
            try:
                if raise_alarms(self.store, self.runtime, now, sources=(), deliveries=False,
                                last_pass=last):
                    deliver_due(self.store, self.config.receivers, now,
                                retry_policy(self.config), flush=True, stop=self.stopping)
            except Exception:  # the watchdog must outlive a store that is down for a while
                log.exception("watchdog: could not alert about the stall")

    def _themes(self) -> None:
        """Complaint themes (``monitor.themes``), tracked when the last tracking is a day old:
        looked at hourly, so a restart or a second daemon does not track twice a day."""
        from monitor.themes import track_if_due

        with self.scoring:
            done = track_if_due(self.store, self.config, datetime.now(UTC))
        if done is not None:
            log.info("complaint themes: %d from %d posts", done.themes, done.posts,
                     extra={"themes": done.themes})

    def _sweep(self) -> None:
        """Posts left unscored (a daemon killed between storing and scoring): a poll scores
        only what it saved, so that its cost does not grow with the store; this looks through
        the whole store, now and then."""
        runtime = self.runtime
        with self.scoring:
            scored, flagged = score_pending(self.store, runtime)
        if scored:
            log.info("sweep: %d posts left unscored were scored, %d flagged", scored,
                     sum(flagged.values()), extra={"scored": scored})

    def _follow_up(self) -> None:
        """Answered cases followed up (``monitor.followup``): may reopen one, so it holds the
        scoring lock like every job that changes cases."""
        with self.scoring:
            follow_up(self.store, self.config, datetime.now(UTC))

    def _prune(self) -> None:
        """Old posts pruned (``store.retention``, ``monitor.store.retention``) when the last
        prune is a day old: looked at hourly, so a restart, a reload or a second daemon does
        not prune twice a day. Each batch holds the scoring lock, never the whole prune."""
        config, now = self.config, datetime.now(UTC)
        last = self.store.last_pruned_at()
        if config.retention is None or (last is not None and now - last < PRUNE_EVERY):
            return
        done = self.store.prune_posts(now - timedelta(seconds=config.retention), now,
                                      writing=self.scoring)
        log.info("retention: pruned %d posts first seen before %s", done.posts,
                 done.cutoff.isoformat(), extra={"pruned": done.posts})

    def _storms(self) -> None:
        from monitor.backlash.storms import file_storms  # pandas: only if launches are watched

        runtime = self.runtime
        with self.scoring:
            going = file_storms(self.store, runtime, datetime.now(UTC))
        if going:
            log.info("storms going on: %d", going, extra={"storms": going})

    def _digest(self) -> None:
        """Yesterday's digest (the last whole day), written and e-mailed; a recipient already
        sent it is skipped, so a re-run or a second daemon sends nobody anything twice."""
        from monitor.reports import digest as digests  # matplotlib: only where a digest is
        from monitor.reports import render
        from monitor.reports.mail import send_digest

        config, now = self.config, datetime.now(UTC)
        day = digests.last_whole_day(now, config.timezone)
        built = digests.build_for(config, self.store, day, now)
        paths = render.write(built, config.reports_dir)
        outcome = send_digest(config, self.store, day, now, built)
        log.info("digest %s: %d files; sent to %d, failed %d", day, len(paths),
                 len(outcome.sent), len(outcome.failed),
                 extra={"digest": str(day), "sent": len(outcome.sent),
                        "failed": [r for r, _ in outcome.failed]})

    def _launch_report(self, name: str) -> None:
        """The launch report of ``name``, written and e-mailed while the launch is young
        (``events[].report.until``); once a day per recipient, whichever daemon sends."""
        from monitor.backlash import report as reports  # pandas: only where one is sent
        from monitor.backlash.launches import find
        from monitor.backlash.mail import send_launch_report, young

        config, now = self.config, datetime.now(UTC)
        event = find(config, [name])[0]
        if not young(event, now):
            log.debug("launch report %s: not sent (before the launch, or past report.until)",
                      name)
            return
        built = reports.build(self.store, event, config.timezone, now)
        paths = reports.write(built, config.reports_dir)
        outcome = send_launch_report(config, self.store, event, now, built)
        log.info("launch report %s: %d files; sent to %d, failed %d", name, len(paths),
                 len(outcome.sent), len(outcome.failed),
                 extra={"launch": name, "sent": len(outcome.sent),
                        "failed": [r for r, _ in outcome.failed]})

    def _stop(self, signum: int, _frame: Any) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info("signal %d: finishing running jobs, then stopping", signum)
        self.stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True})
        self.stopper.start()

    def _watch(self) -> None:
        """A changed config, source or rule file is reloaded as SIGHUP would (once per
        change: a broken edit is refused once, then waits for the next edit)."""
        stamp = _stamp(self.config)
        if stamp != self.stamp:
            self.stamp = stamp
            log.info("config files changed: reloading")
            self._reload(0, None)
        elif self._models_mark() != self.models:
            log.info("`monitor learn` changed the models in use: reloading")
            self._reload(0, None)

    def _models_mark(self) -> tuple[int, ...]:
        """The active learned models' ids (``monitor learn`` changes them); during a store
        outage, the ones in use (nothing to reload then)."""
        try:
            return self.store.models_mark()
        except SQLAlchemyError:
            return self.models

    def _reload(self, _signum: int, _frame: Any) -> None:
        try:
            fresh = configuration.load(self.config_path)
            self.models = self._models_mark()
            runtime = Runtime.of(fresh, learned_models(self.store))
        except ConfigError as error:
            log.error("reload refused, keeping the running config: %s",
                      "; ".join(str(p) for p in error.problems))
            return
        if fresh.store_url != self.config.store_url:
            log.error("reload refused: the store cannot change while running (restart)")
            return
        logs.protect(fresh)
        if self.web is not None:
            if fresh.main.web != self.config.main.web:
                log.warning("web: a changed `web:` section takes effect at the next start")
            self.web.set_config(fresh)
        self.runtime = runtime
        self._schedule(fresh)
        log.info("config reloaded: %d sources", len(fresh.sources))


def few_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each new thread its own malloc arena (up to 8 per core) and keeps what an
    arena freed: a daemon whose job threads parse large feeds in turn grows by about 50 MB
    over a few minutes (bench/memory.py). Two arenas, set before any thread starts, keep the
    freed memory reusable. Nothing happens where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _stamp(config: Config) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of the config file and of every file in the
    sources and rules folders: what an edit changes."""
    base = config.path.parent
    files = [config.path, *(f for folder in (config.main.sources, config.main.rules)
                            if (base / folder).is_dir()
                            for f in sorted((base / folder).iterdir()) if f.is_file())]
    found = []
    for path in files:
        try:
            info = path.stat()
        except OSError:  # removed between listing and looking: the next look sees it
            continue
        found.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(found)


def first_runs(sources: Iterable[Source], rows: Iterable[Mapping[str, Any]],
               now: datetime) -> dict[str, datetime]:
    """When each source's job first runs: when it is due by the store (its last attempt
    plus its interval, backed off while it fails), so a restart or a reload does not poll a
    source polled minutes ago; now when it was never tried or is due already."""
    return {h.name: max(h.next_at or now, now) for h in assess(sources, rows, now)}


def missed_digest(config: Config, now: datetime) -> date | None:
    """The last whole day, when today's digest time has passed and its digest is not written
    (the daemon was down at ``digest.at``); else None."""
    from monitor.reports.digest import last_whole_day

    if now.astimezone(config.timezone).strftime("%H:%M") < (config.main.digest.at or "24:00"):
        return None
    day = last_whole_day(now, config.timezone)
    return None if (config.reports_dir / f"{day.isoformat()}.html").exists() else day


def _single_instance(store: Store) -> Any:
    """SQLite: one daemon per database file (a second refuses to start), holding the pass
    lock too, so a `monitor run` beside it is refused and one under way is waited for.
    PostgreSQL allows several; they share the work through the store's locks and claims."""
    database = store.engine.url.database
    if store.engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    handles = daemon_lock(database)  # one lock with `monitor run`: never both writing
    if handles is None:
        store.close()
        raise StoreError(f"another monitor daemon is running on {database}")
    return handles  # kept open: the locks live as long as the process
