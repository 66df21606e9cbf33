"""The installed `monitor` command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import monitor

MONITOR = str(Path(sys.executable).parent / "monitor")


def sh(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MONITOR, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_help_and_version() -> None:
    helped = sh("--help")
    assert helped.returncode == 0
    for command in ("run", "check", "digest", "export", "demo"):
        assert command in helped.stdout
    assert sh("run", "--help").stdout.count("--config") >= 1
    version = sh("--version")
    assert version.returncode == 0 and monitor.__version__ in version.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``monitor demo`` run once, in a folder of its own: (the folder's parent, its stdout)."""
    parent = tmp_path_factory.mktemp("demo")
    result = sh("demo", "--dir", str(parent / "demo"))
    assert result.returncode == 0, result.stderr
    return parent, result.stdout


def test_demo_runs_offline_end_to_end(demo: tuple[Path, str]) -> None:
    tmp_path, stdout = demo
    assert "5 sources: 4 ok, 1 failed" in stdout  # acme-status, broken on purpose
    assert "A second pass found 0 new posts (4 of 5 sources unchanged" in stdout
    told = [json.loads(line)["posts"][0]["external_id"] for line in
            (tmp_path / "demo" / "reports" / "alerts.jsonl").read_text().splitlines()]
    assert told == ["source-broken:acme-status:never", "source-recovered:acme-status:never"]
    html = next((tmp_path / "demo" / "reports").glob("2*.html"))  # the digest, by its date
    assert str(html) in stdout
    text = html.read_text()
    furious, fan = text.find("This redesign is a disaster"), text.find("Love the dark mode")
    assert 0 <= furious < fan  # both are in the digest, the furious comment first, ...
    assert "praise-thanks" in text[fan:]  # ... the fan last, to be thanked (rules/praise.yaml)
    assert "<script>" not in text
    backlash = (tmp_path / "demo" / "reports" / "backlash-new-editor.html").read_text()
    unhappy = backlash.split("What people are unhappy about")[1].split("By source")[0]
    assert "redesign" in unhappy  # the launch's complaints are grouped ...
    assert "rolling out" not in unhappy  # ... and its announcement is not a complaint
    calm, french = text.find("Since the update I can no longer find"), text.find("Depuis la mise")
    assert calm > 0 and french > 0  # a calm change complaint and a French one reach the digest
    assert "1 post not scored (language de: 1)" in text  # the German comment is counted
    exported = sh("export", "cases", "--config", str(tmp_path / "demo" / "config.yaml"))
    assert exported.returncode == 0 and exported.stdout.count("\n") >= 5
    made = sh("backlash", "New editor", "--format", "json",
              "--config", str(tmp_path / "demo" / "config.yaml"))
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert data["posts"]["before"] > 0 and data["posts"]["after"] > 0  # a history before it
    assert data["timezone"] == "Europe/Berlin"
    negative = data["figures"]["negative"]  # the test: worse than before, with a range
    assert negative["change"]["clear"] and negative["change"]["points"] > 0
    assert re.search(r"negative posts are \d+ % \(\d+–\d+ %, 95 % interval; before: \d+ % "
                     r"on the same weekdays, \+\d+ points, clearly worse\)", data["verdict"])


def test_unknown_command_is_a_usage_error() -> None:
    result = sh("frobnicate")
    assert result.returncode == 2 and "No such command" in result.stderr


def test_deliveries_retry_refuses_an_unknown_receiver(make_project, tmp_path: Path) -> None:
    config = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                          receivers={"ops-log": {"type": "file",
                                                 "path": str(tmp_path / "alerts.jsonl")}})
    wrong = sh("deliveries", "retry", "--receiver", "nope", "--config", str(config))
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert "no receiver 'nope' (known: queue, ops-log)" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "will be sent again" not in wrong.stdout
    for name in ("ops-log", "queue"):
        right = sh("deliveries", "retry", "--receiver", name, "--config", str(config))
        assert right.returncode == 0, right.stderr
        assert "0 dead deliveries will be sent again" in right.stdout


