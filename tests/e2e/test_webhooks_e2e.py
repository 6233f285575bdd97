"""Webhooks end to end: API, audit worker, scheduler and webhook worker as processes; a
receiver that hangs on every request slows neither the API nor the other subscriber."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.stack import Stack
from tests.e2e.test_totp_e2e import enroll_and_activate, wait_for
from tests.fakes._http import Delay
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

ENROLLMENT = ["enrollment.started", "enrollment.scanned", "enrollment.activated", "enrollment.confirmed"]


def test_events_reach_a_subscriber_in_order_while_another_hangs(settings, broker_url, admin_key):
    stack = Stack(settings, broker_url, extra_env={"TWOFA_WEBHOOK_ALLOW_PRIVATE": "true",
                                                    "TWOFA_WEBHOOK_TIMEOUT_SECONDS": "2"})
    with WebhookReceiver() as healthy, WebhookReceiver() as hanging:
        hanging.script(*[Delay(30.0)] * 50)
        stack.start(queues=("audit", "webhooks"))
        try:
            with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {admin_key}"},
                              timeout=10) as http:
                for receiver in (hanging, healthy):
                    r = http.post("/v1/webhooks", json={"url": receiver.url + "/hook"})
                    assert r.status_code == 201, r.text
                    receiver.secret = r.json()["secret"]
                started = time.monotonic()
                enroll_and_activate(http, "alice")
                assert time.monotonic() - started < 10  # the API does not wait on receivers
            wanted = set(ENROLLMENT) | {"audit.checkpoint_signed"}
            wait_for(lambda: wanted <= set(healthy.types()), timeout=60)
        finally:
            stack.stop()
    rows = [t for t in healthy.types() if t != "audit.checkpoint_signed"]
    assert rows[:4] == ENROLLMENT
    positions = healthy.positions()
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert healthy.refused == 0
    assert hanging.received == [] and len(hanging.requests) >= 1
