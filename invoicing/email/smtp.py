"""Sending one message over SMTP, and what a failure means.

SMTP says itself whether to try again: a 5xx reply to the sender, the recipients or
the data is permanent (`Rejected`: the same message will be refused again), anything
else (no connection, a timeout, a 4xx "try later", a closed connection) is
`Deferred`. A refused login is deferred too: the operator can fix the credentials,
and the message should then go out.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

Security = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    sender: str = "billing@localhost"  # the From address; the seller's name is its display
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "starttls"
    timeout: float = 30.0

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2] or "localhost"


class Rejected(Exception):
    """The server refused the message for good (5xx)."""


class Deferred(Exception):
    """The message could not be sent now; a later attempt may succeed."""


def send(config: SmtpConfig, message: EmailMessage, recipients: list[str]) -> dict[str, str]:
    """Send `message` to `recipients` (the envelope: To, Cc and Bcc); the recipients
    the server refused while accepting others, with its reply."""
    try:
        with _connect(config) as client:
            if config.username:
                _login(client, config.username, config.password or "")
            refused = client.send_message(message, from_addr=config.sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as error:
        raise _classified(error.recipients) from error
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
        text = f"{error.smtp_code} {_text(error.smtp_error)}"
        raise (Rejected(text) if error.smtp_code >= 500 else Deferred(text)) from error
    except smtplib.SMTPAuthenticationError as error:
        raise Deferred(f"login refused: {error.smtp_code} {_text(error.smtp_error)}") from error
    except (smtplib.SMTPException, OSError) as error:
        raise Deferred(f"{type(error).__name__}: {error}") from error
    return {address: f"{code} {_text(reply)}" for address, (code, reply) in refused.items()}


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    if config.security == "ssl":
        return smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout, context=ssl.create_default_context()
        )
    client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    if config.security == "starttls":
        try:
            client.starttls(context=ssl.create_default_context())
        except BaseException:
            client.close()
            raise
    return client


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """One login with the best mechanism the server offers (smtplib's `login` tries
    every one in turn after a refusal, which some servers answer by hanging)."""
    client.ehlo_or_helo_if_needed()
    offered = client.esmtp_features.get("auth", "").upper().split()
    client.user, client.password = user, password
    for mechanism, answer in (
        ("PLAIN", client.auth_plain),
        ("LOGIN", client.auth_login),
        ("CRAM-MD5", client.auth_cram_md5),
    ):
        if mechanism in offered:
            client.auth(mechanism, answer)
            return
    raise smtplib.SMTPNotSupportedError("the server offers no login mechanism we speak")


def _classified(refusals: dict[str, tuple[int, bytes]]) -> Exception:
    """Every recipient refused: permanent only if every refusal was."""
    text = "; ".join(f"{a}: {code} {_text(reply)}" for a, (code, reply) in refusals.items())
    if all(code >= 500 for code, _ in refusals.values()):
        return Rejected(text)
    return Deferred(text)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply
