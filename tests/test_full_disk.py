"""A disk that fills mid-pass: `monitor run` says so in one line and exits 1, no traceback;
once there is room again the next pass stores everything, nothing lost or doubled.

The full disk is real to SQLite: the pass runs under a file-size limit (RLIMIT_FSIZE; Python
ignores SIGXFSZ, so a write past it fails with EFBIG, as a write to a full disk fails)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import fixture_bytes
from loopback import LoopbackServer

from monitor.cli import main

pytestmark = pytest.mark.chaos

GUARDIAN = "feeds/rss-parser/guardian.rss"


def monitor(config: Path, *args: str, max_file: int | None = None) -> subprocess.CompletedProcess:
    """The pass in a process of its own, under the file-size limit when one is given."""
    def limit() -> None:
        if max_file is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file, max_file))
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)


def asked(config: Path, *args: str) -> Result:
    """A command that only reads the store, in this process (a second's start-up saved)."""
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def test_a_full_disk_mid_pass_is_one_line_and_loses_nothing(
        server: LoopbackServer, make_project) -> None:
    server.serve("/guardian.rss", body=fixture_bytes(GUARDIAN))
    config = make_project([{"name": "guardian", "kind": "rss",
                            "url": server.url("/guardian.rss")}])
    assert asked(config, "status").exit_code == 0  # the store made, almost empty
    full = monitor(config, "run", max_file=40_000)  # the WAL fills up mid-pass
    assert full.returncode == 1, full.stdout + full.stderr
    assert "Traceback" not in full.stderr + full.stdout
    assert full.stderr.startswith("error: OperationalError: ") and "rolled back" in full.stderr
    assert len(full.stderr.splitlines()) == 1, full.stderr  # SQLite: "disk I/O error"
    told = asked(config, "status")  # it used to say ok
    assert told.exit_code == 1 and "UNFINISHED: the pass started " in told.stdout, told.stdout
    again = monitor(config, "run")
    assert again.returncode == 0, again.stdout + again.stderr
    assert asked(config, "status").exit_code == 0  # the pass that ended is the last word
    posts = [json.loads(line) for line in asked(config, "export", "posts").stdout.splitlines()]
    assert len(posts) == 55 == len({p["external_id"] for p in posts})
