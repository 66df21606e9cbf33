"""Prometheus metrics: the daemon as a real subprocess serves /metrics on loopback only when
``metrics.port`` is set (and binds nothing otherwise); the series follow what its jobs did and
what the store holds, counted again from the store, never hard-coded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import fixture_bytes
from daemons import start_daemon, wait_for
from loopback import LoopbackServer
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load
from monitor.health import assess
from monitor.metrics import Metrics
from monitor.pipeline import SourceReport, run_once
from monitor.store import Store

FEED = "e2e/comments-v1.xml"
# comment-1 ("disaster") is critical, comment-3 ("I hate it") high, comment-2 not flagged
RULES = """\
rules:
  - {id: disaster, severity: critical, category: backlash, when: {words: [disaster]}}
  - {id: hate-it, severity: high, category: backlash, when: {words: [hate it]}}
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def polls(found: Samples, source: str) -> float:
    """Polls of ``source`` that fetched (whatever came of it)."""
    return sum(value(found, "feedback_monitor_polls_total", source=source, outcome=o) or 0
               for o in ("ok", "unchanged", "failed"))



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(pid: int) -> list[tuple[str, int]]:
    """The TCP addresses process ``pid`` listens on, read from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                raw = bytes.fromhex(address)
                if width == 4:
                    shown = socket.inet_ntop(socket.AF_INET, raw[::-1])
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    shown = socket.inet_ntop(socket.AF_INET6, words)
                found.append((shown, int(port, 16)))
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


@pytest.fixture
def project(server: LoopbackServer, make_project) -> Callable[..., Path]:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve("/broken.xml", status=500)

    def make(**config: object) -> Path:
        return make_project([
            {"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"},
            {"name": "broken", "kind": "rss", "url": server.url("/broken.xml"),
             "interval": "1s"},
        ], rules=RULES, **config)

    return make


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def run(config: Path) -> subprocess.Popen:
        process = start_daemon(config, tmp_path / "daemon.log", "-v")
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@needs_proc
def test_the_daemon_serves_metrics_on_loopback_after_a_poll(
        project, start, server: LoopbackServer, tmp_path: Path) -> None:
    port = free_port()
    config = project(metrics={"port": port})
    process = start(config)
    url = f"http://127.0.0.1:{port}/metrics"

    def polled_twice() -> bool:
        try:
            found = samples(httpx.get(url, timeout=2).text)
        except httpx.TransportError:
            return False
        return polls(found, "feed") >= 2 and all(
            value(found, "feedback_monitor_polls_total", source="broken", outcome=o)
            for o in ("failed", "skipped"))  # it failed, then backed off

    wait_for(polled_twice)
    assert listening(process.pid) == [("127.0.0.1", port)]  # loopback only, nothing else
    found = samples(httpx.get(url, timeout=2).text)
    store = Store(load(config).store_url)
    try:
        rows, outbox = store.source_health(), store.delivery_counts()
        flags = store.flagged(datetime.now(UTC) - timedelta(hours=1),
                              datetime.now(UTC) + timedelta(hours=1))
        cases = store.list_cases(now=datetime.now(UTC))
    finally:
        store.close()

    assert value(found, "feedback_monitor_store_up") == 1
    assert value(found, "feedback_monitor_posts_new_total", source="feed") == 3
    assert value(found, "feedback_monitor_posts_new_total", source="broken") == 0
    assert value(found, "feedback_monitor_polls_total", source="feed", outcome="failed") is None
    fed = polls(found, "feed")
    assert value(found, "feedback_monitor_poll_duration_seconds_count", source="feed") == fed
    assert 0 < value(found, "feedback_monitor_poll_duration_seconds_sum", source="feed") < 30
    assert value(found, "feedback_monitor_poll_duration_seconds_bucket", source="feed",
                 le="+Inf") == fed

    health = {h.name: h for h in assess(load(config).sources, rows, datetime.now(UTC))}
    assert health["feed"].state == "ok" and health["broken"].state == "broken"
    for name, h in health.items():
        for state in ("ok", "quiet", "broken", "never_run"):
            assert value(found, "feedback_monitor_source_state", source=name,
                         state=state) == (1.0 if state == h.state else 0.0)
        assert value(found, "feedback_monitor_source_failures", source=name) >= \
            (1 if name == "broken" else 0)
    last = value(found, "feedback_monitor_source_last_success_timestamp_seconds",
                 source="feed")
    assert abs(last - health["feed"].last_success_at.timestamp()) < 5  # a poll may land between
    assert value(found, "feedback_monitor_source_last_success_timestamp_seconds",
                 source="broken") is None  # never succeeded

    assert flags  # the fixture's angry comments were flagged
    for severity in ("critical", "high", "medium", "low"):
        expected = sum(f["severity"] == severity for f in flags)
        assert value(found, "feedback_monitor_flags_total", severity=severity) == expected
        assert value(found, "feedback_monitor_cases_open", severity=severity) == \
            sum(c.severity == severity for c in cases)
        assert value(found, "feedback_monitor_cases_overdue", severity=severity) == 0
    for state in ("pending", "dead"):
        assert value(found, "feedback_monitor_outbox_deliveries", state=state) == \
            outbox.get(state, 0)

    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    with pytest.raises(httpx.TransportError):  # the endpoint went with the daemon
        httpx.get(url, timeout=2)


@needs_proc
def test_metrics_are_off_unless_a_port_is_set(project, start, server: LoopbackServer) -> None:
    process = start(project())
    wait_for(lambda: len(server.hits("/feed.xml")) >= 2)
    assert process.poll() is None
    assert listening(process.pid) == []


def test_a_taken_port_stops_the_daemon_with_a_clear_message(project, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = project(metrics={"port": port})
        done = subprocess.run([sys.executable, "-m", "monitor.cli", "daemon", "--config",
                               str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"config.yaml: metrics.port: cannot serve metrics on 127.0.0.1:{port} " \
        "(Address already in use)" in done.stderr


# --- in process: the counters, and the store read at scrape time -------------------------------

def scrape(metrics: Metrics) -> Samples:
    return samples(generate_latest(metrics.registry).decode())


def test_job_counters_and_a_private_registry(project, server: LoopbackServer) -> None:
    config = load(project())
    store = Store(config.store_url)
    try:
        metrics, other = Metrics(store, lambda: config), Metrics(store, lambda: config)
        metrics.polled(SourceReport("feed", "rss", fetched=3, new=3, seconds=0.3))
        metrics.polled(SourceReport("feed", "rss", unchanged=True, seconds=0.05))
        metrics.polled(SourceReport("broken", "rss", error="HTTP 500", seconds=7.0))
        metrics.skipped("broken")
        found = scrape(metrics)
        assert [value(found, "feedback_monitor_polls_total", source=s, outcome=o)
                for s, o in (("feed", "ok"), ("feed", "unchanged"), ("broken", "failed"),
                             ("broken", "skipped"))] == [1, 1, 1, 1]
        assert value(found, "feedback_monitor_posts_new_total", source="feed") == 3
        assert value(found, "feedback_monitor_poll_duration_seconds_bucket", source="broken",
                     le="5.0") == 0
        assert value(found, "feedback_monitor_poll_duration_seconds_bucket", source="broken",
                     le="10.0") == 1
        assert value(scrape(other), "feedback_monitor_polls_total", source="feed",
                     outcome="ok") is None  # each Metrics has its own registry
        assert value(found, "feedback_monitor_source_state", source="feed",
                     state="never_run") == 1
    finally:
        store.close()


def test_flags_are_counted_once_each_from_when_the_daemon_started(
        project, server: LoopbackServer, store_url: str) -> None:
    config = load(project(store=store_url))
    store = Store(config.store_url)
    severities = ("critical", "high", "medium", "low")
    try:
        metrics = Metrics(store, lambda: config)
        assert {value(scrape(metrics), "feedback_monitor_flags_total", severity=s)
                for s in severities} == {0}
        run_once(config, store, ["feed"])
        flags = store.flagged(datetime.now(UTC) - timedelta(hours=1),
                              datetime.now(UTC) + timedelta(hours=1))
        assert flags
        for _ in range(3):  # scraped again and again: each flag counts once
            found = scrape(metrics)
            for severity in severities:
                assert value(found, "feedback_monitor_flags_total", severity=severity) == \
                    sum(f["severity"] == severity for f in flags)
        later = Metrics(store, lambda: config)  # a daemon started after they were flagged
        assert {value(scrape(later), "feedback_monitor_flags_total", severity=s)
                for s in severities} == {0}
    finally:
        store.close()


def test_an_unreadable_store_reports_store_up_0_not_a_failed_scrape(
        project, tmp_path: Path) -> None:
    config = load(project())
    store = Store(config.store_url)
    try:
        metrics = Metrics(store, lambda: config)
        assert value(scrape(metrics), "feedback_monitor_store_up") == 1
        store.engine.dispose()
        Path(config.store_url.removeprefix("sqlite:///")).write_bytes(b"not a database " * 100)
        found = scrape(metrics)
        assert value(found, "feedback_monitor_store_up") == 0
        assert not [k for k in found if k[0].startswith("feedback_monitor_source_")]
    finally:
        store.close()