def test_silence_add_refuses_a_silence_over_before_it_begins(make_project) -> None:
    config = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}])
    for lasting in ("0s", "0", "0m"):
        refused = sh("silence", "add", "--match", "severity=h*", "--for", lasting,
                     "--reason", "x", "--config", str(config))
        assert refused.returncode == 2, (lasting, refused.stdout, refused.stderr)
        assert "must last longer than 0s" in refused.stderr
    negative = sh("silence", "add", "--match", "severity=h*", "--for", "-1h", "--reason", "x",
                  "--config", str(config))
    assert negative.returncode == 2 and "Traceback" not in negative.stderr
    assert sh("silence", "list", "--all", "--config", str(config)).stdout == "no silences\n"
    assert sh("silence", "add", "--match", "severity=h*", "--for", "1s", "--reason", "x",
              "--config", str(config)).returncode == 0


def _fixed_by(store: Any) -> str | None:
    return store.get_theme("sync-watch")["fixed_by"]


def _linked_by(store: Any) -> str | None:
    from sqlalchemy import select

    from monitor.store.schema import identities

    with store.engine.connect() as db:
        return db.execute(select(identities.c.linked_by)).scalars().first()


def _silenced_by(store: Any) -> str | None:
    found = store.silences(datetime.now(UTC), include_expired=True)
    return found[0]["created_by"] if found else None


WHO = {  # each command that records who did it: its option, and who it recorded (None: none)
    "themes fix": (("themes", "fix", "sync-watch", "--in", "2.4"), "--by", _fixed_by),
    "people link": (("people", "link", "reddit:marta", "discourse:marta"), "--as", _linked_by),
    "silence add": (("silence", "add", "--match", "severity=high", "--for", "1h", "--reason",
                     "x"), "--by", _silenced_by),
}


@pytest.mark.parametrize("command", sorted(WHO))
def test_who_did_it_is_refused_when_blank_padded_or_holding_control_characters(
        make_project, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    from monitor import config as configuration
    from monitor.store import Store
    from monitor.store.themes import FoundTheme

    monkeypatch.delenv("MONITOR_USER", raising=False)
    config = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}])
    args, option, recorded = WHO[command]
    store = Store(configuration.load(config).store_url)
    try:
        store.save_themes([FoundTheme("sync-watch", "Sync / watch", ())], datetime.now(UTC))
        for name in (" ", " ana", "ana ", "a\nb", "a\x1bb"):
            refused = sh(*args, option, name, "--config", str(config))
            assert refused.returncode == 2, (name, refused.stdout, refused.stderr)
            assert f"'{option}'" in refused.stderr and "name cannot" in refused.stderr
            assert "Traceback" not in refused.stderr and recorded(store) is None
        monkeypatch.setenv("MONITOR_USER", "ana\t")  # the default, from the environment
        refused = sh(*args, "--config", str(config))
        assert refused.returncode == 2 and "$MONITOR_USER" in refused.stderr, refused.stderr
        assert recorded(store) is None  # nothing stored by any refusal
        done = sh(*args, option, "ana", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert recorded(store) == "ana"
    finally:
        store.close()

def test_demo_runs_again_in_its_own_folder_but_never_over_a_project(
        demo: tuple[Path, str], tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(demo[0] / "demo", folder)  # a demo's folder, as its first run left it
    again = sh("demo", "--dir", str(folder))
    assert again.returncode == 0, again.stderr
    assert "5 sources: 4 ok, 1 failed" in again.stdout  # the same story, from the start
    assert "A second pass found 0 new posts (4 of 5 sources unchanged" in again.stdout
    assert len((folder / "reports" / "alerts.jsonl").read_text().splitlines()) == 2
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("store: sqlite:///mine.db\n")
    refused = sh("demo", "--dir", str(project))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"error: {project}: holds a project that is not a demo's" in refused.stderr
    assert sorted(p.name for p in project.iterdir()) == ["config.yaml"]
    assert (project / "config.yaml").read_text() == "store: sqlite:///mine.db\n"
