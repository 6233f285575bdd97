"""The dependencies a use case needs, built once per process at its composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.core.clock import Clock
from services.core.crypto import Keyring
from services.core.messaging.outbox import Dispatcher
from services.core.settings import Settings
from services.core.uow import UnitOfWork


@dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    keyring: Keyring
    dispatcher: Dispatcher
    extras: dict[str, object] = field(default_factory=dict)

    def uow(self, correlation_id: str | None = None) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.clock, self.dispatcher, correlation_id)
