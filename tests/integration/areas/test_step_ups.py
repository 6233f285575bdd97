"""Step-ups through the API: a challenge with a purpose, answered with any active factor,
spent once by the one action it was asked for."""

from __future__ import annotations

from tests.integration.helpers import sent_sms_code

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.core import areas
from services.core.errors import DomainError
from services.core.models import Challenge, Token
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from shared.types import mask_phone
from tests.integration.areas.helpers import code, enroll_active, events, wrong

PHONE = "+4915112345678"


class User:
    """alice with an active TOTP token, passing step-ups through the API."""

    def __init__(self, api: TestClient, headers: dict[str, str], clock: FrozenClock, user: str = "alice") -> None:
        self.api, self.headers, self.clock, self.user = api, headers, clock, user
        self.token_id, self.secret, _ = enroll_active(api, headers, clock, user)
        clock.advance(30)  # the next code is fresh

    def open(self, **target: str) -> dict[str, Any]:
        purpose = "delete_token" if "token_id" in target else "set_area"
        r = self.api.post(f"/v1/users/{self.user}/step-ups", json={"purpose": purpose, **target},
                          headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def passed(self, **target: str) -> str:
        sid = self.open(**target)["challenge_id"]
        r = self.api.post(f"/v1/challenges/{sid}/verify",
                          json={"code": code(self.secret, self.clock), "token_id": self.token_id},
                          headers=self.headers)
        assert r.status_code == 200 and r.json()["status"] == "verified", r.text
        self.clock.advance(30)
        return str(sid)

    def set_area(self, area: str, protected: bool, step_up_id: str) -> Any:
        return self.api.put(f"/v1/users/{self.user}/areas/{area}",
                            json={"protected": protected, "step_up_id": step_up_id}, headers=self.headers)

    def delete(self, token_id: str, step_up_id: str) -> Any:
        return self.api.request("DELETE", f"/v1/users/{self.user}/tokens/{token_id}",
                                json={"step_up_id": step_up_id}, headers=self.headers)


@pytest.fixture
def alice(api: TestClient, both_headers: dict[str, str], clock: FrozenClock) -> User:
    return User(api, both_headers, clock)


def error(r: Any) -> str:
    return str(r.json()["error"]["code"])


def test_a_step_up_is_a_challenge_with_a_purpose_and_the_users_factors(alice, publisher):
    body = alice.open(area="portal-security")
    assert body["status"] == "pending" and body["purpose"] == "set_area" and body["target"] == "portal-security"
    assert [f["token_id"] for f in body["factors"]] == [alice.token_id]
    (created,) = [e for e in events(publisher, "challenge.created") if e["data"]["purpose"] != "login"]
    assert created["version"] == 3
    assert created["data"] == {"challenge_id": body["challenge_id"], "area": "step_up", "purpose": "set_area",
                               "target": "portal-security",
                               "factors": [{"token_id": alice.token_id, "token_type": "totp"}]}


def test_a_passed_step_up_changes_its_area_once(alice, publisher):
    sid = alice.passed(area="portal-security")
    r = alice.set_area("portal-security", True, sid)
    assert r.status_code == 200 and r.json()["protected"] is True, r.text
    r = alice.set_area("portal-security", False, sid)
    assert r.status_code == 403 and error(r) == "step_up_used"
    assert alice.api.get("/v1/users/alice/areas/portal-security", headers=alice.headers).json()["protected"] is True


def test_a_step_up_is_bound_to_its_action(alice, api, both_headers, clock):
    other, _, _ = enroll_active(api, both_headers, clock, description="spare")
    clock.advance(30)
    for_other = alice.passed(token_id=other)
    for_area = alice.passed(area="portal-security")
    assert error(alice.set_area("portal-security", True, for_other)) == "step_up_mismatch"
    assert error(alice.delete(alice.token_id, for_other)) == "step_up_mismatch"  # another token
    assert error(alice.delete(other, for_area)) == "step_up_mismatch"
    assert error(alice.set_area("sso", False, for_area)) == "step_up_mismatch"  # another area
    # the refusals spent nothing: each step-up still does its own action
    assert alice.delete(other, for_other).status_code == 200
    assert alice.set_area("portal-security", True, for_area).status_code == 200


def test_a_login_challenge_is_not_a_step_up(alice, api):
    api.put("/v1/users/alice/areas/sso", json={"protected": True, "code": code(alice.secret, alice.clock)},
            headers=alice.headers)
    alice.clock.advance(30)
    cid = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=alice.headers).json()
    r = api.post(f"/v1/challenges/{cid['challenge_id']}/verify",
                 json={"code": code(alice.secret, alice.clock), "token_id": alice.token_id}, headers=alice.headers)
    assert r.json()["status"] == "verified"
    assert error(alice.set_area("sso", False, cid["challenge_id"])) == "step_up_not_found"


def test_an_unanswered_or_failed_step_up_allows_nothing(alice, api):
    sid = alice.open(area="portal-security")["challenge_id"]
    assert error(alice.set_area("portal-security", True, sid)) == "step_up_not_passed"
    r = api.post(f"/v1/challenges/{sid}/verify", json={"code": wrong(alice.secret, alice.clock),
                                                        "token_id": alice.token_id}, headers=alice.headers)
    assert r.status_code == 422
    assert error(alice.set_area("portal-security", True, sid)) == "step_up_not_passed"


def test_a_passed_step_up_expires_unused(alice, ctx):
    sid = alice.passed(area="portal-security")
    alice.clock.advance(ctx.settings.step_up_use_seconds)
    assert error(alice.set_area("portal-security", True, sid)) == "step_up_expired"


