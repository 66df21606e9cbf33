"""The digest by e-mail: text and HTML alternatives, the chart as an inline image, one
recipient at a time, each recorded in ``report_sends``.

The SMTP settings are borrowed from an e-mail receiver (``digest.via``), and its connection
code too (``smtp_session``). A recipient is claimed before its message is sent and marked after,
so two monitors sharing a database never both send it, a failure for one recipient never
re-sends to the others, and the next run retries only the failed ones. A sender killed between
sending and marking leaves a claim that expires: that recipient may get the digest twice, with
the same Message-ID (at least once, never lost).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from monitor.config import Config
from monitor.errors import ConfigError, DeliveryError, MonitorError
from monitor.receivers.email import EmailOptions, smtp_session
from monitor.reports.digest import Digest, build_for, day_bounds
from monitor.reports.render import render_html, render_markdown
from monitor.store import Store

log = logging.getLogger("monitor.digest")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What one send of a report did, per recipient."""

    report: str                                  # "digest:2026-11-23"
    sent: tuple[str, ...] = ()                   # by this run
    failed: tuple[tuple[str, str], ...] = ()     # (recipient, error): the next run retries them
    already: tuple[str, ...] = ()                # by an earlier run
    busy: tuple[str, ...] = ()                   # another monitor is sending them right now

    @property
    def ok(self) -> bool:
        return not self.failed


def report_key(day: date) -> str:
    return f"digest:{day.isoformat()}"


def mail_options(config: Config) -> EmailOptions:
    """The e-mail receiver the digest is sent through: ``digest.via``, else the only one."""
    via = config.main.digest.via
    emails = [n for n, r in config.receivers.items() if isinstance(r.options, EmailOptions)]
    name = via if via is not None else (emails[0] if len(emails) == 1 else None)
    if name is None or name not in emails:
        raise ConfigError("set via: the e-mail receiver whose SMTP settings send the digest "
                          f"(e-mail receivers: {', '.join(emails) or 'none'})",
                          config.path.name, "digest.via")
    options: EmailOptions = config.receivers[name].options
    return options


def send_digest(config: Config, store: Store, day: date, now: datetime,
                digest: Digest | None = None) -> SendOutcome:
    """E-mail the digest of ``day`` to every ``digest.to`` recipient it has not reached yet.

    The day must be over at ``now`` (a digest sent at noon would be the day's digest for good,
    missing the afternoon). ``digest``: one already built, to skip building it again.
    """
    if not config.main.digest.to:
        return SendOutcome(report_key(day))
    if day_bounds(day, config.timezone)[1] > now:
        raise MonitorError(f"the digest of {day.isoformat()} is sent once the day is over "
                           f"(in {config.timezone.key})")

    def message(options: EmailOptions) -> EmailMessage:
        return compose(digest or build_for(config, store, day, now), options, now)

    return send_report(config, store, report_key(day), config.main.digest.to, message, now)


def send_report(config: Config, store: Store, report: str, to: Sequence[str],
                message_for: Callable[[EmailOptions], EmailMessage],
                now: datetime) -> SendOutcome:
    """E-mail the report keyed ``report`` ("digest:2026-11-23") to each of ``to`` it has not
    reached yet; ``message_for`` builds the message only when someone still needs it."""
    recipients = list(dict.fromkeys(to))
    if not recipients:
        return SendOutcome(report)
    options = mail_options(config)
    states = store.report_send_states(report)
    already = tuple(r for r in recipients if states.get(r, {}).get("state") == "sent")
    todo = [r for r in recipients if r not in already]
    if not todo:
        return SendOutcome(report, already=already)
    message = message_for(options)
    store_id = store.store_id()
    started = time.monotonic()
    sent, failed, busy = [], [], []
    for recipient in todo:
        moment = now + timedelta(seconds=time.monotonic() - started)  # claims age truly
        if not store.claim_report_send(report, recipient, moment):
            busy.append(recipient)
            continue
        try:
            _send(options, address(message, recipient, report, options, store_id),
                  recipient)
        except DeliveryError as error:
            store.mark_report_failed(report, recipient, str(error))
            log.warning("%s to %s failed: %s", report, recipient, error)
            failed.append((recipient, str(error)))
            continue
        store.mark_report_sent(report, recipient,
                               now + timedelta(seconds=time.monotonic() - started))
        log.info("%s sent to %s", report, recipient)
        sent.append(recipient)
    return SendOutcome(report, tuple(sent), tuple(failed), already, tuple(busy))


def compose(digest: Digest, options: EmailOptions, now: datetime | None = None) -> EmailMessage:
    """multipart/alternative: the Markdown as text/plain, then the HTML with the chart as a
    related inline image (``cid:``), which mail clients show without fetching anything."""
    domain = sender_domain(options)
    cid = f"chart-{digest.day.isoformat()}@{domain}"
    message = EmailMessage()
    when = f"{digest.day:%a} {digest.day.day} {digest.day:%b}"
    message["Subject"] = f"{options.subject_prefix} Digest {when}: {digest.headline}".strip()
    message["From"] = options.sender
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    message.set_content(render_markdown(digest))
    message.add_alternative(render_html(digest, f"cid:{cid}"), subtype="html")
    if digest.chart is not None:
        html = message.get_payload()[1]
        html.add_related(digest.chart, "image", "png", cid=f"<{cid}>",
                         filename=f"digest-{digest.day.isoformat()}.png", disposition="inline")
    return message


def address(message: EmailMessage, recipient: str, report: str, options: EmailOptions,
            store_id: str) -> EmailMessage:
    """``message`` to one recipient, with a Message-ID stable for (report, recipient): a
    re-send after a crash is the same message to a mail client. It holds the store's id
    (``Store.store_id``), as a notice's does, so Gmail never drops another installation's
    digest of the same day as a duplicate."""
    del message["To"], message["Message-ID"]
    message["To"] = recipient
    digest = hashlib.sha256(f"{report}@{store_id}\0{recipient}".encode()).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}.digest@{sender_domain(options)}>"
    return message


def _send(options: EmailOptions, message: EmailMessage, recipient: str) -> None:
    with smtp_session(options) as smtp:
        refused = smtp.send_message(message, parseaddr(options.sender)[1], [recipient])
    if refused:  # with one recipient smtplib raises instead; kept for a lenient server
        raise DeliveryError(f"refused for {recipient}", retryable=False)


def sender_domain(options: EmailOptions) -> str:
    return parseaddr(options.sender)[1].rpartition("@")[2] or "feedback-monitor.invalid"
