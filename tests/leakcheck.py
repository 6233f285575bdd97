"""Leak checking: no secret, code, recovery token or full phone number in what a run left behind.

Give ``assert_no_leaks`` everything observable from outside the database — captured
log text, event envelopes, broker message bodies, audit rows or exports — and the
sensitive values the run used. Each value is searched in the forms it could take:

- secrets and tokens as given, without spaces/grouping, and in either letter case;
- short numeric codes only as a whole number (not inside a longer digit run such as
  a timestamp), so a 6-digit code does not match by accident;
- phone numbers with and without ``+``, and their national digits (all but the
  country code's leading digits), so a reformatted number is still caught. Masked
  forms (``+4915*****67``) never match, as intended.

Events carry no code at all (``sms.requested`` v2 names the message; v1's sealed code was
ciphertext, which could never contain the clear code either).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sensitive:
    """The values a run must never reveal."""

    secrets: set[str] = field(default_factory=set)  # TOTP seeds, recovery tokens, API keys …
    codes: set[str] = field(default_factory=set)  # OTPs typed in, right or wrong
    phones: set[str] = field(default_factory=set)  # E.164 numbers

    def patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        out: list[tuple[str, re.Pattern[str]]] = []
        for s in self.secrets:
            compact = re.sub(r"[\s-]", "", s)
            if len(compact) < 8:
                raise ValueError("a secret this short cannot be searched for reliably")
            for form in {s, compact}:
                out.append((f"secret {_hint(s)}", re.compile(re.escape(form), re.I)))
        for c in self.codes:
            if not c.isdigit() or len(c) < 6:
                raise ValueError("codes are searched as whole numbers of at least 6 digits")
            out.append((f"code {_hint(c)}", re.compile(rf"(?<!\d){re.escape(c)}(?!\d)")))
        for p in self.phones:
            digits = re.sub(r"\D", "", p)
            national = digits[2:] if len(digits) > 10 else digits  # drop a country code
            for form in {digits, national}:  # national: also with a trunk prefix 0
                out.append((f"phone {_hint(p)}", re.compile(rf"(?<!\d)0?{re.escape(form)}(?!\d)")))
        return out


def _hint(value: str) -> str:
    # Name a leaked value without printing it: the failure message must not leak it either.
    return f"{value[:2]}…({len(value)} chars)"


def _text(item: Any) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8", "replace")
    if isinstance(item, str):
        return item
    return json.dumps(item, default=str, sort_keys=True)


def find_leaks(
    sensitive: Sensitive,
    *,
    logs: str | Iterable[str] = "",
    envelopes: Iterable[Any] = (),
    messages: Iterable[Any] = (),
    others: dict[str, Iterable[Any]] | None = None,
) -> list[str]:
    """Where each sensitive value appears: ``["logs: code 12…(6 chars)", …]`` (empty = clean)."""
    haystacks: dict[str, list[str]] = {
        "logs": [logs] if isinstance(logs, str) else list(logs),
        "envelopes": [_text(e) for e in envelopes],
        "messages": [_text(m) for m in messages],
    }
    for name, items in (others or {}).items():
        haystacks[name] = [_text(i) for i in items]
    found = []
    for what, pattern in sensitive.patterns():
        for where, items in haystacks.items():
            hits = sum(1 for text in items if pattern.search(text))
            if hits:
                found.append(f"{where}: {what} in {hits} item(s)")
    return sorted(set(found))


def assert_no_leaks(
    sensitive: Sensitive,
    *,
    logs: str | Iterable[str] = "",
    envelopes: Iterable[Any] = (),
    messages: Iterable[Any] = (),
    others: dict[str, Iterable[Any]] | None = None,
) -> None:
    leaks = find_leaks(sensitive, logs=logs, envelopes=envelopes, messages=messages, others=others)
    assert not leaks, "sensitive values leaked:\n  " + "\n  ".join(leaks)
