"""privacyIDEA's own export (``pi-tokenjanitor find … export --format pi``) as import records.

The file is a Fernet token (the key is what the janitor prints) around a JSON list, one
object per token: ``serial``, ``type``, hex ``otpkey``, ``otplen``, ``counter`` (TOTP: the
last time step used), ``active``/``revoked``/``locked``, ``failcount``/``maxfail``,
``rollout_state``, ``description``, ``info_list`` (tokeninfo, decrypted: ``timeStep``,
``hashlib``, ``timeShift``, ``phone``, the PUSH keys and Firebase token) and ``user``
(``login``, ``realm``, …). A file that does not open with the key, or is no such list,
is refused as a whole; an entry that cannot be read becomes a refused record.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import replace
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from services.core.imports.records import ImportFileError, ImportRecord, PushKeys

# privacyIDEA's tokeninfo keys of a registered PUSH token, and its poll-only marker
PUSH_APP_KEY = "public_key_smartphone"
PUSH_SERVER_KEY = "private_key_server"
PUSH_FBTOKEN = "firebase_token"
PUSH_FIREBASE_CONFIG = "push_firebase_configuration"
POLL_ONLY = "poll only"
FINISHED = ("", "enrolled")  # rollout states of a token that is in use


def read(data: bytes, key: str) -> list[ImportRecord]:
    try:
        fernet = Fernet(key.strip().encode())
    except (ValueError, binascii.Error):
        raise ImportFileError(
            "--key is not a privacyIDEA export key (44 characters, base64)") from None
    try:
        plain = fernet.decrypt(data.strip())
    except InvalidToken:
        raise ImportFileError(
            "the key does not open this file: a wrong key, or the file is truncated or changed"
        ) from None
    try:
        entries = json.loads(plain)
    except (ValueError, UnicodeDecodeError):
        raise ImportFileError("the file opens but holds no JSON token list") from None
    if not isinstance(entries, list):
        raise ImportFileError("the file opens but holds no JSON token list")
    return [record(f"entry {n}", entry) for n, entry in enumerate(entries, 1)]


def record(position: str, entry: Any) -> ImportRecord:
    if not isinstance(entry, dict):
        return ImportRecord(position, "", "?", problem="not a token object")
    serial = entry.get("serial")
    token_type = entry.get("type")
    if not isinstance(serial, str) or not serial or not isinstance(token_type, str):
        return ImportRecord(position, str(serial or ""), str(token_type or "?"),
                            problem="no serial or type")
    base = ImportRecord(position, serial, token_type.lower())
    try:
        return _record(base, entry)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        # the exception's text could quote the value; say only which field failed
        field = exc.args[0] if isinstance(exc, KeyError) else type(exc).__name__
        return _with(base, problem=f"malformed entry ({field})")


def _record(base: ImportRecord, entry: dict[str, Any]) -> ImportRecord:
    info = entry.get("info_list") or {}
    if not isinstance(info, dict):
        raise TypeError("info_list")
    problem = _unusable(entry)
    if problem:
        return _with(base, problem=problem)
    failures = int(entry.get("failcount") or 0)
    maxfail = int(entry.get("maxfail") or 0)
    common: dict[str, Any] = {
        **_owner(entry.get("user")),
        "description": str(entry.get("description") or ""),
        "locked": maxfail > 0 and failures >= maxfail,
        "failures": failures,
    }
    if base.type == "totp":
        return _with(
            base,
            **common,
            secret=bytes.fromhex(str(entry["otpkey"])),
            digits=int(entry.get("otplen") or 6),
            period=int(info.get("timeStep") or 30),
            algorithm=str(info.get("hashlib") or "sha1"),
            last_step=int(entry.get("counter") or 0) or None,
            drift_seconds=float(info.get("timeShift") or 0.0),
        )
    if base.type == "sms":
        return _with(base, **common, phone=str(info.get("phone") or ""))
    if base.type == "push":
        if not info.get(PUSH_APP_KEY) or not info.get(PUSH_SERVER_KEY):
            return _with(base, **common)  # refused by the writer: no registration
        fbtoken = info.get(PUSH_FBTOKEN)
        keys = PushKeys(
            app_public_key=str(info[PUSH_APP_KEY]),
            server_private_key=str(info[PUSH_SERVER_KEY]),
            fbtoken=str(fbtoken) if fbtoken else None,
            poll_only=info.get(PUSH_FIREBASE_CONFIG) == POLL_ONLY,
        )
        return _with(base, **common, push=keys)
    return _with(base, **common)  # another type: the writer names it in its refusal


def _unusable(entry: dict[str, Any]) -> str | None:
    if entry.get("revoked") or entry.get("locked"):
        return "revoked in privacyIDEA"
    if not entry.get("active", True):
        return "disabled in privacyIDEA"
    state = entry.get("rollout_state") or ""
    if state not in FINISHED:
        return f"enrollment not finished in privacyIDEA (rollout state {str(state)[:20]!r})"
    return None


def _owner(user: Any) -> dict[str, str | None]:
    if not isinstance(user, dict) or not user.get("login"):
        return {"owner": None, "realm": None}
    return {"owner": str(user["login"]), "realm": str(user.get("realm") or "") or None}


def _with(base: ImportRecord, **changes: Any) -> ImportRecord:
    return replace(base, **changes)
