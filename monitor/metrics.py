"""Prometheus metrics for ``monitor daemon``: what its jobs did, and what the store holds.

Counters and the poll-duration histogram count this process's jobs as they run (sum them over
several daemons). Everything else is read from the store when Prometheus scrapes (a few
small queries), so it is right after a restart and includes what another daemon on the same
PostgreSQL did (take ``max`` over daemons, not ``sum``). Flags are counted from the store too,
as they appear, since a pass reports flags by source but not by severity.

Our own CollectorRegistry, never prometheus_client's global one: only our series are served,
and a test can build as many as it likes. The endpoint is off unless ``metrics.port`` is set.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import ConfigError
from monitor.health import assess
from monitor.model import SEVERITIES
from monitor.queue import OPEN_STATES

if TYPE_CHECKING:
    from monitor.config import Config, MetricsSettings
    from monitor.health import Health
    from monitor.pipeline import SourceReport
    from monitor.store import Store

log = logging.getLogger(__name__)

PREFIX = "feedback_monitor"
POLL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SOURCE_STATES = ("ok", "quiet", "broken", "never_run")
ALWAYS_SHOWN = ("pending", "dead")  # outbox states shown even at 0, for alert rules
FLAG_LOOKBACK = timedelta(minutes=2)  # a flag's transaction commits after its flagged_at


class Metrics:
    """The daemon's metrics: ``polled``/``skipped`` after each source job, ``serve`` once."""

    def __init__(self, store: Store, config: Callable[[], Config]) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(f"{PREFIX}_polls", "Source polls by outcome: ok, unchanged (304 "
                             "or same content), failed, skipped (backing off after failures)",
                             ["source", "outcome"], registry=self.registry)
        self.new_posts = Counter(f"{PREFIX}_posts_new", "New posts stored, by source",
                                 ["source"], registry=self.registry)
        self.duration = Histogram(f"{PREFIX}_poll_duration_seconds",
                                  "Time to fetch a source (download and parse)", ["source"],
                                  buckets=POLL_BUCKETS, registry=self.registry)
        self.registry.register(StoreCollector(store, config))
        self._config = config
        self._server: Any = None

    def polled(self, report: SourceReport) -> None:
        """Count one source job's outcome, new posts and fetch time."""
        outcome = "failed" if report.error else "unchanged" if report.unchanged else "ok"
        self.polls.labels(report.name, outcome).inc()
        self.new_posts.labels(report.name).inc(report.new)
        self.duration.labels(report.name).observe(report.seconds)

    def skipped(self, source: str) -> None:
        """A job that did not poll: the source backs off after failures."""
        self.polls.labels(source, "skipped").inc()

    def serve(self, settings: MetricsSettings) -> None:
        """Serve ``/metrics`` on ``settings.host:port`` from a thread; nothing when no port."""
        if settings.port is None:
            return
        try:
            self._server, _ = start_http_server(settings.port, addr=settings.host,
                                                registry=self.registry)
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(f"cannot serve metrics on {settings.host}:{settings.port} "
                              f"({reason})", self._config().path.name,
                              "metrics.port") from None
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.port,
                 extra={"metrics_port": settings.port})

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class StoreCollector:
    """Series read from the store at each scrape. If the store cannot be read, only
    ``feedback_monitor_store_up 0`` is shown (and the reason logged), not a failed scrape."""

    def __init__(self, store: Store, config: Callable[[], Config]) -> None:
        self.store, self.config = store, config
        self.flags = FlagTally(datetime.now(UTC))

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 when the store could be read")
        try:
            rows = self.store.source_health()
            outbox = self.store.delivery_counts()
            cases = self.store.list_cases(now=now)  # open ones: few, however many resolved
            flags = self.flags.update(self.store, now)
        except SQLAlchemyError as error:
            log.warning("metrics: cannot read the store: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _source_series(assess(self.config().sources, rows, now))
        deliveries = GaugeMetricFamily(f"{PREFIX}_outbox_deliveries", "Outbox rows by state: "
                                       "pending (to send or retry), sent, dead (gave up), "
                                       "silenced, inhibited", labels=["state"])
        for state in sorted(set(outbox) | set(ALWAYS_SHOWN)):
            deliveries.add_metric([state], outbox.get(state, 0))
        yield deliveries
        open_ = GaugeMetricFamily(f"{PREFIX}_cases_open", "Open cases in the outreach queue "
                                  f"({', '.join(OPEN_STATES)})", labels=["severity"])
        overdue = GaugeMetricFamily(f"{PREFIX}_cases_overdue", "Open cases past their first "
                                    "response due time", labels=["severity"])
        for severity in reversed(SEVERITIES):
            mine = [c for c in cases if c.severity == severity]
            open_.add_metric([severity], len(mine))
            overdue.add_metric([severity], sum(c.overdue for c in mine))
        yield from (open_, overdue)
        raised = CounterMetricFamily(f"{PREFIX}_flags", "Posts flagged since this daemon "
                                     "started, by severity (whichever daemon flagged them)",
                                     labels=["severity"])
        for severity in sorted(set(flags) | set(SEVERITIES)):
            raised.add_metric([severity], flags.get(severity, 0))
        yield raised


def _source_series(health: list[Health]) -> Iterator[Metric]:
    state = GaugeMetricFamily(f"{PREFIX}_source_state", "1 for the source's state (ok, quiet: "
                              "nothing new for its quiet_after, broken: failing, never_run), "
                              "0 for the others", labels=["source", "state"])
    success = GaugeMetricFamily(f"{PREFIX}_source_last_success_timestamp_seconds",
                                "When the source was last read without error (Unix time)",
                                labels=["source"])
    failures = GaugeMetricFamily(f"{PREFIX}_source_failures", "Failed polls in a row (the "
                                 "source backs off while this is above 0)", labels=["source"])
    for h in health:
        current = h.state.replace(" ", "_")
        for name in SOURCE_STATES:
            state.add_metric([h.name, name], float(name == current))
        if h.last_success_at is not None:
            success.add_metric([h.name], h.last_success_at.timestamp())
        failures.add_metric([h.name], h.failures)
    yield from (state, success, failures)


class FlagTally:
    """Flags raised since ``start``, by severity, counted from the store's ``flagged_at`` as
    they appear. Each scrape looks back ``FLAG_LOOKBACK`` past the last one (a flag's row
    commits a moment after its time) and remembers which posts it counted there."""

    def __init__(self, start: datetime) -> None:
        self.start, self.mark = start, start
        self.counts: Tally[str] = Tally()
        self.seen: dict[int, datetime] = {}
        self.lock = threading.Lock()  # two scrapes at once must not count a flag twice

    def update(self, store: Store, now: datetime) -> dict[str, int]:
        with self.lock:
            for row in store.flagged(self.mark - FLAG_LOOKBACK, now + timedelta(days=1)):
                when = row["flagged_at"]
                if when >= self.start and row["id"] not in self.seen:
                    self.seen[row["id"]] = when
                    self.counts[row["severity"]] += 1
            self.mark = max(self.mark, now)
            self.seen = {k: v for k, v in self.seen.items() if v >= self.mark - FLAG_LOOKBACK}
            return dict(self.counts)
