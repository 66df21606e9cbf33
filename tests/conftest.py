"""Shared fixtures: a loopback HTTP server, recorded feeds, a project folder, a store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hookserver import Hook
from loopback import LoopbackServer
from sqlalchemy import create_engine, text

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def _running_server() -> Iterator[LoopbackServer]:
    running = LoopbackServer()
    yield running
    running.close()


@pytest.fixture
def server(_running_server: LoopbackServer) -> LoopbackServer:
    """The loopback server, emptied of routes and recorded requests for each test."""
    _running_server.reset()
    return _running_server


def fixture_bytes(relative: str) -> bytes:
    """A recorded response from tests/fixtures (see tests/fixtures/README.md)."""
    return (FIXTURES / relative).read_bytes()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as db:
            db.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any failure means: skip, and say why
        return f"PostgreSQL not reachable at {PG_URL}: {type(error).__name__}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """The URL of a fresh schema on the local PostgreSQL, dropped afterwards; skips the test
    (or the module's tests) when PostgreSQL is unreachable."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_URL)
    with engine.begin() as db:
        db.execute(text(f"create schema {schema}"))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as db:
            db.execute(text(f"drop schema {schema} cascade"))
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the local PostgreSQL for one test."""
    with pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on SQLite and, when reachable, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    return request.getfixturevalue("pg_url")


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_project(tmp_path: Path):
    """Write a project folder (config.yaml, sources/, rules/) and return its config path.

    Sources are given as dicts; rules default to the shipped backlash pack (rules/backlash.yaml:
    the other packs would also flag the Guardian's news, which these tests are not about).
    HTTP settings are tight so failure tests stay fast.
    """
    import shutil

    import yaml

    def make(sources: list[dict], rules: str | None = None, **config: object) -> Path:
        folder = tmp_path / "project"
        (folder / "sources").mkdir(parents=True, exist_ok=True)
        (folder / "rules").mkdir(exist_ok=True)
        http = {"retries": 0, "backoff": 0.01, "read_timeout": 2, "connect_timeout": 2,
                "total_timeout": 10, **config.pop("http", {})}  # type: ignore[dict-item]
        settings = {"store": "sqlite:///monitor.db", "http": http, **config}
        (folder / "config.yaml").write_text(yaml.safe_dump(settings))
        (folder / "sources" / "test.yaml").write_text(yaml.safe_dump({"sources": sources}))
        if rules is None:
            shutil.copy(REPO / "rules" / "backlash.yaml", folder / "rules")
        else:
            (folder / "rules" / "test.yaml").write_text(rules)
        return folder / "config.yaml"

    return make


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A webhook endpoint on 127.0.0.1 that records every POST (see hookserver.py)."""
    endpoint = Hook()
    yield endpoint
    endpoint.release()
    endpoint.httpd.shutdown()
    endpoint.httpd.server_close()




# --- the chaos suite's own clock (issue 15: it must stay under 60 s in CI) ---------------------

_chaos_seconds: dict[str, float] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if item.get_closest_marker("chaos") is not None:
        _chaos_seconds[item.nodeid] = _chaos_seconds.get(item.nodeid, 0.0) + call.duration
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _chaos_seconds:
        terminalreporter.write_line(
            f"chaos suite: {len(_chaos_seconds)} tests in {sum(_chaos_seconds.values()):.1f} s "
            "(setup, call and teardown; kept under 60 s)")


# --- cheap password hashes where accounts are only a way in --------------------------------------

CHEAP_HASHES = ("test_web", "test_web_leads", "test_web_browser", "test_followup",
                "test_themes_tracking", "test_learn")
"""Test modules that make accounts only to log in: argon2's defaults cost about 0.15 s a hash,
so these use the cheapest parameters (tests/test_users.py checks the real ones)."""


def cheap_hasher():
    """argon2 at its cheapest: for accounts made before a test's own fixtures run (a module's)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def _cheap_password_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    if request.module.__name__ in CHEAP_HASHES:
        from monitor import accounts

        monkeypatch.setattr(accounts, "HASHER", cheap_hasher())
    yield
