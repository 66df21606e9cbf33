"""The command sweep: every command and subcommand, found by walking click's own command tree
(so a command added later is swept without editing this file), run with minimal valid
arguments on three store states (tests/sweep_states.py: empty, full, demo) in several time
zones, with and without --json and with each --format. Whatever the state, the zone or the
arguments, a command ends with a documented exit code (0, 1 or 2) and never a traceback; and
every --help works.

Each command runs in a copy of its state's folder (cwd, so the default config.yaml is used),
so commands that change the store (resolve, rescore, silence add...) leave the states as they
are. Commands without --config (demo, kinds) read no store and run once per zone, in an empty
folder. Skipped: ``daemon`` and ``web`` run until stopped; only their --help is run (test_help).

No network: a proxy on a closed loopback port stands in for the internet (the empty state's
sources are the repo's real ones); the demo's and the full state's sources are on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest
import sweep_states
import yaml
from click.testing import CliRunner, Result

from monitor.cli import main

LONG_RUNNING = {("daemon",), ("web",)}  # run until stopped: only their --help is run
STATES = ("empty", "full", "demo")
ZONES = [  # (TZ, config timezone or None: left as the state has it)
    ("Pacific/Kiritimati", None),  # UTC+14: local "today" is UTC's tomorrow
    ("America/St_Johns", None),  # UTC-3:30
    ("America/St_Johns", "Asia/Kathmandu"),  # +5:45 configured, -3:30 local
]
VALUES: dict[str, Any] = {  # by click parameter name: what a required one (and score's TEXT) is
    "case_id": lambda state: state.case_id,  # given; a callable takes the State
    "silence_id": lambda state: state.silence_id,
    "person_name": "ana",
    "person": "ana",
    "name": "ana",
    "role": "staff",
    "text": "I hate the new editor, bring back the old one",
    "file": sweep_states.LABELLED_FILE,
    "event": sweep_states.EVENT,
    "matchers": "author=troll",
    "lasting": "1h",
    "reason": "swept",
    "names": "acme-community:ana",  # one name: `people link` has nothing to do (exit 1)
    "who": "acme-community:ana",
    "theme": "dark mode",
    "fixed_in": "2.4.1",
    "url": "https://example.test/no-such-post",  # `queue flag`: no stored post there, exit 1
    "files": str(Path(__file__).parent / "fixtures" / "import" / "export-posts.jsonl"),
}


def walk(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    """(path, command) for the group and everything under it, as click itself finds them."""
    yield path, group
    ctx = click.Context(group, info_name=path[-1] if path else "monitor")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"monitor {' '.join((*path, name))} is listed but not found"
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))
        else:
            yield (*path, name), command


def variants(command: click.Command) -> Iterator[tuple[dict[str, str], tuple[str, ...]]]:
    """(the value of each Choice argument, extra options): every choice of each Choice
    argument, each plain or with --json, and with each other --format."""
    picks: list[dict[str, str]] = [{}]
    extras: list[tuple[str, ...]] = [()]
    for param in command.params:
        if isinstance(param, click.Argument) and isinstance(param.type, click.Choice):
            picks = [{**p, param.name: str(c)} for p in picks for c in param.type.choices]
        elif "--json" in param.opts:
            extras.append(("--json",))
        elif "--format" in param.opts and isinstance(param.type, click.Choice):
            extras += [("--format", str(c)) for c in param.type.choices if c != param.default]
    return ((p, e) for p in picks for e in extras)


def arguments(path: tuple[str, ...], command: click.Command, picks: dict[str, str],
              state: Any) -> list[str]:
    """The words after the command: each argument, and each required option, from VALUES."""
    words: list[str] = []
    for param in command.params:
        if param.name in picks:
            words.append(picks[param.name])
            continue
        if param.name not in VALUES:
            if param.required:
                pytest.fail(f"monitor {' '.join(path)}: no value for the required "
                            f"{param.param_type_name} {param.name!r}; add one to VALUES in "
                            "tests/test_sweep.py")
            continue
        value = VALUES[param.name]
        value = str(value(state) if callable(value) else value)
        if isinstance(param, click.Argument):
            words.append(value)
        elif param.required:
            words += [param.opts[0], value]
    return words


COMMANDS = dict(walk())


def _reads_config(command: click.Command) -> bool:
    return any("--config" in param.opts for param in command.params)


def _sweep() -> Iterator[Any]:
    for path, command in COMMANDS.items():
        if isinstance(command, click.Group) or path in LONG_RUNNING:
            continue
        states = STATES if _reads_config(command) else ("-",)
        for picks, extra in variants(command):
            words = " ".join([*path, *picks.values(), *extra])
            for state in states:
                for zone, configured in ZONES:
                    if state == "-" and configured:
                        continue  # no config to set it in
                    zones = f"TZ={zone}" + (f",config={configured}" if configured else "")
                    yield pytest.param(path, picks, extra, state, zone, configured,
                                       id=f"{words}|{state}|{zones}")


@pytest.fixture(scope="session")
def states(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each state's folder, built on first use, once a session."""
    root = tmp_path_factory.mktemp("states")
    builders = {"empty": sweep_states.empty, "full": sweep_states.full,
                "demo": sweep_states.demo}

    @cache
    def get(name: str) -> sweep_states.State | str:  # or why it could not be built
        try:
            with isolated():
                return builders[name](root / name)
        except Exception:  # said once, not rebuilt for each command
            return traceback.format_exc()

    return get


