"""Receivers against real servers on 127.0.0.1: an aiosmtpd SMTP server and a small HTTP
server that records POSTs and answers as told (200, 5xx, 429, 4xx, a redirect, too slowly)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from smtp import Mailbox, smtp_server

from monitor.errors import ConfigError, DeliveryError
from monitor.model import Flag, FlaggedPost, Notice, Post, Score
from monitor.receivers import Receiver, build_receiver, secret, summary
from monitor.receivers.email import EmailReceiver
from monitor.receivers.slack import MAX_BLOCKS, MAX_TEXT, SlackReceiver
from monitor.receivers.webhook import WebhookReceiver, sign, verify

TOKEN = "XoXoSeKrEtT0kEn"  # the credential part of a webhook URL: must never be shown


def flagged(n: int = 0, text: str = "This new editor is awful, I want my money back",
            severity: str = "high", reasons: tuple[str, ...] = ("angry about the change",),
            url: str | None = None) -> FlaggedPost:
    post = Post(source="forum", external_id=f"p{n}", url=url or f"https://forum.test/t/7/{n}",
                author=f"user{n}", title="Meet the new editor", text=text,
                published_at=datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
                thread_id="7", parent_id="1" if n else None)
    score = Score(compound=-0.81234, pos=0.0, neu=0.4, neg=0.6, anger=0.7, change=0.9,
                  churn=0.5, angry=True, language="en")
    return FlaggedPost(post, score, Flag(severity, ("angry-change",), reasons, "editor", ("ui",)))


def notice(*items: FlaggedPost, key: str = "flag:12:ops", case_id: int | None = 12) -> Notice:
    return Notice(key=key, receiver="ops", group="thread:forum:7",
                  items=items or (flagged(),), case_id=case_id)


# --- a recording HTTP server -------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """Records every POST and answers with ``reply``."""

    def __init__(self) -> None:
        self.reply, self.requests = Reply(), []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.requests.append(Request(self.path, dict(self.headers.items()), body))
                reply = recorder.reply
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out, as the test wanted

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture(scope="module")
def _recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.httpd.shutdown()
    recorder.httpd.server_close()


@pytest.fixture
def http(_recorder: Recorder) -> Recorder:
    _recorder.reply, _recorder.requests = Reply(), []
    return _recorder


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slack(http: Recorder, **options: Any) -> SlackReceiver:
    url = http.url(f"/services/T0/B0/{TOKEN}")
    return build_receiver("slack-urgent", {"type": "slack", "webhook_url": url,
                                           "timeout": 0.5, **options})  # type: ignore[return-value]


def webhook(http: Recorder, **options: Any) -> WebhookReceiver:
    return build_receiver("hook", {"type": "webhook", "url": http.url(f"/in?token={TOKEN}"),
                                   "timeout": 0.5, **options})  # type: ignore[return-value]


# --- build_receiver and secrets -----------------------------------------------------------

def test_build_receiver_finds_each_type_through_its_entry_point(http: Recorder) -> None:
    assert isinstance(slack(http), SlackReceiver)
    assert isinstance(webhook(http), WebhookReceiver)
    email = build_receiver("mail", {"type": "email", "host": "127.0.0.1",
                                    "sender": "Monitor <m@example.com>", "to": ["a@example.com"]})
    assert isinstance(email, EmailReceiver) and isinstance(email, Receiver)


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        build_receiver("x", {"type": "pager"})
    assert caught.value.key == "receivers.x.type"
    message = caught.value.message  # other built-in types may come between these
    assert "known: email, " in message and all(t in message for t in (" slack", " webhook"))


@pytest.mark.parametrize(("spec", "key", "words"), [
    ({}, "receivers.slack-urgent.webhook_url", "required"),
    ({"webhook_url": "https://h.test/x", "webhook_url_file": "/run/secrets/slack"},
     "receivers.slack-urgent.webhook_url", "not both"),
    ({"webhook_url": "ftp://h.test/x"}, "receivers.slack-urgent.webhook_url", "http"),
    ({"webhook_url": "https://h.test/x", "max_posts": 0}, "receivers.slack-urgent.max_posts",
     "greater than"),
])
def test_slack_option_mistakes_name_the_key(spec: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_receiver("slack-urgent", {"type": "slack", **spec})
    assert caught.value.key == key and words in caught.value.message
    assert "h.test" not in str(caught.value)


def test_all_mistakes_are_gathered() -> None:
    with pytest.raises(ConfigError) as caught:
        build_receiver("mail", {"type": "email", "host": "h", "to": [], "colour": "red",
                                "security": "tls"})
    keys = {p.key for p in caught.value.problems}
    assert keys == {f"receivers.mail.{k}" for k in ("sender", "to", "colour", "security")}


@pytest.mark.parametrize(("spec", "words"), [
    ({"username": "bob"}, "username needs password"),
    ({"password": "pw"}, "password needs username"),
    ({"to": ["not an address"]}, "not an e-mail address"),
])
def test_email_option_mistakes(spec: dict[str, Any], words: str) -> None:
    base = {"type": "email", "host": "h", "sender": "m@example.com", "to": ["a@example.com"]}
    with pytest.raises(ConfigError, match=words):
        build_receiver("mail", base | spec)


def test_reserved_name_and_bad_header_are_refused() -> None:
    with pytest.raises(ConfigError, match="reserved"):
        build_receiver("queue", {"type": "webhook", "url": "https://h.test"})
    with pytest.raises(ConfigError, match="set by the receiver"):
        build_receiver("hook", {"type": "webhook", "url": "https://h.test",
                                "headers": {"Idempotency-Key": "x"}})


def test_secret_comes_inline_or_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("  from-file\n")
    assert secret("inline", None, "key") == "inline"
    assert secret(None, tmp_path / "s", "key") == "from-file"
    for file in (tmp_path / "missing", tmp_path):
        with pytest.raises(DeliveryError, match="cannot read the key") as caught:
            secret(None, file, "key")
        assert not caught.value.retryable
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(DeliveryError, match="empty"):
        secret(None, tmp_path / "empty", "key")


def test_no_secret_in_repr_str_or_errors(http: Recorder) -> None:
    receivers = [slack(http), webhook(http, secret="hmac-" + TOKEN,
                                      headers={"Authorization": "Bearer " + TOKEN})]
    for receiver in receivers:
        for shown in (str(receiver), repr(receiver), str(receiver.options),
                      repr(receiver.options), str(receiver.options.model_dump())):
            assert TOKEN not in shown
    messages = []
    for reply in (Reply(500, f"bad token {TOKEN} at /services/T0/B0/{TOKEN}".encode()),
                  Reply(302, headers={"Location": f"/x/{TOKEN}"}), Reply(delay=1.0)):
        http.reply = reply
        for receiver in receivers:
            with pytest.raises(DeliveryError) as caught:
                receiver.send(notice())
            messages.append(str(caught.value))
    dead = build_receiver("s", {"type": "slack", "webhook_url":
                                f"http://127.0.0.1:{closed_port()}/services/{TOKEN}"})
    with pytest.raises(DeliveryError) as caught:
        dead.send(notice())  # type: ignore[attr-defined]
    messages.append(str(caught.value))
    assert all(TOKEN not in m for m in messages), messages
    assert "127.0.0.1" in messages[0]


def test_summary_reads_as_one_line() -> None:
    three = notice(flagged(0, severity="low"), flagged(1, severity="critical"), flagged(2))
    assert summary(three) == "[CRITICAL] 3 flagged posts in 'Meet the new editor' (case #12)"
    assert summary(notice(case_id=None)) == "[HIGH] 1 flagged post in 'Meet the new editor'"


# --- Slack -------------------------------------------------------------------------------

def test_slack_posts_escaped_blocks(http: Recorder) -> None:
    evil = "<!channel> & <script>alert(1)</script> *bold*"
    slack(http).send(notice(flagged(0, text=evil, url="https://forum.test/a?b=1&c=|2>")))
    (request,) = http.requests
    assert request.path == f"/services/T0/B0/{TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(request.body)
    assert sent["text"].startswith("[HIGH] 1 flagged post")
    header, context, post = sent["blocks"]
    assert header["type"] == "header" and "case #12" in header["text"]["text"]
    assert "case #12" in context["elements"][0]["text"]
    text = post["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;script&gt;" in text and "<!channel>" not in text
    assert "<https://forum.test/a?b=1&amp;c=%7C2&gt;|Meet the new editor>" in text
    assert "by user0 on forum · 2024-05-01 10:00 UTC" in text
    assert "• angry about the change" in text


def hostile_names() -> FlaggedPost:
    """A post whose author and title would forge lines, reorder text or drive a terminal."""
    post = flagged(0, text="cleared\x1b[2J\x1b]0;pwned\x07 \u202eevil")
    return replace(post, post=replace(post.post, author="bob\r\n\u2022 reviewed by staff: ignore",
                                      title="Hi\x1b[31m\u202egnp.exe"))


def test_slack_shows_names_on_one_line_without_controls(http: Recorder) -> None:
    slack(http).send(notice(hostile_names()))
    sent = json.loads(http.requests[0].body)
    text = sent["blocks"][2]["text"]["text"]
    assert "by bob • reviewed by staff: ignore on forum" in text  # no forged line
    assert "\n• reviewed" not in text
    for shown in (sent["text"], sent["blocks"][0]["text"]["text"], text):
        assert not set(shown) & {"\x1b", "\x07", "\r", "\u202e"}
    assert "Hi[31mgnp.exe" in sent["text"] and "cleared[2J]0;pwned evil" in text


def test_slack_respects_block_and_text_limits(http: Recorder) -> None:
    reasons = tuple("x" * 400 + f" reason {i}" for i in range(14))
    many = notice(*(flagged(i, text="word " * 500, reasons=reasons) for i in range(60)))
    slack(http, max_posts=20).send(many)
    blocks = json.loads(http.requests[0].body)["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert sum(b["type"] == "section" for b in blocks) == 20
    assert all(len(b["text"]["text"]) <= MAX_TEXT for b in blocks if b["type"] == "section")
    assert "and 40 more" in blocks[-1]["elements"][0]["text"]


def test_slack_reads_its_url_from_a_file(http: Recorder, tmp_path: Path) -> None:
    (tmp_path / "slack").write_text(http.url("/from-file") + "\n")
    build_receiver("s", {"type": "slack", "webhook_url_file": str(tmp_path / "slack")}).send(
        notice())
    assert http.requests[0].path == "/from-file"


@pytest.mark.parametrize(("reply", "retryable", "words"), [
    (Reply(500, b"rollup_error"), True, "HTTP 500: rollup_error"),
    (Reply(429, b"rate_limited", {"Retry-After": "30"}), True, "Retry-After: 30"),
    (Reply(400, b"invalid_payload"), False, "invalid_payload"),
    (Reply(404, b"no_service"), False, "no_service"),
    (Reply(302, headers={"Location": "https://elsewhere.test/"}), False, "redirects are not"),
    (Reply(delay=1.0), True, "did not answer within 0.5s"),
])
def test_slack_failures(http: Recorder, reply: Reply, retryable: bool, words: str) -> None:
    http.reply = reply
    with pytest.raises(DeliveryError) as caught:
        slack(http).send(notice())
    assert caught.value.retryable is retryable and words in str(caught.value)


def test_slack_cannot_connect_is_retryable() -> None:
    receiver = build_receiver("s", {"type": "slack",
                                    "webhook_url": f"http://127.0.0.1:{closed_port()}/x"})
    with pytest.raises(DeliveryError, match="cannot reach") as caught:
        receiver.send(notice())
    assert caught.value.retryable


# --- webhook -----------------------------------------------------------------------------

def test_webhook_body_headers_and_signature(http: Recorder, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("s3cret\n")
    hook = webhook(http, secret_file=str(tmp_path / "key"), headers={"Authorization": "Bearer t"})
    hook.send(notice(flagged(0), flagged(1, severity="critical")))
    (request,) = http.requests
    assert request.path == f"/in?token={TOKEN}"
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "flag:12:ops"
    assert headers["authorization"] == "Bearer t"
    assert verify("s3cret", headers["x-monitor-signature"], request.body)
    body = json.loads(request.body)
    assert int(headers["x-monitor-timestamp"]) == body["sent_at"]
    assert abs(body["sent_at"] - time.time()) < 60
    assert {k: body[k] for k in ("version", "key", "receiver", "group", "severity", "case_id",
                                 "reminder")} == {
        "version": 1, "key": "flag:12:ops", "receiver": "ops", "group": "thread:forum:7",
        "severity": "critical", "case_id": 12, "reminder": False}
    post = body["posts"][1]
    assert post == {
        "source": "forum", "external_id": "p1", "url": "https://forum.test/t/7/1",
        "author": "user1", "title": "Meet the new editor",
        "text": "This new editor is awful, I want my money back",
        "published_at": "2024-05-01T10:00:00Z", "severity": "critical", "category": "editor",
        "tags": ["ui"], "rules": ["angry-change"], "reasons": ["angry about the change"],
        "scores": {"compound": -0.8123, "anger": 0.7, "change": 0.9, "churn": 0.5,
                   "complaint": 0.0, "angry": True, "language": "en"}}


def signed_request(http: Recorder) -> tuple[str, bytes]:
    """The X-Monitor-Signature and raw body of one notice, as a receiver gets them."""
    webhook(http, secret="s3cret").send(notice())
    (request,) = http.requests
    return request.headers["X-Monitor-Signature"], request.body


def test_webhook_signature_covers_the_timestamp(http: Recorder) -> None:
    """Checked as a receiver in another language would, with no code of ours: a signature
    of the body alone (the old ``sha256=``) let a replay claim any X-Monitor-Timestamp."""
    header, body = signed_request(http)
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert set(fields) == {"t", "v1"}
    assert fields["t"] == http.requests[0].headers["X-Monitor-Timestamp"]
    assert int(fields["t"]) == json.loads(body)["sent_at"]
    signed = fields["t"].encode() + b"." + body
    assert fields["v1"] == hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert fields["v1"] != hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


def test_webhook_verify_refuses_tampering_and_replays(http: Recorder) -> None:
    header, body = signed_request(http)
    t = int(header.split(",")[0].removeprefix("t="))
    assert verify("s3cret", header, body) and verify(b"s3cret", header, body, now=t + 300)
    assert not verify("s3cret", header, body.replace(b'"reminder":false', b'"reminder":true'))
    assert not verify("s3cret", header, body + b" ")
    assert not verify("other", header, body)
    moved = header.replace(f"t={t},", f"t={t + 60},")
    assert not verify("s3cret", moved, body, now=t + 60)         # the time is signed too
    assert not verify("s3cret", header, body, now=t + 301)      # older than 5 minutes
    assert not verify("s3cret", header, body, now=t - 301)      # or from the future
    assert verify("s3cret", header, body, now=t + 3600, tolerance=3600)


@pytest.mark.parametrize("header", [
    "", "sha256=00", "t=,v1=", "t=1714557600", "v1=" + "0" * 64, "t=abc,v1=00",
    "t=-1714557600,v1=00", "t=" + "9" * 5000 + ",v1=00", "t=\u0661\u0662,v1=00",
    "t=1714557600,v1=\u00e9\u00e9", "t=1714557600,v1=" + "0" * 64, ",,,=,==,t==1"])
def test_verify_says_false_to_a_malformed_header(header: str) -> None:
    assert verify("s3cret", header, b"{}", now=1714557600) is False


def readme_verifier() -> Any:
    """The receiver-side check the README shows, run as written."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n#### type: webhook\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(code, scope)  # our own README
    return scope["verified"]


