"""The configured SMS providers as one sender: ``TWOFA_SMS_PROVIDERS=twilio,vonage``.

A send goes to the providers in order, skipping those whose circuit is open
(``services.core.factors.sms.circuit``), and stops at the first that accepts the message:
its receipt names it, and the delivery record keeps that name and its message id. A
transient failure (5xx, 429, timeout, network) moves the send to the next provider; when the
last one also failed transiently, the transient error goes to the caller, who retries later
from the first provider again. A permanent failure is not passed on: an invalid number is
invalid everywhere, and a second provider must not become a way around an unsubscribe.

One message per code still holds across providers because the ledger's claim comes first:
only one worker sends a message, and it stops at the first provider that accepts it. The
exception is a timeout, which moves on like any transient failure although the provider
may have accepted the message: the same narrow at-least-once window as a retry after a
timeout (``services.core.factors.sms.delivery``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence

from services.core.factors.sms.circuit import CircuitRules, Circuits
from services.core.factors.sms.sender import (
    ConsoleSender,
    SmsReceipt,
    SmsSender,
    TwilioSender,
    console_outbox,
)
from services.core.factors.sms.vonage import VonageSender
from services.core.plumbing import metrics
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.core.plumbing.settings import Settings

log = logging.getLogger(__name__)


class FailoverSender:
    """``providers`` in order, each behind its circuit. Thread-safe as its providers are."""

    def __init__(self, providers: Sequence[SmsSender], rules: CircuitRules,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not providers:
            raise ValueError("no SMS provider")
        self.providers = {p.name: p for p in providers}
        self._order = [p.name for p in providers]
        self.circuits = Circuits(self._order, rules, clock)
        self.name = "+".join(self._order)

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        attempts, skipped = self.circuits.plan(self._order)
        for name in skipped:
            metrics.SMS_PROVIDER_SENDS.labels(name, "skipped").inc()
        failure: TransientProviderError | None = None
        for name in attempts:
            try:
                with metrics.SMS_PROVIDER_SECONDS.labels(name).time():
                    receipt = self.providers[name].send(to, body, reference=reference)
            except TransientProviderError as exc:
                metrics.SMS_PROVIDER_SENDS.labels(name, "transient").inc()
                if self.circuits[name].failed():
                    metrics.SMS_PROVIDER_CIRCUIT_OPENED.labels(name).inc()
                    log.warning("SMS provider %s: circuit open", name)
                if name != attempts[-1]:
                    log.warning("SMS provider %s failed (%s); next provider", name, exc.message)
                failure = exc
                continue
            except PermanentProviderError:
                metrics.SMS_PROVIDER_SENDS.labels(name, "permanent").inc()
                self.circuits[name].succeeded()  # it answered: the provider is up
                raise
            metrics.SMS_PROVIDER_SENDS.labels(name, "accepted").inc()
            self.circuits[name].succeeded()
            return receipt
        assert failure is not None
        raise failure

    def close(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "close", None)
            if close is not None:
                close()


def _provider(settings: Settings, name: str, pool_size: int) -> SmsSender:
    if name == "twilio":
        return TwilioSender(settings, pool_size=pool_size)
    if name == "vonage":
        return VonageSender(settings, pool_size=pool_size)
    return ConsoleSender(console_outbox(settings))


def build_sender(settings: Settings, *, pool_size: int = 256) -> FailoverSender:
    """The process's sender: every configured provider, in order, with fresh circuits."""
    rules = CircuitRules(settings.sms_circuit_failures, settings.sms_circuit_window_seconds,
                         settings.sms_circuit_open_seconds)
    return FailoverSender(
        [_provider(settings, name, pool_size) for name in settings.sms_provider_names], rules)
