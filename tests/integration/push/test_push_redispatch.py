"""A ``push.requested`` the broker lost is published again while its challenge waits; one
the push consumer recorded, or whose challenge is over, is not."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.core import redispatch
from services.core.factors.push import delivery
from services.core.factors.push.sender import sender_from_settings
from services.core.models import DispatchWatch
from shared.registry import parse_event

BOUND = 5.0


def push_requested(publisher) -> dict[str, Any]:
    return [e for e in publisher.published if e["type"] == "push.requested"][-1]


def deliver(ctx, settings, envelope: dict[str, Any]) -> str:
    env, cmd = parse_event(envelope)
    return delivery.send_push(ctx, env.event_id, cmd, sender_from_settings(settings))


def copies(publisher) -> list[dict[str, Any]]:
    return [e for e, audit in publisher.republished if not audit]


def watched(ctx) -> int:
    with ctx.sessions() as s:
        return len(s.scalars(select(DispatchWatch)).all())


def pushes(settings) -> int:
    log = settings.var_dir / "outbox" / "push.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_lost_push_is_published_again_while_its_challenge_waits(
        world, enrolled, ctx, clock, publisher, settings):
    enrolled()
    world.login()
    lost = push_requested(publisher)
    clock.advance(BOUND - 0.1)
    assert redispatch.sweep(ctx).commands == 0
    clock.advance(0.1)
    assert redispatch.sweep(ctx).commands == 1
    assert copies(publisher) == [lost]
    assert deliver(ctx, settings, lost) == "sent"
    assert deliver(ctx, settings, lost) == "duplicate"  # the original, late: recorded once
    assert pushes(settings) == 1
    clock.advance(BOUND * 4)
    assert redispatch.sweep(ctx).commands == 0 and watched(ctx) == 0


def test_a_recorded_push_is_not_published_again(world, enrolled, ctx, clock, publisher, settings):
    enrolled()
    world.login()
    assert deliver(ctx, settings, push_requested(publisher)) == "sent"
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 0
    assert copies(publisher) == [] and watched(ctx) == 0


def test_a_push_whose_challenge_is_over_is_dropped(world, enrolled, ctx, clock, publisher):
    token = enrolled()
    sel = world.login()
    (req,) = world.requests(token)  # answered by polling; the push itself was lost
    world.app.accept(req, sel["presence_answer"], now=world.now)
    clock.advance(BOUND)
    assert redispatch.sweep(ctx).commands == 0
    assert copies(publisher) == [] and watched(ctx) == 0


def test_no_copy_while_a_retry_waits(world, enrolled, ctx, clock, publisher):
    enrolled()
    world.login()
    event_id = uuid.UUID(push_requested(publisher)["event_id"])
    redispatch.defer(ctx, event_id, 20)  # the push worker: FCM said "later", retry in 20 s
    clock.advance(20 + BOUND - 0.1)
    assert redispatch.sweep(ctx).commands == 0
    clock.advance(0.1)
    assert redispatch.sweep(ctx).commands == 1
    assert copies(publisher)[0]["event_id"] == str(event_id)
