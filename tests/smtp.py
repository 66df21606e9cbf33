"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it accepts, for the e-mail
receiver, the digest and the daemon tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts and refuses the addresses told."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 no such user"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self) -> list[Any]:
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]

    def received(self) -> list[tuple[str, Any]]:
        """(first recipient, message) per mail accepted."""
        return [(e.rcpt_tos[0], m) for e, m in zip(self.envelopes, self.messages(), strict=True)]


def free_port() -> int:
    """A loopback port nobody listens on: bound, noted, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(login: tuple[bytes, bytes] | None = None) -> Iterator[tuple[Mailbox, int]]:
    """(mailbox, port) of a server that, given ``login``, accepts only that user and
    password (AUTH without TLS: loopback only)."""
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == login
        return AuthResult(success=ok, handled=False)

    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, auth_require_tls=False,
                            authenticator=authenticate if login else None)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
