"""The recovery token's format and storage, without HTTP."""

from __future__ import annotations

import re

import pytest

from services.core import recovery
from services.core.plumbing.crypto import sha256_hex
from services.core.errors import Gone, InvalidCode
from services.core.models import UserProfile


def test_tokens_are_128_bits_in_eight_groups_of_four_hex_digits():
    seen = {recovery.generate() for _ in range(200)}
    assert len(seen) == 200
    for token in seen:
        assert re.fullmatch(r"[0-9A-F]{4}(-[0-9A-F]{4}){7}", token)
        assert len(bytes.fromhex(token.replace("-", ""))) == 16


def test_separators_and_case_do_not_matter():
    token = "1A2B-3C4D-5E6F-7A8B-9C0D-1E2F-3A4B-5C6D"
    for variant in (token.lower(), token.replace("-", ""), token.replace("-", " "), f" {token} "):
        assert recovery.canonical(variant) == token.replace("-", "")


@pytest.mark.parametrize(
    ("user_id", "filename"),
    [
        ("alice", "twofa-recovery-alice.txt"),
        ("a+b@example.com", "twofa-recovery-a_b_example.com.txt"),
        ('x"; filename=evil.sh', "twofa-recovery-x___filename_evil.sh.txt"),
        ("..", "twofa-recovery-user.txt"),
    ],
)
def test_filename_keeps_only_safe_characters(user_id, filename):
    assert recovery.safe_filename(user_id) == filename


def test_only_a_hash_and_the_pending_ciphertext_are_stored(ctx):
    with ctx.uow() as uow:
        recovery.issue(ctx, uow, "alice")
        uow.commit()
    with ctx.uow() as uow:
        profile = uow.session.get(UserProfile, "alice")
        token = ctx.keyring.decrypt(profile.recovery_pending_enc)
        assert profile.recovery_hash == sha256_hex(token.replace("-", ""))
        assert token not in profile.recovery_pending_enc
    file = recovery.download(ctx, "alice")
    assert token in file.text
    with ctx.uow() as uow:
        assert uow.session.get(UserProfile, "alice").recovery_pending_enc is None
    with pytest.raises(Gone):
        recovery.download(ctx, "alice")


def test_a_reissue_replaces_the_previous_token(ctx):
    tokens = []
    for _ in range(2):
        with ctx.uow() as uow:
            recovery.issue(ctx, uow, "alice")
            uow.commit()
            tokens.append(ctx.keyring.decrypt(uow.session.get(UserProfile, "alice").recovery_pending_enc))
    with pytest.raises(InvalidCode):
        recovery.redeem(ctx, "alice", tokens[0])
    assert recovery.redeem(ctx, "alice", tokens[1]) == 0
