"""``monitor daemon``: the pass, source by source, on each source's own schedule (APScheduler 3).

One job per source (its interval, with jitter), one that sends the outbox (honouring each
group's ``group_wait``). ``job_defaults`` make a late or slow job coalesce instead of piling
up or being skipped silently (APScheduler's own default drops runs over 1 s late). A source
backing off after failures is skipped until its next try. SIGTERM/SIGINT: no new jobs, running
ones finish (each writes in its own transactions), exit 0. SIGHUP: the config and rules are
read again; a broken new config is refused and the old one keeps running.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler

from monitor import config as configuration
from monitor.config import Config
from monitor.deliver import deliver_due, remind_untouched
from monitor.errors import ConfigError, StoreError
from monitor.judge import Judge
from monitor.pipeline import due_sources, retry_policy, run_once
from monitor.store import Store
from monitor.store.passlock import lock_beside

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
SEND_EVERY = 10.0  # seconds between outbox runs


class Daemon:
    """The scheduler and what its jobs share: the config (swapped on reload) and the store."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config: Config = configuration.load(config_path)
        self.store = Store(self.config.store_url)
        self.single = _single_instance(self.store)
        self.scoring = threading.Lock()  # one thread scores and files at a time
        self.scheduler = BlockingScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)

    def run(self) -> None:
        self._schedule(self.config)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        log.info("daemon started: %d sources", len(self.config.sources))
        try:
            self.scheduler.start()
        finally:
            self.store.close()
            log.info("daemon stopped")

    def _schedule(self, config: Config) -> None:
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            job.remove()
        for source in config.sources:
            self.scheduler.add_job(
                self._poll, "interval", seconds=source.interval, args=[source.name],
                jitter=min(30.0, source.interval / 10), id=f"source:{source.name}",
                next_run_time=now, replace_existing=True)
        self.scheduler.add_job(self._send, "interval", seconds=SEND_EVERY, id="send",
                               next_run_time=now + timedelta(seconds=1), replace_existing=True)

    def _poll(self, name: str) -> None:
        config = self.config
        if name not in due_sources(config, self.store, datetime.now(UTC), [name]):
            log.info("%s: backing off after failures, skipped", name)
            return
        with self.scoring:
            report = run_once(config, self.store, [name], deliver=False)
        for s in report.sources:
            log.info("%s: fetched %d, new %d, flagged %d in %.2fs%s", s.name, s.fetched, s.new,
                     s.flagged, s.seconds, f"; FAILED: {s.error}" if s.error else "")

    def _send(self) -> None:
        config, now = self.config, datetime.now(UTC)
        with self.scoring:
            remind_untouched(self.store, Judge.of(config), now)
        outcome = deliver_due(self.store, config.receivers, now, retry_policy(config))
        if outcome:
            log.info("notifications: %s", dict(outcome))

    def _stop(self, signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing running jobs, then stopping", signum)
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}).start()

    def _reload(self, _signum: int, _frame: Any) -> None:
        try:
            fresh = configuration.load(self.config_path)
        except ConfigError as error:
            log.error("reload refused, keeping the running config: %s",
                      "; ".join(str(p) for p in error.problems))
            return
        if fresh.store_url != self.config.store_url:
            log.error("reload refused: the store cannot change while running (restart)")
            return
        self.config = fresh
        self._schedule(fresh)
        log.info("config reloaded: %d sources", len(fresh.sources))


def _single_instance(store: Store) -> Any:
    """SQLite: one daemon per database file (a second refuses to start). PostgreSQL allows
    several; they share the work through the store's locks and claims."""
    database = store.engine.url.database
    if store.engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    handle = lock_beside(database, ".daemon")
    if handle is None:
        store.close()
        raise StoreError(f"another monitor daemon is running on {database}")
    return handle  # kept open: the lock lives as long as the process
