"""Notifications end to end: the API, the broker and a real notify worker process mail a
real SMTP server when a factor is added."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.stack import Stack, free_port
from tests.e2e.test_totp_e2e import enroll_and_activate, wait_for
from tests.fakes.smtp_server import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def test_a_new_factor_is_mailed_by_the_notify_worker(settings, broker_url, admin_key):
    with SmtpServer(free_port()) as smtp:
        stack = Stack(settings, broker_url, extra_env={
            "TWOFA_NOTIFY_PROVIDER": "smtp", "TWOFA_SMTP_PORT": str(smtp.port),
            "TWOFA_MAIL_FROM": "security@twofa.example"})
        stack.start(queues=("audit", "notify"))
        try:
            with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {admin_key}"},
                              timeout=10) as http:
                r = http.put("/v1/users/carol/contact", json={"email": "carol@example.org"})
                assert r.status_code == 200, r.text
                enroll_and_activate(http, "carol")
            wait_for(lambda: smtp.received, timeout=60)
        finally:
            stack.stop()
    (mail,) = smtp.received
    assert mail.rcpt_tos == ["carol@example.org"]
    assert "A new sign-in factor (authenticator app) was added" in mail.message["Subject"]
