"""Helpers shared by the portal's integration and browser tests: TOTP codes from
``oathtool`` at the frozen clock's time (an implementation independent of ours)."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import parse_qs, urlsplit

from services.core.plumbing.clock import FrozenClock

PASSWORD = "correct horse battery"
RECOVERY_RE = re.compile(r"\b[0-9A-F]{4}(?:-[0-9A-F]{4}){7}\b")


def oathtool(secret: str, clock: FrozenClock) -> str:
    when = clock.now().strftime("%Y-%m-%d %H:%M:%S UTC")
    return subprocess.run(["oathtool", "--totp", "-b", "--now", when, secret.replace(" ", "")],
                          check=True, capture_output=True, text=True).stdout.strip()


def next_code(secret: str, clock: FrozenClock) -> str:
    """The code of the next time step: TOTP codes are single use, so every use moves on."""
    clock.advance(30)
    return oathtool(secret, clock)


def secret_of(provisioning_uri: str) -> str:
    return parse_qs(urlsplit(provisioning_uri).query)["secret"][0]
