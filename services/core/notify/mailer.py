"""Sending one e-mail: SMTP (stdlib ``smtplib``) or the console twin (``var/outbox/mail.log``).

Like every provider, a mailer raises only ``TransientProviderError`` (connection, timeout,
4xx SMTP replies: retry) or ``PermanentProviderError`` (5xx: the address is refused).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.core.plumbing.settings import Settings

log = logging.getLogger(__name__)


class Mailer(Protocol):
    name: str

    def send(self, to: str, subject: str, body: str) -> None: ...


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"], msg["Message-ID"] = (
        formatdate(usegmt=True),
        make_msgid(domain=sender.rsplit("@", 1)[-1]),
    )
    msg.set_content(body)
    return msg


class SmtpMailer:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self._s = settings

    def send(self, to: str, subject: str, body: str) -> None:
        s = self._s
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username and s.smtp_password is not None:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                smtp.send_message(_message(s.mail_from, to, subject, body))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentProviderError(f"smtp refused the recipient ({codes[0]})") from None
            raise TransientProviderError(f"smtp deferred the recipient ({codes[0]})") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentProviderError(f"smtp error {exc.smtp_code}") from None
            raise TransientProviderError(f"smtp error {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientProviderError(f"smtp unreachable: {type(exc).__name__}") from None


class ConsoleMailer:
    """Development twin: appends each message to ``var/outbox/mail.log``."""

    name = "console"

    def __init__(self, settings: Settings) -> None:
        self._path = settings.var_dir / "outbox" / "mail.log"
        self._from = settings.mail_from
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def send(self, to: str, subject: str, body: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        text = _message(self._from, to, subject, body).as_string()
        with self._lock, self._path.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")
        log.info("console mailer: wrote a message to %s", self._path)


def build_mailer(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.notify_provider == "smtp" else ConsoleMailer(settings)