def test_an_unanswered_step_up_expires_like_any_challenge(alice, api, ctx):
    sid = alice.open(area="portal-security")["challenge_id"]
    alice.clock.advance(ctx.settings.challenge_ttl_seconds)
    r = api.post(f"/v1/challenges/{sid}/verify", json={"code": code(alice.secret, alice.clock),
                                                        "token_id": alice.token_id}, headers=alice.headers)
    assert r.status_code == 410 and error(r) == "challenge_expired"


def test_another_users_step_up_is_not_found(alice, api, both_headers, clock):
    bob = User(api, both_headers, clock, user="bob")
    sid = bob.passed(area="portal-security")
    assert error(alice.set_area("portal-security", True, sid)) == "step_up_not_found"
    assert error(alice.set_area("portal-security", True, str(uuid.uuid4()))) == "step_up_not_found"
    assert bob.set_area("portal-security", True, sid).status_code == 200  # still bob's to use


def test_a_step_up_for_another_users_token_or_an_unknown_area_is_refused(alice, api, both_headers, clock):
    bob = User(api, both_headers, clock, user="bob")
    r = api.post("/v1/users/alice/step-ups", json={"purpose": "delete_token", "token_id": bob.token_id},
                 headers=both_headers)
    assert r.status_code == 404 and error(r) == "token_not_found"
    r = api.post("/v1/users/alice/step-ups", json={"purpose": "set_area", "area": "nowhere"}, headers=both_headers)
    assert r.status_code == 404 and error(r) == "unknown_area"
    r = api.post("/v1/users/alice/step-ups", json={"purpose": "set_area", "token_id": alice.token_id},
                 headers=both_headers)
    assert r.status_code == 422


def test_a_step_up_id_and_a_code_together_are_refused(alice):
    sid = alice.passed(area="portal-security")
    r = alice.api.put("/v1/users/alice/areas/portal-security",
                      json={"protected": True, "step_up_id": sid, "code": code(alice.secret, alice.clock)},
                      headers=alice.headers)
    assert r.status_code == 422
    assert alice.set_area("portal-security", True, sid).status_code == 200


def test_a_user_without_factors_needs_no_step_up(api, both_headers):
    r = api.post("/v1/users/carol/step-ups", json={"purpose": "set_area", "area": "portal-security"}, headers=both_headers)
    assert r.status_code == 200 and r.json()["status"] == "not_required"


def test_an_action_that_fails_gives_its_step_up_back(alice, api):
    sid = alice.passed(token_id=alice.token_id)
    r = api.request("DELETE", f"/v1/users/alice/tokens/{uuid.uuid4()}", json={"step_up_id": sid},
                    headers=alice.headers)
    assert r.status_code == 404
    assert alice.delete(alice.token_id, sid).status_code == 200


def sms_only(ctx: Context, clock: FrozenClock, user: str = "dora") -> str:
    token_id = uuid.uuid4()
    with ctx.sessions.begin() as s:
        s.add(Token(id=token_id, user_id=user, type="sms", description="phone", state="active", drift=0,
                    failures=0, created_at=clock.now(), phone_enc=ctx.keyring.encrypt(PHONE),
                    phone_masked=mask_phone(PHONE)))
    return str(token_id)


def test_an_sms_only_user_passes_a_step_up_with_a_sent_code(ctx, api, both_headers, clock, publisher):
    token_id = sms_only(ctx, clock)
    body = api.post("/v1/users/dora/step-ups", json={"purpose": "delete_token", "token_id": token_id},
                    headers=both_headers).json()
    sid = body["challenge_id"]
    r = api.post(f"/v1/challenges/{sid}/select", json={"token_id": token_id}, headers=both_headers)
    assert r.status_code == 200, r.text
    (sent,) = events(publisher, "sms.requested")
    sms_code = sent_sms_code(ctx, sent)
    r = api.post(f"/v1/challenges/{sid}/verify", json={"code": sms_code}, headers=both_headers)
    assert r.json()["status"] == "verified", r.text
    r = api.request("DELETE", f"/v1/users/dora/tokens/{token_id}", json={"step_up_id": sid}, headers=both_headers)
    assert r.status_code == 200 and r.json()["state"] == "deleted"
    failed = events(publisher, "token.verification_failed")
    assert failed == []


def test_a_wrong_step_up_code_counts_as_a_step_up_failure(alice, api, publisher):
    sid = alice.open(area="portal-security")["challenge_id"]
    api.post(f"/v1/challenges/{sid}/verify", json={"code": wrong(alice.secret, alice.clock),
                                                    "token_id": alice.token_id}, headers=alice.headers)
    (failed,) = events(publisher, "token.verification_failed")
    assert failed["data"]["purpose"] == "step_up"


# -- two actions racing for one step-up: exactly one wins ------------------------------------

def in_threads(work: list[Callable[[], str]]) -> list[str]:
    barrier, results = threading.Barrier(len(work)), [""] * len(work)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_actions_racing_for_one_step_up_only_one_wins(alice, ctx):
    sid = uuid.UUID(alice.passed(area="portal-security"))

    def change(protected: bool) -> Callable[[], str]:
        def work() -> str:
            try:
                areas.set_protection(ctx, "alice", "portal-security", protected, code=None, step_up_id=sid)
            except DomainError as exc:
                return exc.code
            return "protected" if protected else "unprotected"
        return work

    for _ in range(3):
        outcomes = in_threads([change(True), change(False)])
        assert outcomes.count("step_up_used") == 1, outcomes
        winner = next(o for o in outcomes if o != "step_up_used")
        assert areas.user_area(ctx, "alice", "portal-security").protected is (winner == "protected")
        with ctx.sessions() as s:
            assert s.get(Challenge, sid).used_at is not None
        sid = uuid.UUID(alice.passed(area="portal-security"))
