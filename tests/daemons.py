"""``monitor daemon`` as a real subprocess, for the tests that watch one work."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def start_daemon(config: Path, log: Path, *flags: str,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """``monitor [flags] daemon --config CONFIG``, its stderr (the log) into ``log``."""
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", *flags, "daemon", "--config",
                             str(config)], stdout=subprocess.DEVNULL, stderr=log.open("w"),
                            cwd=config.parent, env=None if env is None else dict(env))


@contextmanager
def running_daemon(config: Path, log: Path, *flags: str,
                   env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """``start_daemon`` for the block, killed on the way out if the block left it running (an
    assertion failed before it was stopped), so no daemon outlives its test."""
    process = start_daemon(config, log, *flags, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def terminated(process: subprocess.Popen, seconds: float = 15.0) -> int:
    """SIGTERM, as systemd stops a daemon; its exit code, waited for ``seconds`` at most."""
    process.send_signal(signal.SIGTERM)
    return process.wait(seconds)


def wait_for(condition: Callable[[], bool], seconds: float = 60.0, what: str = "",
             logs: Sequence[Path] = ()) -> None:
    """Poll ``condition`` until it holds. The deadline is generous on purpose: it costs nothing
    when the daemon is on time, and a machine busy with other work (a parallel suite, a build)
    can make a daemon's start-up and first retries take several times their usual 2-5 s. On a
    timeout the message ends with the tail of each of ``logs`` (the daemons' own account)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {log.name}:\n" + log.read_text(errors="replace")[-3000:]
                            for log in logs if log.exists())
            raise AssertionError(f"timed out waiting{' for ' + what if what else ''}{tails}")
        time.sleep(0.1)
