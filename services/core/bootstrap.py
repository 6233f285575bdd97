"""The composition root: Settings in, a ready Context out. Nothing connects at import."""

from __future__ import annotations

import logging

# First-activation hooks (sso protected by default, recovery token) register on import.
import services.core.areas  # noqa: F401
import services.core.factors.push.factor  # noqa: F401
import services.core.factors.sms.factor  # noqa: F401

# Token types register themselves on import.
import services.core.factors.totp.factor  # noqa: F401
import services.core.recovery  # noqa: F401
from services.core.plumbing.clock import Clock, SystemClock
from services.core.plumbing.context import Context
from services.core.plumbing.crypto import keyring_from_settings
from services.core.plumbing.db import make_engine, make_session_factory
from services.core.plumbing.messaging.celery_config import make_celery
from services.core.plumbing.messaging.outbox import (
    BackgroundDispatcher,
    Dispatcher,
    InlineDispatcher,
    PublishedMarker,
)
from services.core.plumbing.messaging.publisher import CeleryPublisher, Publisher
from services.core.plumbing.readiness import broker_check
from services.core.plumbing.settings import Settings

log = logging.getLogger(__name__)


def build_context(
    settings: Settings,
    *,
    publisher: Publisher | None = None,
    background: bool = True,
    clock: Clock | None = None,
    batch_marks: bool = False,
) -> Context:
    """``batch_marks`` (inline dispatch only): mark published rows in batches from a thread
    (high-rate worker processes, see ``PublishedMarker``) instead of one write per commit."""
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    clock = clock or SystemClock()
    broker_probe = None
    if publisher is None:
        publisher = CeleryPublisher(make_celery(settings, "twofa-publisher"))
        broker_probe = broker_check(settings)
    dispatcher: Dispatcher = (
        BackgroundDispatcher(publisher, engine, clock, linger=settings.audit_linger_seconds)
        if background
        else InlineDispatcher(publisher, engine, clock,
                              PublishedMarker(engine, clock) if batch_marks else None)
    )
    ctx = Context(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock,
        keyring=keyring_from_settings(settings),
        dispatcher=dispatcher,
        publisher=publisher,
        broker_probe=broker_probe,
    )
    return ctx
