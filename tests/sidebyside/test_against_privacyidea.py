"""The same plugin clients against privacyIDEA 3.14 and twofa, answer by answer, field by field.

Every flow of pi-validate.md §5 that both servers can run with TOTP (one step, reuse, a
wrong code, challenge-response, a wrong and a right answer, the early finalize,
triggerchallenge with a service account, polling, a user without tokens, bad input) is sent
by each plugin's client to both. What a plugin reads is compared (HTTP status, envelope,
``result.*``, the plugin's own decision, ``detail`` messages and challenge entries); each
difference must be one listed in ``KNOWN`` (and in docs/privacyidea-api.md), where twofa is
stricter or says the same thing in other words. Run: ``pytest -m sidebyside tests/sidebyside``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.pi_plugins import PLUGINS, Reply, client_for
from tests.sidebyside.conftest import NO_TOKEN_USER, SERVICE_ACCOUNT, USERS, Seeds, Side

# The first run installs privacyIDEA and makes its data directory (minutes on a busy box).
pytestmark = [pytest.mark.sidebyside, pytest.mark.timeout(900)]

# (step, field) -> why twofa answers differently; a step of "*" matches every step.
KNOWN: dict[tuple[str, str], str] = {
    (
        "reuse",
        "message",
    ): "twofa does not tell a replayed code from a wrong one ('wrong otp value')",
    (
        "answer_unknown_tid",
        "message",
    ): "privacyIDEA says 'wrong otp pin' (there are no PINs in twofa), "
    "twofa 'Response did not match the challenge.'",
    ("answer_again", "message"): "the same as for an unknown transaction id",
    (
        "answer_malformed_tid",
        "*",
    ): "a malformed transaction id is 400/905 in twofa, a REJECT in privacyIDEA",
    (
        "check_unknown_user",
        "*",
    ): "no user directory: an unknown user is a user without a token (TWOFA_PI_NO_TOKEN)",
    (
        "*",
        "user-realm",
    ): "twofa names the realm the plugin sent ('' for none), privacyIDEA its default realm",
    ("*", "user-resolver"): "twofa has no resolvers: 'twofa'",
}


def view(reply: Reply) -> dict[str, Any]:
    """What plugins read; values that differ by nature (ids, serials, times) as their shape."""
    body, result = reply.body, reply.result
    detail = body.get("detail")
    value = result.get("value")
    out: dict[str, Any] = {
        "http": reply.status,
        "decision": reply.decision,
        "jsonrpc": body.get("jsonrpc"),
        "id": body.get("id"),
        "version": body.get("version"),
        "versionnumber": body.get("versionnumber"),
        "time": type(body.get("time")).__name__,
        "status": result.get("status"),
        "value": sorted(k for k in value if k in ("token", "role", "username", "realm"))
        if isinstance(value, dict)
        else value,
        "value_type": type(value).__name__,
        "authentication": result.get("authentication"),
        "error_code": (result.get("error") or {}).get("code"),
        "detail_type": type(detail).__name__,
    }
    if isinstance(value, dict):
        out["role"] = value.get("role")
    if isinstance(detail, dict):
        message = detail.get("message")
        out["message"] = (
            re.sub(r"accepted due to '.*'", "accepted due to <policy>", message)
            if isinstance(message, str)
            else message
        )
        for key in (
            "type",
            "client_mode",
            "otplen",
            "preferred_client_mode",
            "challenge_status",
            "messages",
        ):
            out[key] = detail.get(key)
        for key in ("serial", "transaction_id"):
            out[key] = _shape(detail.get(key))
        out["transaction_ids"] = (
            [_shape(t) for t in detail.get("transaction_ids", [])]
            if "transaction_ids" in detail
            else None
        )
        out["multi_challenge"] = (
            [
                {k: _shape(v) if k in ("serial", "transaction_id") else v for k, v in e.items()}
                for e in detail["multi_challenge"]
            ]
            if "multi_challenge" in detail
            else None
        )
        out["user"] = (
            sorted(k for k in detail["user"] if k in ("username",)) if "user" in detail else None
        )
        out["user-realm"], out["user-resolver"] = (
            detail.get("user-realm"),
            detail.get("user-resolver"),
        )
    return out


def _shape(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{20}", value):
        return "<20 digits>"
    if isinstance(value, str) and re.fullmatch(r"TOTP[0-9A-F]{8}", value):
        return "<TOTP serial>"
    return value


def flows(side: Side, name: str, user: str, seeds: Seeds) -> dict[str, Reply]:
    """The steps of every flow, as this plugin makes them, against one server."""
    c = client_for(side.http, name)
    steps: dict[str, Reply] = {}
    code = seeds.code(user)
    steps["one_step"] = c.check(user, code)
    steps["reuse"] = c.check(user, code)
    steps["wrong"] = c.check(user, f"{(int(seeds.code(user, 1)) + 5) % 10**6:06d}")
    challenge = steps["challenge"] = c.check(user, "")
    tid = challenge.transaction_id or "0" * 20
    steps["wrong_answer"] = c.answer(user, f"{(int(seeds.code(user, 1)) + 7) % 10**6:06d}", tid)
    steps["poll_open"] = c.poll(tid)
    steps["finalize_early"] = c.answer(user, "", tid)
    steps["right_answer"] = c.answer(user, seeds.code(user, 1), tid)
    steps["answer_again"] = c.answer(user, seeds.code(user, 1), tid)
    steps["poll_answered"] = c.poll(tid)
    steps["answer_unknown_tid"] = c.answer(user, "123456", "00000000000000000042")
    steps["answer_malformed_tid"] = c.answer(user, "123456", "123")
    steps["poll_unknown"] = c.poll("00000000000000000042")
    steps["check_no_token"] = c.check(NO_TOKEN_USER, "")
    steps["check_unknown_user"] = c.check("nobody.here", "")
    steps["check_unknown_realm"] = c.check(user, "", realm="nowhere")
    if not c.plugin.service_account:
        return steps
    steps["auth_wrong"] = c.auth(SERVICE_ACCOUNT, "wrong password")
    steps["trigger_without_jwt"] = c.post("/validate/triggerchallenge", {"user": user})
    auth = steps["auth"] = c.auth(SERVICE_ACCOUNT, side.password)
    jwt = (auth.result.get("value") or {}).get("token", "")
    steps["trigger"] = c.trigger(jwt, user)
    steps["trigger_no_token"] = c.trigger(jwt, NO_TOKEN_USER)
    steps["trigger_bearer"] = c.trigger(f"Bearer {jwt}", user)
    return steps


def known(step: str, field: str) -> str | None:
    return KNOWN.get((step, field)) or KNOWN.get((step, "*")) or KNOWN.get(("*", field))


def test_every_plugin_reads_the_same_answers_from_both(
    privacyidea: Side, twofa: Side, seeds: Seeds
) -> None:
    unexpected: list[str] = []
    seen: list[dict[str, Any]] = []
    for (name, _), user in zip(PLUGINS.items(), USERS, strict=True):
        ours, theirs = flows(twofa, name, user, seeds), flows(privacyidea, name, user, seeds)
        for step in ours:
            a, b = view(theirs[step]), view(ours[step])
            for field in sorted(set(a) | set(b)):
                if a.get(field) == b.get(field):
                    continue
                why = known(step, field)
                seen.append(
                    {
                        "plugin": name,
                        "step": step,
                        "field": field,
                        "privacyIDEA": a.get(field),
                        "twofa": b.get(field),
                        "why": why,
                    }
                )
                if why is None:
                    theirs_, ours_ = a.get(field), b.get(field)
                    unexpected.append(
                        f"{name} {step} {field}: privacyIDEA {theirs_!r}, twofa {ours_!r}"
                    )
    report = os.environ.get("SIDEBYSIDE_REPORT")
    if report:
        Path(report).write_text("\n".join(json.dumps(d, sort_keys=True) for d in seen) + "\n")
    assert unexpected == []
    observed = {(d["step"], d["field"]) for d in seen}
    stale = [k for k in KNOWN if not any(known(*o) == KNOWN[k] for o in observed)]
    assert stale == []  # every listed difference still exists
