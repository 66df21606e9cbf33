"""``type: email``: a notice as a text-and-HTML e-mail over SMTP.

The Message-ID comes from the notice's key, so a notice sent again after a crash is the same
message to a mail client; every notice of a case references one id, so clients thread them.
Both hold the store's id (the key's part after ``@``): a second installation's mails are
never taken for duplicates of the first's, nor threaded with its case of the same number.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from html import escape
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.errors import DeliveryError
from monitor.model import Notice
from monitor.receivers import (
    BaseReceiver,
    Item,
    ReceiverOptions,
    describe,
    item_text,
    secret,
    summary,
)

_COLOURS = {"critical": "#b00020", "high": "#e65100", "medium": "#f9a825", "low": "#607d8b"}


class EmailOptions(ReceiverOptions):
    """Keys of a ``type: email`` receiver."""

    host: str = Field(min_length=1, description="the SMTP server")
    port: int = Field(587, ge=1, le=65535, description="the server's port; 465 when `security` "
                      "is `ssl` and no port is given")
    security: Literal["starttls", "ssl", "none"] = Field("starttls", description=(
        "`starttls` (upgrade a plain connection), `ssl` (TLS from the start) or `none`"))
    username: str | None = Field(None, min_length=1, description=(
        "SMTP login (needs `password` or `password_file`)"))
    password: SecretStr | None = Field(None, description=(
        "SMTP password, normally `${SMTP_PASSWORD}`"))
    password_file: Path | None = Field(None, description=(
        "a file holding the password instead, read at each send"))
    sender: str = Field(description="the From address, e.g. `Monitor <monitor@example.com>`")
    to: list[str] = Field(min_length=1, description="the recipients' addresses")
    subject_prefix: str = Field("[feedback-monitor]", description=(
        "put before every subject"))
    timeout: float = Field(30.0, gt=0, le=300, description="seconds to wait for the server")

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            found = parseaddr(address)[1]
            if "@" not in found or any(c.isspace() for c in found):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value

    @model_validator(mode="after")
    def _login(self) -> Self:
        has_password = self.password is not None or self.password_file is not None
        if self.username and not has_password:
            raise ValueError("username needs password or password_file")
        if has_password and not self.username:
            raise ValueError("password needs username")
        return self


class EmailReceiver(BaseReceiver):
    """Sends one e-mail per notice to every address in ``to``."""

    Options = EmailOptions
    options: EmailOptions

    def send(self, notice: Notice) -> None:
        o = self.options
        with smtp_session(o) as smtp:
            refused = smtp.send_message(compose(notice, o), parseaddr(o.sender)[1], o.to)
        if refused:
            raise DeliveryError("sent, but refused for " + _refusals(refused), retryable=False)


@contextmanager
def smtp_session(o: EmailOptions) -> Iterator[smtplib.SMTP]:
    """A connection to the options' server, secured and logged in, closed afterwards; any SMTP
    or network failure inside it (sending too) becomes a DeliveryError that names the server,
    never the password. Shared by the receiver and the digest."""
    port = o.port if "port" in o.model_fields_set or o.security != "ssl" else 465
    password = secret(o.password, o.password_file, "SMTP password") if o.username else ""
    context = ssl.create_default_context()
    try:
        smtp = (smtplib.SMTP_SSL(o.host, port, timeout=o.timeout, context=context)
                if o.security == "ssl" else smtplib.SMTP(o.host, port, timeout=o.timeout))
        with smtp:
            if o.security == "starttls":
                smtp.starttls(context=context)
            if o.username:
                smtp.login(o.username, password)
            yield smtp
    except (smtplib.SMTPException, OSError) as error:
        raise _failure(error, f"{o.host}:{port}") from None


def compose(notice: Notice, options: EmailOptions, now: datetime | None = None) -> EmailMessage:
    """The e-mail for ``notice``: text/plain and an escaped text/html alternative."""
    domain = parseaddr(options.sender)[1].rpartition("@")[2] or "feedback-monitor.invalid"
    digest = hashlib.sha256(notice.key.encode()).hexdigest()[:32]
    message = EmailMessage()
    message["Subject"] = f"{options.subject_prefix} {summary(notice)}".strip()
    message["From"] = options.sender
    message["To"] = ", ".join(options.to)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = f"<{digest}.monitor@{domain}>"
    if notice.case_id is not None:  # the case's thread: of this case, in this store
        store = notice.key.rpartition("@")[2] if "@" in notice.key else ""
        thread = ".".join(part for part in (f"case-{notice.case_id}", store) if part)
        message["References"] = message["In-Reply-To"] = f"<{thread}.monitor@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    items = [describe(i) for i in notice.items]
    text = "\n\n".join([summary(notice), *(item_text(i) for i in items)])
    message.set_content(text + "\n\n-- \nfeedback-monitor\n")
    message.add_alternative(_html(notice, items), subtype="html")
    return message


def _html(notice: Notice, items: list[Item]) -> str:
    parts = [f"<h2>{escape(summary(notice))}</h2>"]
    for item in items:
        title = escape(item.title or "Untitled post")
        link = f'<a href="{escape(item.url)}">{title}</a>' if item.url else title
        reasons = "".join(f"<li>{escape(reason)}</li>" for reason in item.reasons)
        parts.append(
            f'<div style="border-left:4px solid {_COLOURS.get(item.severity, "#999")};'
            f'padding-left:10px;margin:16px 0"><p><b>{escape(item.severity.upper())}</b> '
            f"{link}</p><blockquote>{escape(item.quote)}</blockquote><p>by "
            f"{escape(item.author)} on {escape(item.source)}, {escape(item.when)}</p>"
            f"<ul>{reasons}</ul></div>")
    body = "\n".join(parts)
    return f'<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n{body}\n</body></html>\n'


def _failure(error: Exception, where: str) -> DeliveryError:
    """Retry what time can fix (the network, 4xx codes); not what a person must fix."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        temporary = all(400 <= code < 500 for code, _ in error.recipients.values())
        return DeliveryError("recipients refused: " + _refusals(error.recipients), temporary)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return DeliveryError(f"login refused by {where} ({_said(error)})", retryable=False)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {error} (check security and username)", False)
    if isinstance(error, smtplib.SMTPResponseException):
        return DeliveryError(f"{where} said {_said(error)}", not 500 <= error.smtp_code < 600)
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryError(f"TLS certificate of {where} not accepted ({error.verify_message})",
                             retryable=False)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{where} closed the connection ({error})")
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return DeliveryError(f"cannot reach {where} ({reason})")


def _said(error: smtplib.SMTPResponseException) -> str:
    text = error.smtp_error
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{error.smtp_code} {' '.join(text.split())}"[:200]


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{address} ({code} {' '.join(text.decode('utf-8', 'replace').split())})"
                     for address, (code, text) in refused.items())[:500]
