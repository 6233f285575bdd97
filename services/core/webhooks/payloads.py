"""What a subscriber receives: audit rows and signed checkpoints, as Standard Webhooks payloads.

``{"type", "timestamp", "data"}``; for an audit row ``data`` is ``{position, hash, event}``
with the event as the chain holds it, less any ``Sealed`` field: the one encrypted code
an event may carry is for the SMS worker, never for a subscriber. Phone numbers in
events are masked already. The message id is the event id (the checkpoint's id for a
checkpoint), the same on every attempt, so receivers can de-duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.core.audit.verify import Checkpoint
from services.core.models import AuditCheckpoint, AuditEntry
from services.core.plumbing.clock import as_utc
from shared.events.audit import AuditCheckpointSigned
from shared.registry import ContractError, parse_event
from shared.types import SealedStr


@dataclass(frozen=True)
class Message:
    msg_id: str
    type: str
    body: str


def _public_event(envelope: dict[str, Any]) -> dict[str, Any]:
    try:
        env, data = parse_event(envelope)
    except ContractError:  # the chain only holds valid events; never forward what is not
        return {k: v for k, v in envelope.items() if k != "data"} | {"data": {}}
    public = {
        name: value
        for name, value in data.model_dump(mode="json").items()
        if not isinstance(getattr(data, name), SealedStr)
    }
    return env.model_dump(mode="json") | {"data": public}


def for_row(entry: AuditEntry) -> Message:
    body = {
        "type": entry.type,
        "timestamp": as_utc(entry.occurred_at).isoformat(),
        "data": {
            "position": entry.position,
            "hash": entry.hash,
            "event": _public_event(entry.envelope),
        },
    }
    return Message(str(entry.event_id), entry.type, json.dumps(body, separators=(",", ":")))


def for_checkpoint(row: AuditCheckpoint) -> Message:
    cp = Checkpoint.of(row)
    data = AuditCheckpointSigned.model_validate(cp.as_dict()).model_dump(mode="json")
    body = {"type": AuditCheckpointSigned.TYPE, "timestamp": data["signed_at"], "data": data}
    return Message(
        f"checkpoint-{row.id}", AuditCheckpointSigned.TYPE, json.dumps(body, separators=(",", ":"))
    )
