"""Abandoned enrollments (a QR shown and never scanned, a code never typed) do not pile up:
the expiry sweep removes each once it is past ``TWOFA_ENROLLMENT_TTL_SECONDS``, with a
``token.deleted`` event of reason ``enrollment_expired`` (which the audit records)."""

from __future__ import annotations

import logging

import pytest

from services.core.tokens import service as tokens
from tests.conftest import make_settings
from tests.integration.areas.helpers import enroll_active


def start(api, headers, description):
    r = api.post(
        "/v1/users/alice/tokens", json={"type": "totp", "description": description}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]["id"]


def listed(api, headers):
    return {
        t["description"]: t["state"]
        for t in api.get("/v1/users/alice/tokens", headers=headers).json()["tokens"]
    }


def test_an_abandoned_enrollment_is_removed_once_past_its_time(
    api, ctx, clock, enroll_headers, publisher
):
    active_id, _, _ = enroll_active(api, enroll_headers, clock)
    abandoned = start(api, enroll_headers, "never scanned")
    clock.advance(ctx.settings.enrollment_ttl_seconds - 1)
    fresh = start(api, enroll_headers, "just started")
    assert tokens.expire_enrollments(ctx) == 0
    clock.advance(1)
    assert tokens.expire_enrollments(ctx) == 1
    assert tokens.expire_enrollments(ctx) == 0  # once
    assert listed(api, enroll_headers) == {"Pixel 8": "active", "just started": "pending"}
    deleted = [e for e in publisher.published if e["type"] == "token.deleted"]
    assert [(e["data"]["token_id"], e["data"]["reason"], e["user_id"]) for e in deleted] == [
        (abandoned, "enrollment_expired", "alice")
    ]
    assert fresh != active_id


@pytest.fixture
def settings(request, tmp_path, database_url):
    return make_settings(tmp_path, database_url, **getattr(request, "param", {}))


@pytest.mark.parametrize("settings", [{"enrollment_ttl_seconds": 60}], indirect=True)
def test_the_time_is_configurable(api, ctx, clock, enroll_headers):
    start(api, enroll_headers, "short lived")
    clock.advance(60)
    assert tokens.expire_enrollments(ctx) == 1
    assert listed(api, enroll_headers) == {}


def test_the_expiry_task_sweeps_enrollments_and_says_so(
    api, ctx, clock, enroll_headers, settings, caplog
):
    from services.workers import app as worker_app

    worker_app.configure(settings, ctx=ctx)
    from services.workers.tasks import expiry

    caplog.set_level(logging.DEBUG, logger=expiry.__name__)
    try:
        start(api, enroll_headers, "never scanned")
        clock.advance(ctx.settings.enrollment_ttl_seconds)
        assert expiry.sweep() == 1
        (line,) = [r for r in caplog.records if r.name == expiry.__name__]
        assert line.levelname == "INFO" and "1 abandoned enrollment(s) removed" in line.getMessage()
        assert listed(api, enroll_headers) == {}
    finally:
        worker_app._state.clear()
