"""What an outsider verifies with: the published public key and checkpoints kept elsewhere.

A cut tail whose checkpoints were deleted with it leaves no trace in the database;
only a checkpoint that left the database before the cut can show it. Checkpoints
leave as JSON Lines (``twofa audit checkpoints``) or as ``audit.checkpoint_signed``
webhooks; ``read_checkpoints`` takes either form back, line by line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.core.audit.signing import CheckpointVerifier, SigningKeyError, parse_public_key
from services.core.audit.verify import Checkpoint
from services.core.models import AuditCheckpoint

CHECKPOINT_EVENT = "audit.checkpoint_signed"
FETCH_TIMEOUT_SECONDS = 10.0


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be used as evidence (unreadable, or not signed by the key)."""


def load_public_key(*, file: str | None = None, url: str | None = None) -> CheckpointVerifier:
    """The public key from a file (PEM or base64), or as published at ``url``."""
    if file is not None:
        try:
            return parse_public_key(Path(file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SigningKeyError(
                f"cannot read the public key file {file}: {exc.strerror}"
            ) from exc
    if url is None:
        raise SigningKeyError("no public key: pass --public-key FILE")
    try:
        # No redirects: the key must come from the address the auditor named.
        reply = httpx.get(url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise SigningKeyError(
            f"cannot fetch the published public key from {url} ({type(exc).__name__}); "
            "pass --public-key FILE (twofa keys audit-public-key prints it)"
        ) from exc
    if reply.status_code != 200:
        raise SigningKeyError(f"{url} answered {reply.status_code}, not the public key")
    try:
        body = reply.json()
        verifier = parse_public_key(body["public_key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError(f"{url} did not answer with a public key") from exc
    if body.get("key_id") not in (None, verifier.key_id):
        raise SigningKeyError(f"{url} published a key whose id does not match it")
    return verifier


def read_checkpoints(path: str, verifier: CheckpointVerifier) -> list[Checkpoint]:
    """Every checkpoint in ``path``; refuses a file holding one the key did not sign."""
    found: list[Checkpoint] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CheckpointFileError(f"cannot read {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = _checkpoint_part(json.loads(line))
            if raw is None:
                continue  # another event type kept in the same file
            cp = Checkpoint.from_dict(raw)
        except ValueError as exc:
            raise CheckpointFileError(f"{path}:{number}: not a checkpoint ({exc})") from None
        if not cp.verifies_with(verifier):
            raise CheckpointFileError(
                f"{path}:{number}: the checkpoint at {cp.position} "
                f"is not signed by key {verifier.key_id}"
            )
        found.append(cp)
    return found


def _checkpoint_part(raw: Any) -> Any:
    """A bare checkpoint, or the ``data`` of an ``audit.checkpoint_signed`` webhook payload."""
    if isinstance(raw, dict) and "type" in raw:
        return raw.get("data") if raw["type"] == CHECKPOINT_EVENT else None
    return raw


def write_checkpoints(session: Session, out: TextIO) -> int:
    """Every checkpoint in the database, oldest first, one JSON object a line."""
    written = 0
    for row in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        out.write(json.dumps(Checkpoint.of(row).as_dict(), sort_keys=True) + "\n")
        written += 1
    return written
