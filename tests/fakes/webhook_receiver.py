"""A webhook receiver that verifies every request the way subscribers do: with the
``standardwebhooks`` library and the subscription's secret."""

from __future__ import annotations

import json
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes._http import FakeHTTPServer, RecordedRequest, Reply


class WebhookReceiver(FakeHTTPServer):
    """Answers 204 to a correctly signed request and 401 to anything else.

    ``received``: the verified payloads in arrival order, each with its ``webhook-id``
    under ``"_id"``. Set ``secret`` once the subscription exists.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secret: str | None = None
        self.received: list[dict[str, Any]] = []
        self.refused = 0

    def handle(self, req: RecordedRequest) -> Reply:
        try:
            if self.secret is None:
                raise WebhookVerificationError("no secret yet")
            payload = Webhook(self.secret).verify(req.body, req.headers)
        except WebhookVerificationError:
            with self._lock:
                self.refused += 1
            return Reply(401, {"error": "bad signature"})
        with self._lock:
            self.received.append({**payload, "_id": req.headers["webhook-id"]})
        return Reply(204, body=b"")

    def types(self) -> list[str]:
        return [p["type"] for p in self.received]

    def ids(self) -> list[str]:
        return [p["_id"] for p in self.received]

    def raw_bodies(self) -> list[bytes]:
        return [r.body for r in self.requests]

    def positions(self) -> list[int]:
        return [p["data"]["position"] for p in self.received if "event" in p["data"]]

    def dump_jsonl(self) -> str:
        return "".join(json.dumps({k: v for k, v in p.items() if k != "_id"}) + "\n" for p in self.received)
