"""Wall-clock deadlines: one request, one source's pass, the whole pass, and the store.

httpx's timeouts are per socket operation, so a server that sends its headers a byte at a time
is never "timed out"; these tests use raw socket servers on 127.0.0.1 that do exactly that
(each gives up after a few seconds, so a client without deadlines fails slowly, not forever).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from loopback import LoopbackServer

from monitor.cli import main
from monitor.collectors.http import DeadlineExceeded, HttpClient, deadline
from monitor.errors import StoreError

pytestmark = pytest.mark.chaos

AGENT = "feedback-monitor-tests/1.0 (+https://example.invalid/tests)"


class Drip:
    """A TCP server on 127.0.0.1 that reads a request, then sends ``head`` (then ``body``) one
    byte every ``every`` seconds, for at most ``limit`` seconds per connection; ``silent``:
    accept and never send a byte (a hung PostgreSQL, say)."""

    def __init__(self, head: bytes = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000,
                 body: bytes = b"", every: float = 0.1, limit: float = 5.0,
                 silent: bool = False) -> None:
        self.head, self.body, self.every, self.limit, self.silent = head, body, every, limit, \
            silent
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        started = time.monotonic()
        with conn:
            try:
                if self.silent:
                    self.closed.wait(self.limit)
                    return
                conn.recv(65536)
                if self.body:  # headers at once, then the body a byte at a time
                    conn.sendall(self.head)
                    payload = self.body
                else:
                    payload = self.head
                for byte in payload:
                    if self.closed.is_set() or time.monotonic() - started > self.limit:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.every)
            except OSError:
                return  # the client hung up: what the tests want

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def drip() -> Iterator[type[Drip]]:
    made: list[Drip] = []

    def make(**options: object) -> Drip:
        server = Drip(**options)  # type: ignore[arg-type]
        made.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


def test_headers_a_byte_at_a_time_end_at_the_request_deadline(drip) -> None:
    server = drip()
    started = time.monotonic()
    with HttpClient(AGENT, read_timeout=2, total_timeout=1.0, retries=2,
                    sleep=lambda _: None) as client, \
            pytest.raises(DeadlineExceeded, match="deadline exceeded: no complete answer") \
            as caught:
        client.get(server.url)
    assert time.monotonic() - started < 2.0
    assert caught.value.retryable          # the next pass may try again...
    assert server.connections == 1         # ...but not this one: as slow a second later


def test_a_slow_body_is_cut_at_the_deadline_and_not_retried(drip) -> None:
    server = drip(head=b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", body=b"x" * 1000)
    started = time.monotonic()
    with HttpClient(AGENT, read_timeout=2, total_timeout=1.0, retries=2,
                    sleep=lambda _: None) as client, pytest.raises(DeadlineExceeded):
        client.get(server.url)
    assert time.monotonic() - started < 2.0 and server.connections == 1


def test_the_source_deadline_covers_retries(server: LoopbackServer) -> None:
    url = server.serve("/down", status=503)
    started = time.monotonic()
    with HttpClient(AGENT, retries=5, backoff=0.4) as client, \
            deadline(time.monotonic() + 1.0), \
            pytest.raises(DeadlineExceeded, match="no time left to retry"):
        client.get(url)  # waits 0.4 + 0.8 would pass the deadline: stops after 0.4
    assert time.monotonic() - started < 1.0
    assert len(server.hits("/down")) == 2


def test_the_source_deadline_cuts_a_request_short(drip) -> None:
    server = drip()
    started = time.monotonic()
    with HttpClient(AGENT, read_timeout=5, total_timeout=30, retries=2) as client, \
            deadline(time.monotonic() + 1.0), \
            pytest.raises(DeadlineExceeded, match="the source ran out of time"):
        client.get(server.url)
    assert time.monotonic() - started < 2.0 and server.connections == 1


def run(config: Path) -> tuple[str, float, int]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", "--config", str(config)], catch_exceptions=False)
    return result.output, time.monotonic() - started, result.exit_code


def line(output: str, name: str) -> str:
    return next(row for row in output.splitlines() if row.startswith(name + " "))


def test_a_stalled_source_fails_at_the_source_deadline(drip, server: LoopbackServer,
                                                       make_project) -> None:
    slow = drip(limit=8.0)
    good = server.serve("/feed", body=(Path(__file__).parent / "fixtures" / "e2e" /
                                       "comments-v1.xml").read_bytes())
    config = make_project([{"name": "stalled", "kind": "rss", "url": slow.url},
                           {"name": "fine", "kind": "rss", "url": good}],
                          http={"source_deadline": 1.5, "total_timeout": 30, "read_timeout": 5})
    output, seconds, code = run(config)
    assert seconds < 6.0, output
    assert "FAILED: deadline exceeded" in line(output, "stalled")
    assert "FAILED" not in line(output, "fine") and code == 1


def test_the_pass_deadline_names_stalled_sources_and_frees_the_pass(
        drip, server: LoopbackServer, make_project) -> None:
    slow = drip(limit=8.0)
    good = server.serve("/feed", body=(Path(__file__).parent / "fixtures" / "e2e" /
                                       "comments-v1.xml").read_bytes())
    sources = [{"name": f"stalled-{n}", "kind": "rss", "url": slow.url} for n in range(3)]
    config = make_project([*sources, {"name": "fine", "kind": "rss", "url": good}],
                          concurrency=2,
                          http={"pass_deadline": 1.5, "source_deadline": 30,
                                "total_timeout": 30, "read_timeout": 5})
    output, seconds, code = run(config)
    assert seconds < 6.0, output
    failed = [n for n in range(3) if "FAILED: deadline exceeded" in line(output, f"stalled-{n}")]
    assert failed == [0, 1, 2] and code == 1
    again, seconds, _ = run(config)  # the pass lock was let go: the next pass runs at once
    assert seconds < 6.0 and "FAILED: deadline exceeded" in line(again, "stalled-0")


def test_a_silent_postgresql_fails_the_store_within_the_connect_timeout(
        drip, monkeypatch: pytest.MonkeyPatch) -> None:
    """It accepts the connection and never answers: without a connect timeout, forever."""
    import monitor.store as store_module

    monkeypatch.setattr(store_module, "PG_CONNECT_TIMEOUT", 2, raising=False)
    silent = drip(silent=True, limit=30.0)
    port = silent.sock.getsockname()[1]
    outcome: list[BaseException | None] = []

    def open_store() -> None:
        try:
            store_module.Store(f"postgresql+psycopg://monitor@127.0.0.1:{port}/monitor")
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 (handed to the test thread)
            outcome.append(error)

    started = time.monotonic()
    opener = threading.Thread(target=open_store, daemon=True)
    opener.start()
    opener.join(8.0)
    assert outcome, "Store() still hangs on a silent server"
    assert isinstance(outcome[0], StoreError) and "cannot open the store" in str(outcome[0])
    assert time.monotonic() - started < 5.0


def test_postgresql_sessions_get_a_statement_timeout_and_keep_url_options() -> None:
    from conftest import pg_schema
    from sqlalchemy import text

    from monitor.store import PG_STATEMENT_TIMEOUT, Store

    with pg_schema() as url:  # its URL sets options=-csearch_path=...
        store = Store(url)
        try:
            with store.engine.connect() as db:
                assert db.execute(text("SHOW statement_timeout")).scalar() == \
                    PG_STATEMENT_TIMEOUT
                assert db.execute(text("SHOW search_path")).scalar().startswith("t_")
        finally:
            store.close()


def test_a_collector_stuck_outside_the_http_client_is_left_behind(
        server: LoopbackServer, make_project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin (or praw) that never returns: the pass names it at its source deadline and
    goes on; the other sources are stored."""
    import monitor.pipeline as pipeline
    from monitor.collectors.rss import RssCollector

    release = threading.Event()

    class Stuck(RssCollector):
        def collect(self, cursor):  # type: ignore[no-untyped-def]
            if self.name == "stuck":
                release.wait(20)
            return super().collect(cursor)

    monkeypatch.setattr(pipeline, "collector_class", lambda kind: Stuck)
    good = server.serve("/feed", body=(Path(__file__).parent / "fixtures" / "e2e" /
                                       "comments-v1.xml").read_bytes())
    config = make_project([{"name": "stuck", "kind": "rss", "url": good},
                           {"name": "fine", "kind": "rss", "url": good}],
                          http={"source_deadline": 1})
    try:
        output, seconds, code = run(config)
    finally:
        release.set()
    assert seconds < 6.0, output
    assert "FAILED: deadline exceeded: still running after 1s" in line(output, "stuck")
    assert "ok" in line(output, "fine") and code == 1
