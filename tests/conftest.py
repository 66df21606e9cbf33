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


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """pyproject's addopts ask pytest-xdist for workers (`-n auto --dist loadfile`): without
    it (`-p no:xdist`, or not installed) accept its two options and run in this process."""
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist", "without pytest-xdist: -n and --dist are ignored")
        group._addoption("-n", "--numprocesses", dest="numprocesses", default=None)
        group._addoption("--dist", dest="dist", default="no")


@pytest.hookimpl(optionalhook=True)  # xdist's hook: absent under `-p no:xdist`
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` for tests of one file alone (`pytest tests/test_x.py[::name]`): none, run here,
    since `--dist loadfile` would give them to one worker anyway after starting them all;
    otherwise two workers per core, at most eight: much of the suite waits (on daemons it
    started, on loopback servers, on a browser), and a worker per core left the cores half idle
    (on two cores, the whole suite took 381 s with two workers, 342 s with four)."""
    if config.args_source is pytest.Config.ArgsSource.ARGS and \
            len({arg.split("::")[0] for arg in config.args}) == 1 and \
            config.args[0].split("::")[0].endswith(".py"):
        return 0
    return min(8, 2 * (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                       else os.cpu_count() or 1))


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


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each phase's report of a chaos test; under pytest-xdist the workers' reports reach the
    controller through this hook too, so the total below covers every worker."""
    if "chaos" in report.keywords:  # a test's markers are among its keywords
        _chaos_seconds[report.nodeid] = _chaos_seconds.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    if _chaos_seconds and not hasattr(config, "workerinput"):  # the controller, or a serial run
        workers = getattr(config.option, "numprocesses", None) or 0
        spread = f", summed over {workers} workers" if workers > 1 else ""
        terminalreporter.write_line(
            f"chaos suite: {len(_chaos_seconds)} tests in {sum(_chaos_seconds.values()):.1f} s "
            f"(setup, call and teardown{spread}; kept under 60 s)")


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
