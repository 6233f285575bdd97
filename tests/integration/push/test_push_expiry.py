"""Pending push approvals expire at their TTL through the periodic sweep, with the
``challenge.expired`` event emitted exactly once (controllable clock)."""

from __future__ import annotations

import logging
import uuid

import pytest

from services.core.challenges import service as challenges
from services.core.models import Challenge


def expired_events(publisher, challenge_id: str) -> list[dict]:
    return [e for e in publisher.published
            if e["type"] == "challenge.expired" and e["data"]["challenge_id"] == challenge_id]


def sweep(ctx) -> int:
    return challenges.expire_due(ctx)


def test_push_challenge_expires_at_its_ttl_exactly_once(world, enrolled, ctx, clock, publisher):
    enrolled()
    sel = world.login()
    clock.advance(119.9)
    assert sweep(ctx) == 0
    assert world.outcome(sel["challenge_id"])["status"] == "pending"
    clock.advance(0.1)
    assert world.outcome(sel["challenge_id"])["status"] == "expired"  # even before the sweep
    assert sweep(ctx) == 1
    assert sweep(ctx) == 0
    assert len(expired_events(publisher, sel["challenge_id"])) == 1
    with ctx.sessions() as s:
        row = s.get(Challenge, uuid.UUID(sel["challenge_id"]))
        assert row.state == "expired" and row.reason == "expired"


@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 2048, "push_ttl_seconds": 30}])
def test_ttl_is_configurable(world, enrolled, ctx, clock):
    enrolled()
    sel = world.login()
    clock.advance(30)
    assert sweep(ctx) == 1
    assert world.outcome(sel["challenge_id"])["status"] == "expired"


def test_answered_challenges_are_not_expired_later(world, enrolled, ctx, clock, publisher):
    token = enrolled()
    sel = world.login()
    (req,) = world.requests(token)
    world.app.accept(req, sel["presence_answer"], now=world.now)
    clock.advance(600)
    assert sweep(ctx) == 0
    assert world.outcome(sel["challenge_id"])["status"] == "approved"
    assert expired_events(publisher, sel["challenge_id"]) == []


def test_the_expiry_task_body_sweeps_push_challenges(world, enrolled, ctx, clock, publisher, settings):
    from services.workers import app as worker_app

    worker_app.configure(settings, ctx=ctx)
    from services.workers.tasks import expiry

    try:
        enrolled()
        sel = world.login()
        clock.advance(121)
        assert expiry.sweep() == 1
        assert expiry.sweep() == 0
        assert len(expired_events(publisher, sel["challenge_id"])) == 1
    finally:
        worker_app._state.clear()  # the worker app's per-process context is global



def test_the_sweep_logs_at_info_only_when_it_expired_something(world, enrolled, ctx, clock, settings, caplog):
    from services.workers import app as worker_app

    worker_app.configure(settings, ctx=ctx)
    from services.workers.tasks import expiry

    caplog.set_level(logging.DEBUG, logger=expiry.__name__)
    try:
        enrolled()
        world.login()
        assert expiry.sweep() == 0
        assert [r.levelname for r in caplog.records if r.name == expiry.__name__] == ["DEBUG"]
        caplog.clear()
        clock.advance(121)
        assert expiry.sweep() == 1
        (line,) = [r for r in caplog.records if r.name == expiry.__name__]
        assert line.levelname == "INFO" and "1 challenge(s) expired" in line.getMessage()
    finally:
        worker_app._state.clear()
