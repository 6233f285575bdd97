"""The test suite's provider fakes, with the failures a chaos scenario switches on.

``FlakyTwilio`` is ``tests.fakes.fake_twilio.FakeTwilio`` that answers a share of the send
calls with a 5xx, a 429 or no answer within the sender's timeout. A timed-out call is then
refused (503 after the client gave up), never accepted: the fake never delivers a message the
service counts as not sent, so every SMS it records is one the service asked for and got
accepted. ``outage`` fails every call (a provider that is down).

``SmsFakes`` reads every accepted SMS of the run by twofa message id, from FlakyTwilio (the id
rides in the status-callback URL) and, once a second provider is in use, from the test
suite's FakeVonage (the id is the ``client-ref``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Protocol

from tests.fakes._http import Behaviour, RecordedRequest
from tests.fakes.fake_twilio import Delay, FakeTwilio, twilio_error

_MESSAGE_ID = re.compile(r"[?&]message_id=([0-9a-f-]{36})")


class FlakyTwilio(FakeTwilio):
    def __init__(self, *, send_timeout: float, seed: int = 17) -> None:
        super().__init__()
        self.failure_rate = 0.0
        self.outage = False
        self.send_timeout = send_timeout
        self.failures: Counter[str] = Counter()
        self._rng = random.Random(seed)

    def _failure(self) -> Behaviour:
        kind = self._rng.choice(("5xx", "429", "timeout"))
        self.failures[kind] += 1
        if kind == "5xx":
            return twilio_error(self._rng.choice((500, 502, 503)), 20500, "Internal server error")
        if kind == "429":
            return twilio_error(429, 20429, "Too many requests")
        return Delay(self.send_timeout + 1.0, twilio_error(503, 20500, "Service unavailable"))

    def _record(self, req: RecordedRequest) -> Behaviour | None:
        scripted = super()._record(req)
        if scripted is not None or not self.scriptable(req):
            return scripted
        with self._lock:
            if self.outage or (self.failure_rate and self._rng.random() < self.failure_rate):
                return self._failure()
        return None

    def sends_per_message_id(self) -> Counter[str]:
        """Accepted messages per twofa message id (the id rides in the status-callback URL)."""
        out: Counter[str] = Counter()
        for m in self.messages:
            found = _MESSAGE_ID.search(m.get("status_callback") or "")
            out[found.group(1) if found else "?"] += 1
        return out


class _Vonage(Protocol):
    @property
    def messages(self) -> list[dict[str, Any]]: ...


class SmsFakes:
    def __init__(self, twilio: FlakyTwilio) -> None:
        self.twilio = twilio
        self.vonage: _Vonage | None = None

    def accepted(self) -> dict[str, list[tuple[str, str]]]:
        """provider -> (twofa message id, text) of every accepted SMS, in arrival order."""
        out: dict[str, list[tuple[str, str]]] = {"twilio": []}
        for m in self.twilio.messages:
            found = _MESSAGE_ID.search(m.get("status_callback") or "")
            out["twilio"].append((found.group(1) if found else "?", str(m["body"])))
        if self.vonage is not None:
            out["vonage"] = [(str(m.get("client-ref") or "?"), str(m["text"]))
                             for m in self.vonage.messages]
        return out

    def sends_per_message_id(self) -> Counter[str]:
        """Accepted SMS per twofa message id, over every provider."""
        return Counter(mid for sent in self.accepted().values() for mid, _ in sent)
