"""``sms.requested`` v2 carries no code; v1 (with the sealed code) is read forward without it."""

from __future__ import annotations

from shared.events.sms import SmsRequested, SmsRequestedV1
from shared.registry import latest, new_event, parse_event
from tests.contract.examples import WHEN, example, sealed_code


def test_the_latest_version_has_no_code_field() -> None:
    assert latest("sms.requested") is SmsRequested and SmsRequested.VERSION == 2
    assert "code" not in SmsRequested.model_fields


def test_a_v1_command_is_read_as_v2_without_its_code() -> None:
    code = sealed_code()
    v1 = SmsRequestedV1(**example("sms.requested").model_dump(), code=code)
    wire = new_event(v1, user_id="alice", correlation_id="c", occurred_at=WHEN).model_dump_json()
    assert code.reveal() in wire
    envelope, data = parse_event(wire)
    assert (envelope.version, type(data)) == (2, SmsRequested)
    assert "code" not in envelope.data and code.reveal() not in envelope.model_dump_json()
    assert data == example("sms.requested")
