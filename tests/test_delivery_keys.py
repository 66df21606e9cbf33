"""A notice's keys are unique to the store that sends it: the e-mail Message-ID and the case
thread (References, In-Reply-To), and the webhook's Idempotency-Key, differ between two
installations (or a database made anew) for the same outbox row, and stay the same when one
store sends a notice again. Against a real aiosmtpd server and a webhook on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from filing import save_scores
from hookserver import Hook
from smtp import Mailbox, smtp_server

from monitor.model import Fetch, Flag, Post, Routing, Score
from monitor.outbox import RetryPolicy, deliver_due
from monitor.receivers import build_receiver
from monitor.store import Store
from monitor.store.schema import deliveries

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
FLAG = Flag("critical", ("r",), ("r: furious",), "backlash")
SCORE = Score(-0.8, 0.0, 0.5, 0.5, anger=0.7, angry=True)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


def installation(path: Path, receiver: str) -> Store:
    """A store of its own with one flagged post routed to ``receiver``: every installation
    starts at post 1 and case 1, so the outbox row's key is the same in each."""
    store = Store(f"sqlite:///{path}")
    post = Post("blog", "a", "https://x.test/a", "ann", "Our new look", "a disaster", NOW,
                thread_id="t1")
    store.save_fetch("blog", "rss", Fetch((post,), None), NOW)
    stored, = store.posts_to_score()
    save_scores(store, [(stored, SCORE, FLAG)], NOW,
                routes={stored.id: Routing(("queue", receiver), "thread:blog:t1")})
    return store


def resend(store: Store) -> None:
    """As after a crash between the receiver accepting and the row being marked: due again."""
    with store.engine.begin() as db:
        db.execute(deliveries.update().values(state="pending", claimed_until=None,
                                              sent_at=None))


def mail(port: int) -> Any:
    return build_receiver("mail", {"type": "email", "host": "127.0.0.1", "port": port,
                                   "security": "none", "sender": "monitor@example.com",
                                   "to": ["ops@example.com"]})


def test_two_installations_never_share_a_message_id_or_a_case_thread(
        tmp_path: Path, smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    for name in ("first", "second"):
        with installation(tmp_path / f"{name}.db", "mail") as store:
            assert deliver_due(store, {"mail": mail(port)}, NOW) == {"sent": 1}
    first, second = mailbox.messages()
    assert first["Message-ID"] != second["Message-ID"]  # Gmail would drop the second
    assert first["References"] != second["References"]  # nor thread two unrelated cases
    for message in (first, second):
        assert message["In-Reply-To"] == message["References"]
        assert message["References"].startswith("<case-1.")


def test_a_notice_sent_again_keeps_its_message_id_and_thread(
        tmp_path: Path, smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    with installation(tmp_path / "monitor.db", "mail") as store:
        assert deliver_due(store, {"mail": mail(port)}, NOW) == {"sent": 1}
        resend(store)
        assert deliver_due(store, {"mail": mail(port)}, NOW + timedelta(minutes=11)) == \
            {"sent": 1}
        store_id = store.store_id()
    first, again = mailbox.messages()
    assert first["Message-ID"] == again["Message-ID"]  # the far end drops the duplicate
    assert first["References"] == again["References"] == \
        f"<case-1.{store_id}.monitor@example.com>"


def test_the_idempotency_key_is_unique_per_store_and_kept_on_a_retry(
        tmp_path: Path, hook: Hook) -> None:
    receiver = build_receiver("hook", {"type": "webhook", "url": hook.url(), "timeout": 5})
    hook.status = 503
    with installation(tmp_path / "first.db", "hook") as store:
        assert deliver_due(store, {"hook": receiver}, NOW, RetryPolicy(backoff=60)) == \
            {"retry": 1}
        hook.status = 200
        assert deliver_due(store, {"hook": receiver}, NOW + timedelta(minutes=2)) == \
            {"sent": 1}
        first_id = store.store_id()
    with installation(tmp_path / "second.db", "hook") as store:
        assert deliver_due(store, {"hook": receiver}, NOW) == {"sent": 1}
    failed, retried, other = hook.hits
    assert failed.key == retried.key == retried.json["key"] == f"flag:1:hook@{first_id}"
    assert other.key != failed.key and other.key.startswith("flag:1:hook@")
