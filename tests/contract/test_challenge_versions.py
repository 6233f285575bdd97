"""``challenge.created`` v2 names the purpose of a challenge (v3 adds ``set_contact``); v1 events
read forward as logins, v2 events unchanged."""

import pytest

from shared.events import ChallengeCreated, ChallengeCreatedV1, ChallengeCreatedV2
from shared.registry import InvalidEvent, new_event, parse_event
from tests.contract.examples import CHALLENGE, TOKEN, WHEN


def v1_wire() -> str:
    data = ChallengeCreatedV1(challenge_id=CHALLENGE, area="sso", factors=[{"token_id": TOKEN, "token_type": "totp"}])
    return new_event(data, user_id="alice", correlation_id="req-1", occurred_at=WHEN).model_dump_json()


def test_a_v1_challenge_created_reads_as_a_login() -> None:
    envelope, data = parse_event(v1_wire())
    assert envelope.version == 3 and isinstance(data, ChallengeCreated)
    assert (data.purpose, data.target, data.area) == ("login", None, "sso")
    assert [f.token_id for f in data.factors] == [TOKEN]


def test_a_step_up_names_its_action() -> None:
    data = ChallengeCreated(challenge_id=CHALLENGE, area="step_up", factors=[], purpose="delete_token",
                            target=str(TOKEN))
    wire = new_event(data, user_id="alice", correlation_id="req-1", occurred_at=WHEN).model_dump_json()
    assert parse_event(wire)[1] == data


@pytest.mark.parametrize("purpose", ["", "unlock", "LOGIN"])
def test_an_unknown_purpose_is_refused(purpose: str) -> None:
    data = ChallengeCreated(challenge_id=CHALLENGE, area="sso", factors=[], purpose="login")
    raw = new_event(data, user_id="alice", correlation_id="req-1", occurred_at=WHEN).model_dump()
    raw["data"]["purpose"] = purpose
    with pytest.raises(InvalidEvent):
        parse_event(raw)


def test_a_v2_step_up_reads_forward_unchanged() -> None:
    v2 = ChallengeCreatedV2(challenge_id=CHALLENGE, area="step_up", factors=[], purpose="set_area", target="sso")
    wire = new_event(v2, user_id="alice", correlation_id="req-1", occurred_at=WHEN).model_dump_json()
    envelope, data = parse_event(wire)
    assert envelope.version == 3 and isinstance(data, ChallengeCreated)
    assert (data.purpose, data.target, data.area) == ("set_area", "sso", "step_up")


def test_set_contact_is_a_v3_purpose_only() -> None:
    data = ChallengeCreated(challenge_id=CHALLENGE, area="step_up", factors=[], purpose="set_contact", target="email")
    wire = new_event(data, user_id="alice", correlation_id="req-1", occurred_at=WHEN).model_dump_json()
    assert parse_event(wire)[1] == data
    raw = new_event(data, user_id="alice", correlation_id="req-1", occurred_at=WHEN).model_dump()
    raw["version"] = 2
    with pytest.raises(InvalidEvent):
        parse_event(raw)