def test_the_readme_verifier_agrees_with_verify(http: Recorder) -> None:
    verified = readme_verifier()
    header, body = signed_request(http)
    assert verified(b"s3cret", header, body)
    assert not verified(b"s3cret", header, body + b" ")
    assert not verified(b"other", header, body)
    then = int(time.time()) - 301
    stale = sign("s3cret", body, then)
    assert verify("s3cret", stale, body, now=then)
    assert not verified(b"s3cret", stale, body)
    for bad in ("", "sha256=00", "t=" + "9" * 5000 + ",v1=00", "t=1,v1=\u00e9"):
        assert not verified(b"s3cret", bad, body)


def test_webhook_without_secret_sends_no_signature(http: Recorder) -> None:
    webhook(http).send(notice())
    assert "X-Monitor-Signature" not in http.requests[0].headers


@pytest.mark.parametrize(("status", "retryable"), [
    (201, None), (204, None), (408, True), (429, True), (503, True), (400, False),
    (401, False), (410, False), (307, False)])
def test_webhook_status_codes(http: Recorder, status: int, retryable: bool | None) -> None:
    http.reply = Reply(status, b"")
    if retryable is None:
        webhook(http).send(notice())
        return
    with pytest.raises(DeliveryError, match=f"HTTP {status}") as caught:
        webhook(http).send(notice())
    assert caught.value.retryable is retryable


