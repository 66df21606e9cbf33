"""Log lines: JSON objects a shipper can read (fields, not prose), the classic text line, and
no secret in either: the daemon and a cron pass run as real subprocesses with secrets in their
config, and their whole stderr is searched for them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import fixture_bytes
from daemons import running_daemon, terminated, wait_for
from loopback import LoopbackServer

from monitor import logs
from monitor.cli import main
from monitor.config import load
from monitor.pipeline import SourceReport

FEED = "e2e/comments-v1.xml"



def logged(formatter: logging.Formatter, emit: Callable[[logging.Logger], None]) -> str:
    """What ``emit`` logs through ``formatter`` (on a logger of its own, not the root)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test_logs.{id(out)}")
    logger.propagate, logger.level = False, logging.DEBUG
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


# --- the formats ------------------------------------------------------------------------------

def test_a_json_line_has_time_level_logger_message_and_the_extra_fields() -> None:
    before = datetime.now(UTC)
    line = logged(logs.JsonFormatter(), lambda log: log.info(
        "%s: fetched %d", "feed", 3,
        extra={"source": "feed", "fetched": 3, "seconds": 0.25, "error": None,
               "when": before, "tags": ("a", "b")}))
    entry = json.loads(line)
    assert entry["time"].endswith("Z")
    when = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= when
    assert (when - before).total_seconds() < 5
    assert entry["level"] == "INFO" and entry["logger"].startswith("test_logs.")
    assert entry["message"] == "feed: fetched 3"
    assert (entry["source"], entry["fetched"], entry["seconds"], entry["error"]) == \
        ("feed", 3, 0.25, None)
    assert entry["when"] == str(before) and entry["tags"] == ["a", "b"]
    assert "args" not in entry and "msg" not in entry and "levelno" not in entry


def test_an_exception_is_one_string_field_of_one_line() -> None:
    def crash(log: logging.Logger) -> None:
        try:
            raise RuntimeError("the collector fell over")
        except RuntimeError:
            log.exception("collector for %s crashed", "feed")

    text = logged(logs.JsonFormatter(), crash)
    assert text.count("\n") == 1  # a traceback inside the object, not lines of its own
    entry = json.loads(text)
    assert entry["level"] == "ERROR" and entry["message"] == "collector for feed crashed"
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("RuntimeError: the collector fell over")


def test_the_text_line_is_the_classic_one() -> None:
    line = logged(logs.TextFormatter(), lambda log: log.warning("feed: %s", "HTTP 500"))
    day, clock, level, name, message = line.rstrip("\n").split(" ", 4)
    datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S,%f")
    assert (level, name.startswith("test_logs."), message) == ("WARNING", True, "feed: HTTP 500")


def test_a_servers_escape_sequences_never_reach_the_terminal_log() -> None:
    """An error quotes what a server said: its escape sequences (clear the screen, retitle
    the window) and bidi controls are dropped from the text line; its newlines stay."""
    line = logged(logs.TextFormatter(), lambda log: log.error(
        "feed: HTTP 500 %s", "\x1b[2J\x1b]0;pwned\x07\rBad \u202egateway\nsecond line"))
    assert "pwnedBad gateway\nsecond line" in line  # the sequences' text, harmless, stays
    assert not {"\x1b", "\x07", "\r", "\u202e"} & set(line)


def test_known_secrets_are_masked_in_both_formats() -> None:
    secret, encoded = "pa$$ w0rd/with:odd&chars", "pa%24%24%20w0rd%2Fwith%3Aodd%26chars"
    logs.hide([secret, "short"])  # under MIN_SECRET characters: too ordinary to mask

    def leak(log: logging.Logger) -> None:
        log.warning("connecting with %s (in a URL: https://x/%s)", secret, encoded,
                    extra={"url": f"https://u:{secret}@host/", "nested": {"k": [secret]}})
        try:
            raise ValueError(f"refused {secret}")
        except ValueError:
            log.exception("failed")

    for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
        text = logged(formatter, leak)
        assert secret not in text and encoded not in text, text
        assert text.count(logs.MASK) >= 3
    entry = json.loads(logged(logs.JsonFormatter(), leak).splitlines()[0])
    assert entry["url"] == "https://u:***@host/" and entry["nested"] == {"k": ["***"]}
    assert "short" in logged(logs.TextFormatter(), lambda log: log.info("a short word"))


def test_secret_names_in_the_environment() -> None:
    environ = {"SLACK_WEBHOOK_URL": "https://hooks/a1", "SMTP_PASSWORD": "p1",
               "REDDIT_CLIENT_SECRET": "s1", "DISCOURSE_API_KEY": "k1", "GITHUB_TOKEN": "t1",
               "HOME": "/root", "PATH": "/bin", "PWD": "/srv", "SSH_AUTH_SOCK": "/tmp/a",
               "MONKEYS": "m", "TOKENIZER": "x"}
    assert logs.env_secrets(environ) == {"https://hooks/a1", "p1", "s1", "k1", "t1"}


def test_a_loaded_config_gives_up_every_secret_it_holds(
        make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEED_PART", "feedpart-from-env")
    monkeypatch.setenv("HOOK_ADDRESS", "https://hooks.example/from-env-1234")
    key_file = tmp_path / "hmac.key"
    key_file.write_text("hmac-key-in-a-file\n")
    config = make_project(
        [{"name": "feed", "kind": "rss", "url": "https://example.com/${FEED_PART}/feed.xml"},
         {"name": "forum", "kind": "discourse", "url": "https://forum.example.com",
          "api_key": "inline-api-key"}],
        store="postgresql+psycopg://monitor:db-password-9@127.0.0.1/monitor",
        receivers={"hook": {"type": "webhook", "url": "${HOOK_ADDRESS}",
                            "secret_file": str(key_file),
                            "headers": {"Authorization": "Bearer header-token"}},
                   "mail": {"type": "email", "host": "127.0.0.1", "username": "me",
                            "password": "smtp-password", "sender": "a@example.com",
                            "to": ["b@example.com"]}})
    found = logs.config_secrets(load(config))
    assert found >= {"feedpart-from-env", "https://hooks.example/from-env-1234",
                     "hmac-key-in-a-file\n", "Bearer header-token", "smtp-password",
                     "inline-api-key", "db-password-9"}
    assert "https://forum.example.com" not in found and "127.0.0.1" not in found


def test_a_source_line_is_info_warning_or_error_with_its_numbers_as_fields() -> None:
    read = SourceReport("feed", "rss", fetched=3, new=2, edited=1, flagged=1, seconds=0.25)
    partly = SourceReport("forum", "forum", fetched=5, new=5, seconds=1.5,
                          problems=["page 2: no posts found", "page 3: no posts found"])
    failed = SourceReport("blog", "rss", error="HTTP 500 from https://blog.test/feed",
                          seconds=0.125)
    lines = [json.loads(logged(logs.JsonFormatter(),
                               lambda log, r=r: logs.source_line(log, r, flagged=True)))
             for r in (read, partly, failed)]
    assert [(e["level"], e["message"]) for e in lines] == [
        ("INFO", "feed: fetched 3, new 2, edited 1, flagged 1 in 0.25s"),
        ("WARNING", "forum: fetched 5, new 5, edited 0, flagged 0 in 1.50s; 2 problems: "
                    "page 2: no posts found; page 3: no posts found"),
        ("ERROR", "blog: FAILED after 0.12s: HTTP 500 from https://blog.test/feed")]
    assert {k: lines[0][k] for k in ("source", "fetched", "new", "edited", "flagged",
                                     "unchanged", "seconds", "error", "problems")} == {
        "source": "feed", "fetched": 3, "new": 2, "edited": 1, "flagged": 1,
        "unchanged": False, "seconds": 0.25, "error": None, "problems": []}
    assert lines[2]["error"] == failed.error
    # Flags not counted yet (a pass stores each source before it scores): not claimed as 0.
    early = json.loads(logged(logs.JsonFormatter(),
                              lambda log: logs.source_line(log, read, flagged=False)))
    assert early["message"] == "feed: fetched 3, new 2, edited 1 in 0.25s"
    assert "flagged" not in early


def test_a_cron_pass_logs_each_source_once_and_only_failures_without_v(
        server: LoopbackServer, make_project) -> None:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve("/down.xml", status=500)
    config = make_project([{"name": "feed", "kind": "rss", "url": server.url("/feed.xml")},
                           {"name": "down", "kind": "rss", "url": server.url("/down.xml")}])

    def run(*flags: str) -> list[dict]:
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", *flags, "--log-format", "json", "run",
             "--config", str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "FAILED: HTTP 500" in done.stdout  # the summary
        return [json.loads(line) for line in done.stderr.splitlines()]

    quiet = run()
    assert [(e["level"], e["source"]) for e in quiet] == [("ERROR", "down")]
    assert quiet[0]["message"].startswith("down: FAILED after ")
    verbose = [e for e in run("-v") if "source" in e]
    assert sorted((e["source"], e["level"]) for e in verbose) == [("down", "ERROR"),
                                                                 ("feed", "INFO")]
    feed, = (e for e in verbose if e["source"] == "feed")
    assert feed["message"].startswith("feed: fetched 0, new 0, edited 0 in ")
    assert feed["message"].endswith("s (unchanged)")  # the second pass: a conditional GET
    assert "flagged" not in feed  # counted later, for the whole pass: the summary has them


def test_an_unknown_log_format_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["--log-format", "xml", "check"])
    assert result.exit_code == 2 and "'xml' is not one of 'text', 'json'" in result.output


# --- real processes -----------------------------------------------------------------------------

SECRET_PART = "tok-Zq8v4Lw2"  # in a source URL's path, where URL redaction cannot see it


@pytest.fixture
def project(server: LoopbackServer, make_project) -> Path:
    server.serve("/feed.xml", body=fixture_bytes(FEED))
    server.serve(f"/private/{SECRET_PART}/feed.xml", status=500)
    return make_project([
        {"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), "interval": "1s"},
        {"name": "private", "kind": "rss", "interval": "1s",
         "url": server.base + "/private/${FEED_PART}/feed.xml"},
    ])


def test_the_daemon_logs_one_json_object_per_job_and_never_a_secret(
        project: Path, server: LoopbackServer, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    # FEED_PART is not named like a secret: only the config's ${ENV} scan knows to mask it
    env = {**os.environ, "FEED_PART": SECRET_PART}
    with running_daemon(project, log, "-v", "--log-format", "json", env=env) as process:
        wait_for(lambda: len(server.hits(f"/private/{SECRET_PART}/feed.xml")) >= 2
                 and len(server.hits("/feed.xml")) >= 2)
        time.sleep(0.3)  # the second jobs' lines
        assert terminated(process) == 0
    text = log.read_text()
    assert SECRET_PART not in text, text
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one object
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    # One line per source job, whatever logged it, with every number: as many as fetches.
    about = {name: [e for e in entries if e["message"].startswith(f"{name}: ")]
             for name in ("feed", "private")}
    feed = about["feed"]
    private = [e for e in about["private"] if "skipped" not in e]  # not the back-off skips
    assert len(feed) == len(server.hits("/feed.xml")) >= 2
    assert len(private) == len(server.hits(f"/private/{SECRET_PART}/feed.xml")) >= 2
    for entry in feed + private:
        assert entry["logger"] == "monitor.daemon"
        assert {"fetched", "new", "edited", "flagged", "unchanged", "seconds", "error",
                "problems"} <= entry.keys()
    first = feed[0]
    assert (first["level"], first["fetched"], first["new"], first["edited"], first["error"]) \
        == ("INFO", 3, 3, 0, None)
    assert isinstance(first["seconds"], float) and 0 <= first["seconds"] < 10
    assert isinstance(first["flagged"], int)
    assert first["message"].startswith(f"feed: fetched 3, new 3, edited 0, flagged "
                                       f"{first['flagged']} in ")
    assert feed[1]["new"] == 0  # nothing new the second time
    failed = private[0]  # a failure is an error, naming the source and the error
    assert failed["level"] == "ERROR" and failed["fetched"] == 0
    assert failed["message"].startswith("private: FAILED after ")
    assert "HTTP 500" in failed["error"] and failed["error"] in failed["message"]
    assert f"/private/{logs.MASK}/feed.xml" in failed["error"]  # masked, not just missing
    skips = [e for e in about["private"] if "skipped" in e]  # backing off: planned, not news
    assert all(e["level"] == "INFO" for e in skips)
    assert any(e["message"] == "daemon stopped" for e in entries)
    assert not [e for e in entries if e["logger"].startswith(("httpx", "apscheduler"))
                and e["level"] == "INFO"]


def test_a_cron_pass_never_prints_a_secret_from_the_environment(
        server: LoopbackServer, make_project) -> None:
    server.serve(f"/private/{SECRET_PART}/feed.xml", status=500)
    config = make_project([{"name": "private", "kind": "rss",
                            "url": server.base + "/private/${FEED_PART}/feed.xml"}])
    env = {**os.environ, "FEED_PART": SECRET_PART}
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "--log-format", "json", "run", "--config",
         str(config)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1  # the source failed
    assert "private" in done.stdout and "HTTP 500" in done.stdout  # the summary: text
    assert SECRET_PART not in done.stderr and SECRET_PART not in done.stdout
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    failed, = (e for e in entries if e.get("source") == "private")
    assert failed["level"] == "ERROR" and "HTTP 500" in failed["message"]
    assert f"/private/{logs.MASK}/feed.xml" in failed["message"]
    status = subprocess.run([sys.executable, "-m", "monitor.cli", "status", "--config",
                             str(config)], capture_output=True, text=True, timeout=60, env=env)
    assert status.returncode == 1 and "HTTP 500" in status.stdout  # the stored error, masked
    assert SECRET_PART not in status.stdout and f"/private/{logs.MASK}/" in status.stdout

