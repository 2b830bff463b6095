"""A real SMTP server on loopback (aiosmtpd) that keeps every message it accepted with
its envelope, and can refuse: a recipient for good (550) or for now (451), every login
but one user's, or the whole connection (stopped)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class Mailbox:
    """What the server does and what it got."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook names
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        raw = bytes(envelope.original_content or b"")
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw)
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, user: tuple[str, str] | None = None) -> None:
        self.mailbox = Mailbox()
        self.user = user
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            pair = (data.login.decode(), data.password.decode())
            self.mailbox.logins.append(pair)
            return AuthResult(success=pair == self.user, handled=False)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=False
            )
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.mailbox.received

    def settings(self) -> dict[str, Any]:
        """The Meterline settings that send through this server."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_security": "none",
            "smtp_from": "billing@meterline.test",
        }


@contextmanager
def smtp_server(user: tuple[str, str] | None = None) -> Iterator[SmtpServer]:
    server = SmtpServer(user)
    server.start()
    try:
        yield server
    finally:
        server.stop()
