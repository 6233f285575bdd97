"""Field types: masked phones, sealed codes, user ids."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from shared.events import SmsSent
from shared.types import MaskedPhone, Sealed, SealedStr, UserId, mask_phone
from tests.contract.examples import MESSAGE, TOKEN, sealed_code

masked = TypeAdapter(MaskedPhone)
sealed = TypeAdapter(Sealed)


def test_mask_phone_keeps_country_prefix_and_last_two_digits() -> None:
    assert mask_phone("+4915112345678") == "+49*********78"
    assert masked.validate_python(mask_phone("+4915112345678"))


@given(st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"))
def test_mask_phone_never_leaks_more_than_four_digits(number: str) -> None:
    result = mask_phone(number)
    assert len(re.findall(r"\d", result)) <= 4
    assert result.count("*") >= 3
    masked.validate_python(result)


@pytest.mark.parametrize(
    "bad", ["4915112345678", "+49 151 12345678", "+0123456789", "+12345", "+1234567890123456", ""]
)
def test_mask_phone_refuses_non_e164_input(bad: str) -> None:
    with pytest.raises(ValueError):
        mask_phone(bad)


@pytest.mark.parametrize("full", ["+4915112345678", "+49151123456**78", "+4915**78", "49***78"])
def test_masked_phone_field_refuses_anything_but_a_masked_number(full: str) -> None:
    with pytest.raises(ValidationError):
        SmsSent(
            message_id=MESSAGE,
            token_id=TOKEN,
            provider="twilio",
            provider_message_id="SM1",
            phone=full,
        )


def test_sealed_accepts_a_fernet_token_and_refuses_clear_codes() -> None:
    value = sealed.validate_python(sealed_code().reveal())
    assert isinstance(value, SealedStr)
    assert sealed.dump_python(value, mode="json") == value.reveal()
    for bad in ["123456", "x" * 39, "gAAAAA" + "!" * 60, "A" * 4097]:
        with pytest.raises(ValidationError):
            sealed.validate_python(bad)


@pytest.mark.parametrize("good", ["alice", "a", "alice.smith@example.org", "u+1", "A" * 128])
def test_user_id_accepts(good: str) -> None:
    assert TypeAdapter(UserId).validate_python(good) == good


@pytest.mark.parametrize("bad", ["", "_alice", "has space", "A" * 129, "ünï"])
def test_user_id_refuses(bad: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(UserId).validate_python(bad)
