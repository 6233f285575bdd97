"""Prometheus metrics: the families every process may move, and their exposition.

Labels name routes, factors, outcomes, queues and tasks, never a user, a token or a value a
request carried. Where several processes serve one port (``twofa serve --workers N``, a
prefork worker pool) ``PROMETHEUS_MULTIPROC_DIR`` is set before anything imports
``prometheus_client``, and the exposition sums every process's files.

What a process can only read from the database or the broker (outbox backlog, queue depth,
audit lag) is measured at scrape time by ``services.core.plumbing.state_metrics`` in the
relay, once for the deployment.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST,
)
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Challenges of a step-up carry this area in their events (services.core.challenges.step_up).
STEP_UP_AREA = "step_up"

HTTP_REQUESTS = Counter(
    "twofa_http_requests_total", "HTTP requests answered, by route template and status.",
    ("method", "route", "status"),
)
HTTP_DURATION = Histogram(
    "twofa_http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
    ("method", "route"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LOGINS = Counter(
    "twofa_logins_total", "Login challenges answered or closed, by factor and outcome.",
    ("factor", "outcome"),
)
STEP_UPS = Counter(
    "twofa_step_ups_total", "Step-up challenges answered or closed, by factor and outcome.",
    ("factor", "outcome"),
)
EVENTS = Counter(
    "twofa_events_total", "Events committed to the outbox by this process, by type.", ("type",),
)
SMS = Counter(
    "twofa_sms_total",
    "SMS outcomes: sent (provider accepted), delivered (provider status), failed, "
    "undeliverable (a login waiting for the SMS failed because of it).",
    ("outcome",),
)
SMS_PROVIDER_SECONDS = Histogram(
    "twofa_sms_provider_seconds", "Time of one send call to the SMS provider.", ("provider",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
SMS_PROVIDER_SENDS = Counter(
    "twofa_sms_provider_sends_total",
    "Send calls per SMS provider: accepted, transient (failed, the next provider or a retry "
    "gets the message), permanent (refused, e.g. an invalid number), skipped (circuit open).",
    ("provider", "outcome"),
)
SMS_PROVIDER_CIRCUIT_OPENED = Counter(
    "twofa_sms_provider_circuit_opened_total",
    "Times a provider's circuit opened in this process (it is skipped for a while).",
    ("provider",),
)
SMS_RECEIPTS = Counter(
    "twofa_sms_receipts_total",
    "Delivery receipts received, by provider and what they did: delivered, failed, unchanged "
    "(already final), ignored (not final), unknown_message, bad_signature (refused).",
    ("provider", "outcome"),
)
PUSH = Counter(
    "twofa_push_total",
    "PUSH outcomes: sent, failed, answered (approved), declined, expired, fraud_reported.",
    ("outcome",),
)
TASK_SECONDS = Histogram(
    "twofa_task_duration_seconds", "Time of one run of a worker task, by task and outcome.",
    ("task", "outcome"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
TASK_RETRIES = Counter("twofa_task_retries_total", "Task runs that asked to be retried.", ("task",))
TASK_FAILURES = Counter("twofa_task_failures_total", "Task runs that raised.", ("task",))
READINESS_FAILURES = Counter(
    "twofa_readiness_failures_total", "Readiness checks that failed, by what was down.",
    ("check",),
)
RELAY_REPUBLISHED = Counter(
    "twofa_relay_republished_total", "Outbox events the relay published after the grace period.",
)
REDISPATCHED = Counter(
    "twofa_redispatched_total",
    "Commands (sms, push) and audit copies published again because the database had no "
    "outcome for them in time (published), or given up after too many copies (abandoned).",
    ("kind", "outcome"),
)

_SUCCESS = {"challenge.verified", "challenge.approved"}
_PUSH_OUTCOMES = {
    "push.sent": "sent", "push.failed": "failed", "push.fraud_reported": "fraud_reported",
}
_SMS_OUTCOMES = {"sms.sent": "sent", "sms.delivered": "delivered", "sms.failed": "failed"}


def observe_events(envelopes: Iterable[Mapping[str, Any]]) -> None:
    """Count what committed events say happened (called after the commit)."""
    for envelope in envelopes:
        kind = envelope["type"]
        EVENTS.labels(kind).inc()
        if kind.startswith("challenge."):
            _challenge_outcome(kind, envelope.get("data") or {})
        elif kind in _SMS_OUTCOMES:
            SMS.labels(_SMS_OUTCOMES[kind]).inc()
        elif kind in _PUSH_OUTCOMES:
            PUSH.labels(_PUSH_OUTCOMES[kind]).inc()


def _challenge_outcome(kind: str, data: Mapping[str, Any]) -> None:
    if kind in _SUCCESS:
        outcome = "success"
    elif kind == "challenge.failed":
        outcome = str(data.get("reason") or "failed")
    elif kind == "challenge.declined":
        outcome = str(data.get("reason") or "declined")
    elif kind == "challenge.expired":
        outcome = "expired"
    else:
        return  # created, selected, not required: not an outcome
    factor = str(data.get("token_type") or "none")
    family = STEP_UPS if data.get("area") == STEP_UP_AREA else LOGINS
    family.labels(factor, outcome).inc()
    if factor == "push" and kind == "challenge.approved":
        PUSH.labels("answered").inc()
    elif factor == "push" and kind == "challenge.declined":
        PUSH.labels("declined").inc()
    elif outcome == "undeliverable":
        SMS.labels("undeliverable").inc()


# -- exposition ------------------------------------------------------------------------------


def registry(extra: Sequence[Collector] = ()) -> CollectorRegistry:
    """What a scrape of this process returns: this process's metrics, or in multiprocess mode
    those of every process sharing the directory; plus ``extra`` collectors."""
    if os.environ.get(MULTIPROC_ENV):
        out = CollectorRegistry()
        multiprocess.MultiProcessCollector(out)  # type: ignore[no-untyped-call]
    elif not extra:
        return REGISTRY
    else:
        out = CollectorRegistry()
        out.register(_Forward(REGISTRY))
    for collector in extra:
        out.register(collector)
    return out


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Any]:
        return self._source.collect()


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)


def authorized(token: str | None, authorization: str | None) -> bool:
    """True when no metrics token is configured, or the request bears it."""
    if not token:
        return True
    return hmac.compare_digest(f"Bearer {token}".encode(), (authorization or "").encode())


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base's name)
        return None


def serve(host: str, port: int, reg: CollectorRegistry, token: str | None) -> Callable[[], None]:
    """Serve ``reg`` at ``http://host:port/metrics`` (and ``/healthz``, for liveness probes)
    from a daemon thread (workers, relay); returns a function that stops it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/healthz":  # liveness probes need no metrics token
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorized(token, environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", "Bearer")])
            return [b"a metrics token is required\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [exposition(reg)]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("metrics on http://%s:%d/metrics", host, port)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop

