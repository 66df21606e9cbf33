"""End to end through the real CLI: `monitor run` routes a pass's flags to a webhook and an
e-mail inbox on 127.0.0.1, retries a receiver that is down, gives up (dead) on one that
refuses, survives kill -9 in the middle of a send, honours silences; config mistakes name
their key, and a webhook URL's token is never shown.

The receivers are real servers: a small HTTP endpoint that records every POST (and answers
as told, or hangs) and an aiosmtpd SMTP server. The feed is the blog-comments fixture
(tests/fixtures/e2e), whose comment-1 and comment-3 of one thread are flagged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import fixture_bytes
from hookserver import Hook
from loopback import LoopbackServer
from smtp import Mailbox, smtp_server

from monitor.cli import main
from monitor.store import Store
from monitor.store.schema import deliveries

V1 = "e2e/comments-v1.xml"
TOKEN = "XoXoSeKrEtT0kEn"  # the credential in a webhook URL: must never be shown

# comment-1 ("disaster") is critical, comment-3 ("I hate it") high, comment-2 not flagged
RULES = """\
rules:
  - {id: disaster, severity: critical, category: backlash, when: {words: [disaster]}}
  - {id: hate-it, severity: high, category: backlash, when: {words: [hate it]}}
"""

# A fourth comment in the same thread, flagged by both RULES and the shipped backlash pack
COMMENT_4 = b"""\
  <item>
    <title>By: Dana</title>
    <link>/our-new-look/#comment-4</link>
    <guid isPermaLink="false">comment-4</guid>
    <dc:creator>Dana</dc:creator>
    <pubDate>Mon, 02 Nov 2026 11:00:00 GMT</pubDate>
    <description><![CDATA[<p>This redesign is a disaster, awful and broken. I hate it.
    Bring back the old layout!</p>]]></description>
  </item>
"""


def with_comment_4() -> bytes:
    return fixture_bytes(V1).replace(b"</channel>", COMMENT_4 + b"</channel>")


# --- an SMTP server --------------------------------------------------------------------------

@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


# --- the CLI ---------------------------------------------------------------------------------

def monitor(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(config: Path) -> Result:
    return monitor("run", "--config", str(config))


def exported(config: Path, what: str) -> list[dict[str, Any]]:
    result = monitor("export", what, "--config", str(config))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def notifications(result: Result) -> str | None:
    """The summary's "notifications: ..." line (None: nothing was sent or tried)."""
    return next((line for line in result.stdout.splitlines()
                 if line.startswith("notifications: ")), None)


def outbox(store_url: str) -> dict[str, int]:
    store = Store(store_url)
    try:
        return store.delivery_counts()
    finally:
        store.close()


def webhook(hook: Hook, **options: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": hook.url(), "timeout": 5, **options}


@pytest.fixture
def feed(server: LoopbackServer) -> str:
    return server.serve("/comments.xml", body=fixture_bytes(V1),
                        headers={"Content-Type": "application/rss+xml"})


@pytest.fixture
def project(make_project, feed: str, sqlite_url: str):
    """A project reading the blog comments with RULES; keyword arguments go to config.yaml."""
    def make(**config: Any) -> Path:
        config.setdefault("store", sqlite_url)
        return make_project([{"name": "blog-comments", "kind": "rss", "url": feed}], RULES,
                            **config)
    return make


# --- 1. a pass notifies each receiver once per thread ----------------------------------------

def test_a_pass_sends_one_notice_per_receiver_and_thread(
        project, hook: Hook, smtp: tuple[Mailbox, int], server: LoopbackServer,
        store_url: str) -> None:
    mailbox, port = smtp
    config = project(
        store=store_url,
        routing={"receivers": ["queue", "hook"],
                 "routes": [{"match": {"severity": ["critical"]},
                             "receivers": ["queue", "hook", "mail"]}]},
        receivers={"hook": webhook(hook),
                   "mail": {"type": "email", "host": "127.0.0.1", "port": port,
                            "security": "none", "sender": "Monitor <monitor@example.com>",
                            "to": ["ops@example.com"], "timeout": 5}})
    result = run(config)
    assert result.exit_code == 0, result.output
    assert "1 sources: 1 ok, 0 failed; 3 new posts, 2 flagged" in result.stdout
    assert notifications(result) == "notifications: 2 sent"  # one for hook, one for mail

    case, = json.loads(monitor("queue", "list", "--json", "--config", str(config)).stdout)
    thread = f"thread:blog-comments:{server.url('/our-new-look/')}"
    assert case["group_key"] == thread and case["posts"] == 2 and case["severity"] == "critical"

    # the webhook: both flagged comments of the thread in one POST, as webhook.py documents
    hit, = hook.hits
    assert hit.status == 200 and hit.path == "/in"
    assert hit.headers["content-type"] == "application/json"
    assert re.fullmatch(r"flag:\d+:hook@[0-9a-f]{32}", hit.key)  # the row's, in this store
    body = hit.json
    assert int(hit.headers["x-monitor-timestamp"]) == body["sent_at"]
    assert abs(body["sent_at"] - time.time()) < 60
    assert "x-monitor-signature" not in hit.headers  # no secret configured
    assert {k: v for k, v in body.items() if k not in ("posts", "sent_at")} == {
        "version": 1, "key": hit.key, "receiver": "hook", "group": thread,
        "severity": "critical", "case_id": case["id"], "reminder": False}
    first, third = body["posts"]
    assert first == {
        "source": "blog-comments", "external_id": "comment-1",
        "url": server.url("/our-new-look/#comment-1"), "author": "Marco", "title": "By: Marco",
        "text": "This redesign is a disaster. Awful, slow and ugly. Bring back the old layout!",
        "published_at": "2026-11-02T08:00:00Z", "severity": "critical",
        "category": "backlash", "tags": [], "rules": ["disaster"],
        "reasons": first["reasons"], "scores": first["scores"]}
    assert first["reasons"] and any("disaster" in r for r in first["reasons"])
    assert set(first["scores"]) == {"compound", "anger", "change", "churn", "complaint",
                                    "angry", "language"}
    assert (third["external_id"], third["severity"], third["rules"]) == (
        "comment-3", "high", ["hate-it"])

    # the mail: critical flags only (comment-1), once, threaded under the case
    message, = mailbox.messages()
    assert mailbox.envelopes[0].rcpt_tos == ["ops@example.com"]
    assert message["Subject"] == (f"[feedback-monitor] [CRITICAL] 1 flagged post in "
                                  f"'By: Marco' (case #{case['id']})")
    row_key, _, store_id = hit.key.partition("@")
    mail_key = f"{row_key.removesuffix(':hook')}:mail@{store_id}"  # comment-1's row for mail
    digest = hashlib.sha256(mail_key.encode()).hexdigest()[:32]
    assert message["Message-ID"] == f"<{digest}.monitor@example.com>"
    assert message["References"] == message["In-Reply-To"] == \
        f"<case-{case['id']}.{store_id}.monitor@example.com>"
    text = message.get_body(("plain",)).get_content()
    assert "This redesign is a disaster" in text and "hate it" not in text

    again = run(config)  # the same feed again: nothing new, nothing sent twice
    assert again.exit_code == 0 and notifications(again) is None
    assert len(hook.hits) == 1 and len(mailbox.envelopes) == 1
    assert outbox(store_url) == {"sent": 3}  # rows: comment-1 hook + mail, comment-3 hook
    assert len(json.loads(monitor("queue", "list", "--json", "--config",
                                  str(config)).stdout)) == 1


# --- 2. a receiver that is down, and one that refuses ----------------------------------------

def test_a_receiver_that_is_down_is_retried_and_delivered_once(project, hook: Hook) -> None:
    hook.status, hook.body = 500, b"upstream down"
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": webhook(hook)}, delivery={"backoff": "0s"})
    first = run(config)
    assert first.exit_code == 0, first.output  # documented: exit 1 is for failed sources only
    assert notifications(first) == "notifications: 1 retry"
    assert len(exported(config, "cases")) == 1  # the queue does not wait for the webhook
    status = monitor("status", "--config", str(config))
    assert status.exit_code == 0 and "deliveries: 2 pending" in status.stdout
    assert "dead:" not in status.stdout

    hook.status = 200  # the receiver is back; the backoff (0s) has passed
    second = run(config)
    assert second.exit_code == 0 and notifications(second) == "notifications: 1 sent"
    failed, delivered = hook.hits
    assert failed.status == 500 and delivered.status == 200
    assert delivered.key == failed.key  # a retry keeps the notice's Idempotency-Key
    assert delivered.posts == failed.posts == ["comment-1", "comment-3"]
    assert [h.key for h in hook.accepted()] == [failed.key]

    third = run(config)
    assert notifications(third) is None and len(hook.hits) == 2
    status = monitor("status", "--config", str(config))
    assert status.exit_code == 0 and "deliveries: 2 sent" in status.stdout


def test_a_pass_honours_the_backoff_of_a_failed_delivery(project, hook: Hook,
                                                         sqlite_url: str) -> None:
    hook.status = 503
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": webhook(hook)}, delivery={"backoff": "1h"})
    assert notifications(run(config)) == "notifications: 1 retry"
    hook.status = 200
    early = run(config)  # a cron pass a minute later: the next attempt is due in an hour
    assert notifications(early) is None and len(hook.hits) == 1
    assert outbox(sqlite_url) == {"pending": 2}


def test_a_refusal_is_dead_until_retried(project, hook: Hook) -> None:
    hook.status, hook.body = 404, b"no such hook"
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": webhook(hook)}, delivery={"max_attempts": 1})
    first = run(config)
    assert first.exit_code == 1, first.output  # a notification died in this pass
    assert notifications(first) == "notifications: 1 dead  (see monitor status)"
    assert "alerts about the monitor itself: 1" in first.stdout  # nowhere to go but status
    status = monitor("status", "--config", str(config))
    assert status.exit_code == 1
    assert "deliveries: 2 dead" in status.stdout
    dead = [line for line in status.stdout.splitlines() if line.startswith("  dead: ")]
    assert len(dead) == 2  # one line per outbox row: comment-1's and comment-3's
    assert all(re.fullmatch(rf"  dead: hook flag:\d+:hook after 1 attempt: "
                            rf"{re.escape(hook.url(''))} answered HTTP 404: no such hook", line)
               for line in dead), dead
    assert "monitor deliveries retry" in status.stdout

    hook.status = 200  # fixed; a pass alone does not bring the dead back, nor alerts again
    quiet = run(config)
    assert quiet.exit_code == 0 and notifications(quiet) is None and len(hook.hits) == 1
    assert "alerts about" not in quiet.stdout
    typo = monitor("deliveries", "retry", "--receiver", "other", "--config", str(config))
    assert typo.exit_code == 2 and "no receiver 'other' (known: queue, hook)" in typo.output
    retried = monitor("deliveries", "retry", "--config", str(config))
    assert retried.exit_code == 0 and retried.stdout == "2 dead deliveries will be sent again\n"
    again = run(config)
    assert notifications(again) == "notifications: 1 sent"
    refused, delivered = hook.hits
    assert delivered.status == 200 and delivered.key == refused.key
    assert delivered.posts == ["comment-1", "comment-3"]
    status = monitor("status", "--config", str(config))
    assert status.exit_code == 0 and "deliveries: 2 sent" in status.stdout
    assert notifications(run(config)) is None and len(hook.hits) == 2


# --- 3. kill -9 in the middle of a send ------------------------------------------------------

def test_kill_9_while_sending_loses_nothing_and_sends_each_notice_once(
        project, hook: Hook, store_url: str, tmp_path: Path) -> None:
    config = project(store=store_url,
                     routing={"receivers": ["queue", "hook"], "group_by": ["author"]},
                     receivers={"hook": webhook(hook, timeout=60)})
    hook.hold()  # the first POST hangs: the pass is in the middle of sending
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config",
                                str(config)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        arrived = hook.arrived.wait(15)
        assert arrived and process.poll() is None, process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    hook.release()  # it hangs up unanswered: that notice was never accepted

    # what the killed pass committed before sending: the flags, the cases, the outbox rows
    assert [p["external_id"] for p in exported(config, "posts") if p["flagged"]] == [
        "comment-1", "comment-3"]
    assert len(exported(config, "cases")) == 2  # grouped by author: Marco's and Evil's
    assert outbox(store_url) == {"pending": 2}
    hung, = hook.hits
    assert hung.status is None

    # A pass now finds both notices still claimed by the dead sender (for ten minutes):
    # it sends nothing, and loses nothing.
    early = run(config)
    assert early.exit_code == 0 and notifications(early) is None and len(hook.hits) == 1

    # The claim's ten minutes have passed (monitor/store/deliveries.py CLAIM).
    store = Store(store_url)
    try:
        with store.engine.begin() as db:
            db.execute(deliveries.update().values(
                claimed_until=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        store.close()

    after = run(config)
    assert after.exit_code == 0, after.output
    assert notifications(after) == "notifications: 2 sent"
    assert outbox(store_url) == {"sent": 2}
    accepted = hook.accepted()
    assert Counter(h.key for h in accepted) == {h.key: 1 for h in accepted}  # each once
    assert len(accepted) == 2 and hung.key in {h.key for h in accepted}  # the same key again
    assert sorted(p for h in accepted for p in h.posts) == ["comment-1", "comment-3"]
    assert notifications(run(config)) is None and len(hook.hits) == 3


def test_a_retried_notice_key_always_carries_the_same_posts(project, hook: Hook,
                                                            server: LoopbackServer) -> None:
    # The receiver processes the notice but answers after the sender's timeout (as when the
    # sender is killed before marking it sent); by the next pass a third comment is flagged.
    hook.delay = 1.5
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": webhook(hook, timeout=0.5)}, delivery={"backoff": "0s"})
    assert notifications(run(config)) == "notifications: 1 retry"
    hook.delay = 0
    server.serve("/comments.xml", body=with_comment_4())
    # the retry with its first posts, then the new comment in a notice of its own, one pass
    assert notifications(run(config)) == "notifications: 2 sent"
    posts_by_key: dict[str, set[tuple[str, ...]]] = {}
    for hit in hook.hits:
        posts_by_key.setdefault(hit.key, set()).add(tuple(hit.posts))
    assert all(len(contents) == 1 for contents in posts_by_key.values()), posts_by_key


# --- 4. silences -----------------------------------------------------------------------------

def test_a_silence_mutes_notices_and_cases_until_it_is_expired(
        project, hook: Hook, server: LoopbackServer) -> None:
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": webhook(hook)})
    added = monitor("silence", "add", "--match", "source=blog-comments", "--for", "1h",
                    "--reason", "known", "--by", "ana", "--config", str(config))
    assert added.exit_code == 0, added.output
    sid = int(re.fullmatch(r"silence (\d+) until \d{4}-\d\d-\d\d \d\d:\d\d UTC\n",
                           added.stdout).group(1))
    listed = monitor("silence", "list", "--config", str(config))
    assert re.search(rf"^\s*{sid}  active \s+until .*  source=blog-comments  \(known, by ana\)$",
                     listed.stdout, re.M), listed.stdout

    result = run(config)
    assert result.exit_code == 0 and "3 new posts, 2 flagged" in result.stdout
    assert notifications(result) is None and hook.hits == []
    flagged = [p["external_id"] for p in exported(config, "posts") if p["flagged"]]
    assert flagged == ["comment-1", "comment-3"]  # stored and flagged all the same
    assert exported(config, "cases") == []
    status = monitor("status", "--config", str(config))
    assert status.exit_code == 0 and "deliveries: 2 silenced" in status.stdout

    expired = monitor("silence", "expire", str(sid), "--config", str(config))
    assert expired.exit_code == 0 and expired.stdout == f"silence {sid} expired\n"
    assert monitor("silence", "list", "--config", str(config)).stdout == "no silences\n"
    assert "expired" in monitor("silence", "list", "--all", "--config", str(config)).stdout
    again = CliRunner().invoke(main, ["silence", "expire", str(sid), "--config", str(config)])
    assert again.exit_code == 1 and f"no active silence {sid}" in again.output

    # muted flags stay muted; a flag raised after the silence ended is sent and queued
    server.serve("/comments.xml", body=with_comment_4())
    later = run(config)
    assert notifications(later) == "notifications: 1 sent"
    hit, = hook.hits
    assert hit.posts == ["comment-4"]
    case, = exported(config, "cases")
    assert [p["external_id"] for p in case["posts"]] == ["comment-4"]


@pytest.mark.parametrize(("matcher", "words"), [
    ("nokey", "bad matcher 'nokey': write KEY=VALUE"),
    ("colour=red", "unknown key 'colour'"),
    ("severity=awful", "unknown severity 'awful'"),
    ("source=", "the value is empty"),
])
def test_a_bad_silence_matcher_exits_2_and_says_why(project, matcher: str,
                                                    words: str) -> None:
    config = project()
    result = CliRunner().invoke(main, ["silence", "add", "--match", matcher, "--for", "2d",
                                       "--reason", "x", "--config", str(config)])
    assert result.exit_code == 2
    assert "--match" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output
    assert monitor("silence", "list", "--all", "--config", str(config)).stdout == \
        "no silences\n"


# --- 5. config mistakes and secrets ----------------------------------------------------------

def check(config: Path) -> Result:
    return CliRunner().invoke(main, ["check", "--config", str(config)])


def run_exit(config: Path) -> int:
    return CliRunner().invoke(main, ["run", "--config", str(config)]).exit_code


def test_routing_to_an_unknown_receiver_names_its_key(project, hook: Hook) -> None:
    config = project(routing={"receivers": ["queue"],
                              "routes": [{"match": {"severity": ["critical"]},
                                          "receivers": ["queue", "mial"]}]},
                     receivers={"hook": webhook(hook)})
    result = check(config)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: config.yaml: routing.routes[0].receivers[1]: unknown receiver 'mial' "
        "(known: queue, hook)"]
    assert run_exit(config) == 2  # a pass refuses the config as well


def test_a_webhook_without_url_names_its_key(project) -> None:
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": {"type": "webhook", "timeout": 5}})
    result = check(config)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: config.yaml: receivers.hook.url: required (or url_file)"]


def test_the_webhook_token_is_never_shown(project, hook: Hook, server: LoopbackServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"/hooks/{TOKEN}?token={TOKEN}"
    hook.status, hook.body = 500, f"no hook at {path} for {TOKEN}".encode()
    config = project(routing={"receivers": ["queue", "hook"]},
                     receivers={"hook": webhook(hook, url=hook.url(path))},
                     delivery={"max_attempts": 2, "backoff": "0s"})
    outputs = [check(config), run(config), monitor("status", "--config", str(config))]
    hook.status = 404  # now refused: dead, and its error listed by status
    outputs += [monitor("-vv", "run", "--config", str(config)),
                CliRunner().invoke(main, ["status", "--config", str(config)])]
    assert len(hook.hits) == 2 and all(TOKEN in h.path for h in hook.hits)
    assert [r.exit_code for r in outputs] == [0, 0, 0, 1, 1]  # the second run: one died
    assert "answered HTTP 404: no hook at" in outputs[4].stdout  # the error is still useful
    assert " after 2 attempts: " in outputs[4].stdout  # one 500, then the 404
    assert "Notification dead" in caplog.text  # the admins' alert, masked like the rest
    shown = "\n".join(r.output for r in outputs) + caplog.text
    assert "hook" in caplog.text  # the log did say something about the receiver
    assert TOKEN not in shown, shown

    env_config = project(routing={"receivers": ["queue", "hook"]},
                         receivers={"hook": {"type": "webhook",
                                             "url": f"ftp://127.0.0.1/{TOKEN}"}})
    bad = check(env_config)
    assert bad.exit_code == 2 and "receivers.hook.url: not an http(s) URL" in bad.output
    assert TOKEN not in bad.output