@contextmanager
def isolated() -> Iterator[None]:
    """No network: any request beyond 127.0.0.1 goes to a proxy that is not there, and fails
    at once. No MONITOR_CONFIG from the shell; ana, a team member, is the user."""
    proxy = f"http://127.0.0.1:{sweep_states.closed_port()}"
    with _environ(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, ALL_PROXY=proxy,
                  NO_PROXY="127.0.0.1,localhost", MONITOR_CONFIG=None, MONITOR_USER="ana"):
        yield


@contextmanager
def local_zone(zone: str) -> Iterator[None]:
    """TZ set for this process (time.tzset), and set back afterwards."""
    try:
        with _environ(TZ=zone):
            time.tzset()
            yield
    finally:
        time.tzset()


@contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _set(name, value)
        yield
    finally:
        for name, value in saved.items():
            _set(name, value)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def check(result: Result, words: list[str], caplog: pytest.LogCaptureFixture) -> None:
    """A documented exit code and no traceback, or a message naming the command line."""
    where = f"monitor {' '.join(words)}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tail = "".join(traceback.format_exception(result.exception)[-6:])
        pytest.fail(f"{where} raised:\n{tail}\noutput:\n{result.output[-2000:]}")
    shown = result.output + caplog.text  # log lines go to pytest's handler, not stderr
    assert "Traceback" not in shown, f"{where} printed a traceback:\n{shown[-3000:]}"
    assert result.exit_code in (0, 1, 2), \
        f"{where} exited {result.exit_code}:\n{result.output[-2000:]}"


@pytest.mark.parametrize(("path", "picks", "extra", "state", "zone", "configured"),
                         list(_sweep()))
def test_command(path: tuple[str, ...], picks: dict[str, str], extra: tuple[str, ...],
                 state: str, zone: str, configured: str | None, states: Any,
                 tmp_path: Path, caplog: pytest.LogCaptureFixture,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    command = COMMANDS[path]
    folder = tmp_path / "project"
    if state == "-":
        folder.mkdir()
        found = sweep_states.State("-", folder)
    else:
        found = states(state)
        if isinstance(found, str):
            pytest.fail(f"the {state} state could not be built:\n{found}")
        shutil.copytree(found.folder, folder)
    if configured:
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()),
                                          "timezone": configured}))
    monkeypatch.chdir(folder)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # demo's default folder
    words = [*path, *arguments(path, command, picks, found), *extra]
    with isolated(), local_zone(zone):
        result = CliRunner().invoke(main, words)
    check(result, words, caplog)
    assert state != "full" or result.exit_code != 2, (  # everything is configured there
        f"monitor {' '.join(words)} exited 2 (bad usage or configuration) on the full state: "
        f"is its value in VALUES wrong?\n{result.output[-2000:]}")
    shutil.rmtree(folder)  # kept when the test failed


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p) or "monitor")
                                  for p in COMMANDS])
def test_help(path: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    check(result, [*path, "--help"], caplog)
    assert result.exit_code == 0 and "Usage:" in result.output, result.output
    if isinstance(COMMANDS[path], click.Group):  # a group alone says what it has
        check(CliRunner().invoke(main, list(path)), list(path), caplog)
