"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is the ``standardwebhooks`` reference implementation's own (HMAC-SHA256
over ``id.timestamp.body`` with the decoded ``whsec_`` secret), so receivers verify
with any Standard Webhooks library.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(secret: str, msg_id: str, body: str, timestamp: float) -> dict[str, str]:
    """The three headers of one attempt; ``timestamp`` is the wall-clock time of sending."""
    when = datetime.fromtimestamp(int(timestamp), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
        "content-type": "application/json",
    }
