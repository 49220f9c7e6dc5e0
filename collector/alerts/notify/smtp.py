"""One SMTP delivery: connect (STARTTLS, implicit TLS or plain), log in, send, classify."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formatdate, make_msgid
from typing import Literal

from collector.alerts.notify.config import SmtpConfig
from collector.store.mail import Attachment

__all__ = ["SendResult", "build_message", "send"]

Outcome = Literal["sent", "partial", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    """`retry`: connection error or a 4xx reply; `failed`: a 5xx reply, never retried;
    `partial`: accepted for some recipients, `refused` says why not for the others."""

    outcome: Outcome
    detail: str
    refused: dict[str, str] = field(default_factory=dict)


def build_message(
    from_addr: str,
    to: list[str],
    subject: str,
    text: str,
    html: str,
    *,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """multipart/alternative (in multipart/mixed with the attachments), UTF-8, CRLF line ends.

    The subject goes through email.header.Header: the newer folder of email.policy drops the
    space at the joint of two encoded words, which garbles long Vietnamese subjects."""
    body = MIMEMultipart("alternative")
    body.attach(MIMEText(text, "plain", "utf-8"))
    body.attach(MIMEText(html, "html", "utf-8"))
    msg: MIMEMultipart = body
    if attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        for a in attachments:
            maintype, _, subtype = a.type.partition("/")
            part = MIMEApplication(a.data, _subtype=subtype or "octet-stream")
            if maintype != "application":
                part.set_type(a.type)
            # RFC 2231 encoding keeps a Vietnamese file name intact.
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", a.name))
            msg.attach(part)
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    msg["Subject"] = Header(subject, "utf-8")  # type: ignore[assignment]
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=from_addr.rpartition("@")[2] or None)
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n"))


def _reply(code: int, text: bytes | str) -> str:
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {body}".strip()


def _by_code(code: int, what: str) -> SendResult:
    return SendResult("retry" if 400 <= code < 500 else "failed", what)


def _connect(cfg: SmtpConfig) -> smtplib.SMTP:
    if cfg.security == "tls":
        return smtplib.SMTP_SSL(
            cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
        )
    conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
    if cfg.security == "starttls":
        conn.starttls(context=ssl.create_default_context())
    return conn


def send(cfg: SmtpConfig, to: list[str], message: bytes) -> SendResult:
    """Never raises for a mail-level problem: the outcome says whether to try again."""
    try:
        with _connect(cfg) as conn:
            if cfg.username:
                conn.login(cfg.username, cfg.password())
            refused = conn.sendmail(cfg.from_address, to, message)
            server = (conn.ehlo_resp or conn.helo_resp or b"").split(b"\n")[0]
    except smtplib.SMTPRecipientsRefused as e:
        why = {a: _reply(c, m) for a, (c, m) in e.recipients.items()}
        transient = all(400 <= c < 500 for c, _ in e.recipients.values())
        return SendResult("retry" if transient else "failed", "all recipients refused", why)
    except smtplib.SMTPResponseException as e:
        return _by_code(e.smtp_code, _reply(e.smtp_code, e.smtp_error))
    except (smtplib.SMTPException, OSError) as e:
        # Connection refused, reset, timeout, TLS failure: the server may be back later.
        return SendResult("retry", f"{type(e).__name__}: {e}")
    if refused:
        why = {a: _reply(c, m) for a, (c, m) in refused.items()}
        return SendResult("partial", f"accepted for {len(to) - len(refused)}/{len(to)}", why)
    return SendResult("sent", f"{_reply(250, server)}: accepted for {len(to)}/{len(to)}")
