"""Secrets are compared in constant time, everywhere in services/core.

A static guard: no ``==``/``!=`` in the core may have a secret-looking operand
(codes, secrets, MACs, signatures, nonces, recovery values, ``*_hash`` columns);
such comparisons go through ``hmac.compare_digest`` (``crypto.constant_time_equal``,
``Keyring.mac_matches``). The audit chain's hashes are public and exempt.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from services.core.apikeys import authenticate
from services.core.plumbing.crypto import Keyring, constant_time_equal
from services.core.factors.totp import otp

CORE = Path(__file__).resolve().parents[3] / "services" / "core"
SECRETISH = re.compile(r"(^|_)(secret|code|otp|mac|signature|nonce|recovery|pin)(_|$)|_hash$", re.I)
EXEMPT_DIRS = {"audit", "migrations"}  # audit hashes are public chain links


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return None  # calls (len(code)), constants, …


def _is_sql(node: ast.AST) -> bool:
    # Token.recovery_hash == x inside .where(...) is SQL; the database does the compare on
    # an indexed hash, which tells nothing of the secret.
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id[:1].isupper()


def plain_secret_comparisons() -> list[str]:
    found = []
    for path in CORE.rglob("*.py"):
        if EXEMPT_DIRS & set(path.relative_to(CORE).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare) or not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value is None for o in operands):
                continue
            for operand in operands:
                name = _name(operand)
                # HTTP status codes are public numbers, not secrets.
                if name and SECRETISH.search(name) and not _is_sql(operand) and not name.endswith("status_code"):
                    found.append(f"{path.relative_to(CORE)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_secret_is_compared_with_eq_in_the_core():
    assert plain_secret_comparisons() == []


def test_non_ascii_digits_are_refused_not_crashed_on():
    secret = otp.generate_secret()
    assert otp.match_step(secret, "١٢٣٤٥٦", unix_time=0, params=otp.TotpParams(), window=1) is None


def test_constant_time_helpers_answer_correctly():
    from cryptography.fernet import Fernet

    ring = Keyring([Fernet.generate_key(), Fernet.generate_key()])
    mac = ring.mac("123456")
    assert ring.mac_matches("123456", mac) and not ring.mac_matches("123457", mac)
    assert constant_time_equal("é", "é") and not constant_time_equal("é", "e")


def test_api_key_check_survives_odd_input(ctx):
    with ctx.sessions() as session:
        for presented in ("", "tfa__", "tfa_x_y", "tfa_ü_ü", "x" * 500):
            assert authenticate(session, presented) is None
