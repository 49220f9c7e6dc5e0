"""A real SMTP server (aiosmtpd) on 127.0.0.1 port 0 that records what it accepts and can be
told to answer DATA with scripted replies or to refuse some recipients."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """The handler: `data_replies` are answered to DATA first, in order, then 250."""

    data_replies: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> reply
    received: list[Received] = field(default_factory=list)
    data_attempts: int = 0
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = ""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_attempts += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.rcpt_tos]

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == self.password.encode())


class _PortZero(Controller):
    """Binds port 0 and learns the port before aiosmtpd's own first connection."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@contextmanager
def smtp_server(
    recorder: Recorder | None = None, *, auth: bool = False
) -> Iterator[tuple[Recorder, int]]:
    rec = recorder or Recorder()
    kwargs: dict[str, Any] = {}
    if auth:
        kwargs = {"authenticator": rec.authenticate, "auth_require_tls": False}
    ctl = _PortZero(rec, hostname="127.0.0.1", port=0, **kwargs)
    ctl.start()
    try:
        yield rec, ctl.port
    finally:
        ctl.stop()


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a multipart/alternative message; both must exist."""
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None, msg.get_content_type()
    return str(text.get_content()), str(html.get_content())
