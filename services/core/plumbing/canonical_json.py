"""Canonical JSON (RFC 8785, JCS): the bytes the audit chain hashes and the signatures sign.

The ``jcs`` package encodes in pure Python, and the audit consumer canonicalizes every
event it appends. For the values events are made of, the standard library's C encoder
writes the very same bytes: RFC 8785 escapes strings as ``json`` does with
``ensure_ascii=False``, integers within ±2**53 print alike, and keys in ASCII sort the
same by UTF-16 code units as by code points. Anything outside that (a float, a key
beyond ASCII, a tuple, a larger integer) goes to ``jcs``, whose number formatting and
key order the standard encoder does not reproduce.
"""

from __future__ import annotations

import json
from typing import Any

import jcs

_SAFE_INT = 2**53

_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def canonicalize(value: Any) -> bytes:
    if _standard_encoder_agrees(value):
        return _encode(value).encode()
    return jcs.canonicalize(value)


def _standard_encoder_agrees(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_SAFE_INT < value < _SAFE_INT)
    if kind is dict:
        keys_ascii = all(type(k) is str and k.isascii() for k in value)
        return keys_ascii and all(_standard_encoder_agrees(v) for v in value.values())
    if kind is list:
        return all(_standard_encoder_agrees(v) for v in value)
    return False
