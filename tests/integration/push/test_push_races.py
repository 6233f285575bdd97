"""Races of push answers on the one challenge flow: wrong options use one attempt each,
an approval works once, and an answer racing the expiry ends in exactly one state.

As in ``tests/integration/test_challenge_races.py``: stale reads make the worst
interleaving certain; threads fire real concurrent answers at the push endpoint.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.core.challenges import service as challenges
from services.core.factors.push import endpoint
from services.core.models import Challenge
from services.core.plumbing.clock import as_utc
from tests.fakes.pi_crypto import sign
from tests.integration.helpers import in_threads


def form(world: Any, token: Any, req: Any, *tail: str) -> dict[str, str]:
    fields = {"serial": req.serial, "nonce": req.nonce,
              "signature": sign(world.app._key(token), "|".join([req.nonce, req.serial, *tail]))}
    if tail:
        fields["presence_answer"] = tail[-1]
    return fields


def challenge(world: Any, cid: str) -> Challenge:
    with world.ctx.sessions() as s:
        found = s.get(Challenge, uuid.UUID(cid))
        assert found is not None
        return found


def events(publisher: Any, cid: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in publisher.published if e["type"] == kind and e["data"].get("challenge_id") == cid]



@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 2048, "challenge_max_attempts": 10,
                                            "push_presence_options": 10}])
def test_wrong_options_from_a_stale_read_use_one_attempt_each(world, enrolled, publisher):
    enrolled()
    sel = world.login()
    stale = challenge(world, sel["challenge_id"])  # attempts == 0 for every answer below
    for _ in range(4):
        with world.ctx.uow() as uow:
            assert challenges.count_wrong_answer(world.ctx, uow, stale, stale.token_id)
            uow.commit()
    assert challenge(world, sel["challenge_id"]).attempts == 4
    lefts = [e["data"]["attempts_left"] for e in events(publisher, sel["challenge_id"], "challenge.failed")]
    assert lefts == [9, 8, 7, 6]


@pytest.mark.parametrize("push_settings", [{"push_server_key_bits": 2048, "challenge_max_attempts": 10,
                                            "push_presence_options": 10}])
def test_concurrent_wrong_options_use_one_attempt_each(world, enrolled):
    token = enrolled()
    sel = world.login()
    [req] = world.requests(token)
    wrong = [o for o in req.options if o != sel["presence_answer"]][:5]
    forms = [form(world, token, req, option) for option in wrong]
    replies = in_threads(5, lambda i: endpoint.answer(world.ctx, forms[i]).value)
    assert replies == [False] * 5
    after = challenge(world, sel["challenge_id"])
    assert (after.state, after.attempts) == ("pending", 5)


def test_two_concurrent_approvals_approve_once(world, enrolled, publisher):
    token = enrolled()
    sel = world.login()
    [req] = world.requests(token)
    right = form(world, token, req, sel["presence_answer"])
    replies = in_threads(2, lambda _: endpoint.answer(world.ctx, dict(right)).value)
    assert sorted(replies) == [False, True]
    assert len(events(publisher, sel["challenge_id"], "challenge.approved")) == 1
    assert challenge(world, sel["challenge_id"]).state == "approved"


def test_an_approval_read_before_the_expiry_and_written_after_it_changes_nothing(world, enrolled, publisher):
    enrolled()
    sel = world.login()
    stale = challenge(world, sel["challenge_id"])  # open when the answer read it
    before = world.clock.now()
    world.clock.set(as_utc(stale.expires_at))
    assert challenges.expire_due(world.ctx) == 1
    world.clock.set(before)  # the answer still believes it is in time
    with world.ctx.uow() as uow:
        assert not challenges.answer_push(world.ctx, uow, stale, stale.token_id, approve=True)
        uow.commit()
    assert challenge(world, sel["challenge_id"]).state == "expired"
    assert len(events(publisher, sel["challenge_id"], "challenge.expired")) == 1
    assert events(publisher, sel["challenge_id"], "challenge.approved") == []


def test_an_approval_before_the_sweep_is_not_expired(world, enrolled, publisher):
    token = enrolled()
    sel = world.login()
    [req] = world.requests(token)
    assert world.app.accept(req, sel["presence_answer"], now=world.now)["result"]["value"] is True
    world.clock.advance(3600)
    assert challenges.expire_due(world.ctx) == 0
    assert challenge(world, sel["challenge_id"]).state == "approved"
    assert events(publisher, sel["challenge_id"], "challenge.expired") == []
