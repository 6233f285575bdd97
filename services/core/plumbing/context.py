"""The dependencies a use case needs, built once per process at its composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.core.plumbing.clock import Clock
from services.core.plumbing.crypto import Keyring
from services.core.plumbing.messaging.outbox import Dispatcher
from services.core.plumbing.messaging.publisher import Publisher
from services.core.plumbing.settings import Settings
from services.core.plumbing.uow import UnitOfWork

if TYPE_CHECKING:
    from services.core.apikeys import KeyCache
    from services.core.audit.signing import CheckpointSigner


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    keyring: Keyring
    dispatcher: Dispatcher
    publisher: Publisher
    # Built on first use by the processes that need them (key parsing is not free).
    audit_signer: CheckpointSigner | None = None
    api_key_cache: KeyCache | None = None
    # Readiness: raises when the broker does not answer; None where there is no broker to
    # probe (a test's recording publisher).
    broker_probe: Callable[[], None] | None = None

    def uow(self, correlation_id: str | None = None) -> UnitOfWork:
        return UnitOfWork(self.engine, self.sessions, self.clock, self.dispatcher, correlation_id,
                          redispatch_after=self.settings.redispatch_after_seconds)