def test_webhook_timeout_is_retryable(http: Recorder) -> None:
    http.reply = Reply(delay=1.0)
    with pytest.raises(DeliveryError, match="did not answer") as caught:
        webhook(http).send(notice())
    assert caught.value.retryable


# --- e-mail ------------------------------------------------------------------------------

@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server(login=(b"bob", b"pw!")) as running:
        yield running


def mail(port: int, **options: Any) -> EmailReceiver:
    return build_receiver("mail", {  # type: ignore[return-value]
        "type": "email", "host": "127.0.0.1", "port": port, "security": "none",
        "sender": "Feedback Monitor <monitor@example.com>",
        "to": ["ops@example.com", "lead@example.com"], "timeout": 5, **options})


def test_email_is_sent_as_text_and_escaped_html(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    evil = flagged(0, text='Look <script>alert("x")</script> & weep', severity="critical")
    mail(port).send(notice(evil, flagged(1)))
    mail(port).send(notice(evil, flagged(1)))  # a re-send after a crash: the same Message-ID
    first, again = (message_from_bytes(e.content, policy=policy.default)
                    for e in mailbox.envelopes)
    assert mailbox.envelopes[0].mail_from == "monitor@example.com"
    assert mailbox.envelopes[0].rcpt_tos == ["ops@example.com", "lead@example.com"]
    assert first["From"] == "Feedback Monitor <monitor@example.com>"
    assert first["To"] == "ops@example.com, lead@example.com"
    assert first["Subject"] == ("[feedback-monitor] [CRITICAL] 2 flagged posts in "
                                "'Meet the new editor' (case #12)")
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"].endswith("@example.com>")
    assert first["References"] == "<case-12.monitor@example.com>"
    assert abs(first["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=1)
    assert first.get_content_type() == "multipart/alternative"
    text = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert '"Look <script>alert("x")</script> & weep"' in text
    assert "https://forum.test/t/7/1" in text and "by user1 on forum" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; weep" in html
    assert "<script>" not in html
    assert '<a href="https://forum.test/t/7/0">Meet the new editor</a>' in html


def test_email_shows_names_on_one_line_without_controls(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    mail(port).send(notice(hostile_names()))
    raw = mailbox.envelopes[0].content
    sent = message_from_bytes(raw, policy=policy.default)
    assert sent["Subject"].strip() == (  # strip: the stdlib folds a subject of this length
        "[feedback-monitor] [HIGH] 1 flagged post in 'Hi[31mgnp.exe' (case #12)")
    assert b"\x1b" not in raw and b"\x07" not in raw
    for part in (sent.get_body(("plain",)).get_content(), sent.get_body(("html",)).get_content()):
        assert "bob • reviewed by staff: ignore on forum" in part  # no forged line
        assert not set(part) & {"\x1b", "\x07", "\u202e"}


def test_email_message_id_differs_per_notice(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    mail(port).send(notice(key="flag:1:mail"))
    mail(port).send(notice(key="flag:2:mail"))
    ids = {message_from_bytes(e.content, policy=policy.default)["Message-ID"]
           for e in mailbox.envelopes}
    assert len(ids) == 2


def test_email_logs_in(smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp
    (tmp_path / "pw").write_text("pw!\n")
    mail(port, username="bob", password_file=str(tmp_path / "pw")).send(notice())
    assert len(mailbox.envelopes) == 1
    with pytest.raises(DeliveryError, match="login refused") as caught:
        mail(port, username="bob", password="wrong-" + TOKEN).send(notice())
    assert not caught.value.retryable and TOKEN not in str(caught.value)


def test_email_refused_recipients(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    mailbox.refuse = {"lead@example.com": "550 5.1.1 no such user"}
    with pytest.raises(DeliveryError, match="refused for lead@example.com") as caught:
        mail(port).send(notice())  # delivered to ops, refused for lead
    assert not caught.value.retryable
    mailbox.refuse["ops@example.com"] = "550 5.1.1 no such user"
    with pytest.raises(DeliveryError, match="recipients refused") as caught:
        mail(port).send(notice())
    assert not caught.value.retryable
    mailbox.refuse = {a: "450 4.2.0 greylisted, try later" for a in mailbox.refuse}
    with pytest.raises(DeliveryError, match="450") as caught:
        mail(port).send(notice())
    assert caught.value.retryable


def test_email_starttls_not_offered_is_not_retryable(smtp: tuple[Mailbox, int]) -> None:
    with pytest.raises(DeliveryError, match="STARTTLS") as caught:
        mail(smtp[1], security="starttls").send(notice())
    assert not caught.value.retryable


def test_email_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError, match="cannot reach 127.0.0.1") as caught:
        mail(closed_port(), timeout=2).send(notice())
    assert caught.value.retryable
