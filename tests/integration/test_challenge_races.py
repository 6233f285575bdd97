"""Races on one challenge flow, for every factor, on the configured database.

Two kinds of proof. Stale reads make an interleaving certain: every request reads before
any of them writes (``challenges.snapshot``), then the writes arrive one after another
(``challenges.verify_snapshot``), which is the worst case of a real burst. Threads then
fire real concurrent requests at the service (truly parallel on PostgreSQL; on SQLite the
write lock serialises them at some interleaving) and the outcome must not depend on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.core.challenges import service as challenges
from services.core.errors import Conflict, DomainError, InvalidCode, Throttled
from services.core.models import AreaProtection, Challenge, SmsPendingCode, Token, UserProfile
from services.core.plumbing.clock import as_utc
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.settings import Settings
from shared.types import mask_phone
from tests.conftest import make_settings
from tests.integration.helpers import active_totp, in_threads, totp_code

PHONE = "+4915112345678"
WRONG = "000000"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Many SMS close together: the send limits are not under test here.
    return make_settings(tmp_path, database_url, sms_max_per_hour=100, sms_daily_quota=1000,
                         sms_resend_interval_seconds=0)


class Login:
    """One user with one active factor of a kind, and a way to open challenges for it."""

    def __init__(self, ctx: Context, api: Any, enroll: dict[str, str], challenge: dict[str, str], clock: Any,
                 publisher: RecordingPublisher, kind: str) -> None:
        self.ctx, self.api, self.headers, self.clock, self.publisher = ctx, api, challenge, clock, publisher
        self.kind = kind
        if kind == "totp":
            token_id, self.secret = active_totp(api, enroll, clock)
            self.token_id = uuid.UUID(token_id)
        else:
            self.token_id = uuid.uuid4()
            with ctx.sessions.begin() as s:
                s.add(Token(id=self.token_id, user_id="alice", type="sms", description="phone", state="active",
                            drift=0, failures=0, created_at=clock.now(), phone_enc=ctx.keyring.encrypt(PHONE),
                            phone_masked=mask_phone(PHONE)))
                s.merge(AreaProtection(user_id="alice", area="sso", protected=True, updated_at=clock.now()))

    def open(self) -> uuid.UUID:
        """A challenge with the factor selected (TOTP: selected by the verify itself)."""
        r = self.api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=self.headers)
        assert r.status_code == 200 and r.json()["status"] == "pending", r.text
        cid = uuid.UUID(r.json()["challenge_id"])
        if self.kind == "sms":
            r = self.api.post(f"/v1/challenges/{cid}/select", json={"token_id": str(self.token_id)},
                              headers=self.headers)
            assert r.status_code == 200, r.text
        return cid

    def right_code(self) -> str:
        if self.kind == "totp":
            return totp_code(self.secret, self.clock)
        sent = [e for e in self.publisher.published if e["type"] == "sms.requested"][-1]
        with self.ctx.sessions() as session:  # the code is in no event: its pending-code row
            row = session.get(SmsPendingCode, uuid.UUID(sent["data"]["message_id"]))
            assert row is not None
            return self.ctx.keyring.decrypt(row.code_enc)

    def read(self, cid: uuid.UUID) -> Any:
        return challenges.snapshot(self.ctx, cid, self.token_id)

    def answer(self, snap: Any, code: str) -> str:
        try:
            challenges.verify_snapshot(self.ctx, snap, code, self.token_id)
        except DomainError as exc:
            return exc.code
        return "verified"

    def counts(self) -> tuple[int, int]:
        with self.ctx.sessions() as s:
            token = s.get(Token, self.token_id)
            profile = s.get(UserProfile, "alice")
            return token.failures if token else -1, profile.failures if profile else 0

    def challenge(self, cid: uuid.UUID) -> Challenge:
        with self.ctx.sessions() as s:
            found = s.get(Challenge, cid)
            assert found is not None
            return found


@pytest.fixture(params=["totp", "sms"])
def login(request: pytest.FixtureRequest, ctx: Context, api: Any, enroll_headers: dict[str, str],
          challenge_headers: dict[str, str], clock: Any, publisher: RecordingPublisher) -> Login:
    return Login(ctx, api, enroll_headers, challenge_headers, clock, publisher, request.param)



def verify_codes(login: Login, cid: uuid.UUID) -> Callable[[int], str]:
    def work(_: int) -> str:
        try:
            challenges.verify(login.ctx, cid, WRONG, login.token_id)
        except (InvalidCode, Throttled, Conflict) as exc:
            return exc.code
        return "verified"
    return work


# -- a burst during a back-off counts at most the one that started it -----------------------

def test_a_stale_burst_during_a_back_off_counts_only_the_one_that_started_it(login: Login) -> None:
    free = login.ctx.settings.free_failures
    for _ in range(free):  # the free failures, one challenge each
        assert login.answer(login.read(login.open()), WRONG) == "invalid_code"
    assert login.counts() == (free, free)
    burst = [login.open() for _ in range(6)]
    snaps = [login.read(cid) for cid in burst]  # every read sees no back-off yet
    outcomes = [login.answer(snap, WRONG) for snap in snaps]
    assert outcomes == ["invalid_code"] + ["throttled"] * 5
    assert login.counts() == (free + 1, free + 1)
    assert [login.challenge(cid).attempts for cid in burst] == [1, 0, 0, 0, 0, 0]  # refusals count nowhere


def test_a_concurrent_burst_during_a_back_off_counts_at_most_one(login: Login) -> None:
    free = login.ctx.settings.free_failures
    for _ in range(free):
        assert login.answer(login.read(login.open()), WRONG) == "invalid_code"
    cids = [login.open() for _ in range(8)]
    outcomes = in_threads(8, lambda i: verify_codes(login, cids[i])(i))
    assert outcomes.count("invalid_code") == 1 and outcomes.count("throttled") == 7, outcomes
    assert login.counts() == (free + 1, free + 1)


# -- N wrong codes on one challenge use N attempts -----------------------------------------

@pytest.fixture
def roomy(ctx: Context) -> None:
    """Enough free failures and attempts that only the attempt count is under test."""
    ctx.settings = ctx.settings.model_copy(update={"free_failures": 20, "challenge_max_attempts": 10,
                                                   "sms_code_attempts": 10})


def test_stale_wrong_codes_on_one_challenge_use_one_attempt_each(roomy: None, login: Login) -> None:
    cid = login.open()
    snaps = [login.read(cid) for _ in range(5)]  # all read attempts == 0
    assert [login.answer(s, WRONG) for s in snaps] == ["invalid_code"] * 5
    assert login.challenge(cid).attempts == 5
    assert login.counts() == (5, 5)


def test_concurrent_wrong_codes_on_one_challenge_use_one_attempt_each(roomy: None, login: Login) -> None:
    cid = login.open()
    outcomes = in_threads(6, verify_codes(login, cid))
    assert outcomes == ["invalid_code"] * 6
    assert login.challenge(cid).attempts == 6
    assert login.counts() == (6, 6)


def test_the_last_attempt_fails_the_challenge_once(login: Login, publisher: RecordingPublisher) -> None:
    cid = login.open()
    limit = login.ctx.settings.challenge_max_attempts
    snaps = [login.read(cid) for _ in range(limit + 2)]
    outcomes = [login.answer(s, WRONG) for s in snaps]
    assert outcomes[:limit] == ["invalid_code"] * limit
    assert set(outcomes[limit:]) <= {"challenge_closed", "throttled"}
    failed = [e for e in publisher.published if e["type"] == "challenge.failed"
              and e["data"]["challenge_id"] == str(cid) and e["data"]["reason"] == "exhausted"]
    assert len(failed) == 1 and login.challenge(cid).state == "failed"


# -- two right codes at once verify once ---------------------------------------------------

def test_two_stale_right_codes_verify_once(login: Login, publisher: RecordingPublisher) -> None:
    cid = login.open()
    first, second = login.read(cid), login.read(cid)
    code = login.right_code()
    assert login.answer(first, code) == "verified"
    assert login.answer(second, code) == "challenge_closed"
    verified = [e for e in publisher.published if e["type"] == "challenge.verified"]
    assert len(verified) == 1 and login.challenge(cid).attempts == 0
    assert login.counts() == (0, 0)


def test_two_concurrent_right_codes_verify_once(login: Login, publisher: RecordingPublisher) -> None:
    cid = login.open()
    code = login.right_code()

    def work(_: int) -> str:
        try:
            challenges.verify(login.ctx, cid, code, login.token_id)
        except DomainError as exc:
            return exc.code
        return "verified"

    outcomes = sorted(in_threads(2, work))
    assert outcomes[1] == "verified" and outcomes[0] in ("challenge_closed", "invalid_code"), outcomes
    assert len([e for e in publisher.published if e["type"] == "challenge.verified"]) == 1
    assert login.challenge(cid).state == "verified"


# -- an answer racing the expiry ends in exactly one state ---------------------------------

@pytest.mark.parametrize("right", [True, False])
def test_a_code_read_before_the_expiry_and_written_after_it_changes_nothing(
        login: Login, publisher: RecordingPublisher, right: bool) -> None:
    cid = login.open()
    snap, code = login.read(cid), login.right_code() if right else WRONG
    before = login.clock.now()
    login.clock.set(as_utc(login.challenge(cid).expires_at))  # the sweep runs at the expiry …
    assert challenges.expire_due(login.ctx) == 1
    login.clock.set(before)  # … while the answer still believes it is in time
    assert login.answer(snap, code) == "challenge_closed"
    assert login.challenge(cid).state == "expired" and login.challenge(cid).attempts == 0
    assert login.counts() == (0, 0)
    kinds = [e["type"] for e in publisher.published if e["data"].get("challenge_id") == str(cid)]
    assert kinds.count("challenge.expired") == 1 and "challenge.verified" not in kinds


def test_a_verified_challenge_is_not_expired_by_the_sweep(login: Login, publisher: RecordingPublisher) -> None:
    cid = login.open()
    assert login.answer(login.read(cid), login.right_code()) == "verified"
    login.clock.advance(3600)
    assert challenges.expire_due(login.ctx) == 0
    assert login.challenge(cid).state == "verified"

