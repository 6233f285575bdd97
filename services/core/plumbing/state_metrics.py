"""The deployment's state, read at scrape time: outbox backlog, queue depth and the age of each
queue's oldest message, audit lag and the age of the last signed checkpoint.

Served by the relay (one process per deployment), so that N API replicas do not run the same
queries N times. A source that cannot be read (database or broker down) is left out of that
scrape and counted in ``twofa_state_errors_total``; the other sources are still reported.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from services.core.models import AuditCheckpoint, AuditEntry, OutboxEvent
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import make_engine
from services.core.plumbing.messaging.celery_config import SENT_AT_HEADER, celery_config
from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings

log = logging.getLogger(__name__)

STATE_ERRORS = Counter(
    "twofa_state_errors_total", "Scrapes that could not read a source of the state metrics.",
    ("source",),
)


class StateCollector(Collector):
    def __init__(self, settings: Settings, engine: Engine | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self._engine = engine or make_engine(settings.resolved_database_url)
        config = celery_config(settings)
        self._broker_url = config["broker_url"]
        self._transport_options = config["broker_transport_options"]
        self._now = now
        self._lock = threading.Lock()  # scrapes may overlap; one broker connection

    def collect(self) -> Iterator[Metric]:
        for source, read in (("database", self._database), ("broker", self._broker)):
            try:
                families = list(read())
            except Exception as exc:  # a down source must not hide the others
                log.warning("state metrics: %s unreadable: %s", source, type(exc).__name__)
                STATE_ERRORS.labels(source).inc()
                continue
            yield from families

    def _database(self) -> Iterator[Metric]:
        now = self._now()
        with self._engine.connect() as conn:
            backlog, oldest = conn.execute(
                select(func.count(), func.min(OutboxEvent.created_at))
                .where(OutboxEvent.published_at.is_(None))
            ).one()
            last_chained = conn.execute(
                select(OutboxEvent.seq).where(
                    OutboxEvent.event_id == select(AuditEntry.event_id)
                    .order_by(AuditEntry.position.desc()).limit(1).scalar_subquery()
                )
            ).scalar()
            # Events after the newest one in the chain (all of them before the first entry,
            # or once that entry's outbox row was pruned).
            lag_query = select(func.count()).select_from(OutboxEvent)
            if last_chained is not None:
                lag_query = lag_query.where(OutboxEvent.seq > last_chained)
            lag = conn.execute(lag_query).scalar() or 0
            signed, signed_to = conn.execute(
                select(func.max(AuditCheckpoint.signed_at), func.max(AuditCheckpoint.position))
            ).one()
            head = conn.execute(select(func.max(AuditEntry.position))).scalar() or 0
        yield _gauge("twofa_outbox_unpublished", "Events written but not yet on the broker.",
                     backlog)
        yield _gauge("twofa_outbox_oldest_unpublished_age_seconds",
                     "Age of the oldest event not yet on the broker (0 when none).",
                     now - as_utc(oldest).timestamp() if oldest is not None else 0.0)
        yield _gauge("twofa_audit_lag_events",
                     "Events committed but not yet appended to the audit chain.", lag)
        # Checkpoints are signed as entries arrive: an old one matters only while entries
        # after it wait for a signature.
        yield _gauge("twofa_audit_unsigned_entries",
                     "Audit entries after the last signed checkpoint.", head - (signed_to or 0))
        if signed is not None:
            yield _gauge("twofa_audit_checkpoint_age_seconds",
                         "Age of the last signed audit checkpoint.",
                         now - as_utc(signed).timestamp())

    def _broker(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("twofa_queue_depth", "Messages waiting in a queue.",
                                  labels=["queue"])
        age = GaugeMetricFamily(
            "twofa_queue_oldest_age_seconds",
            "Age of the oldest message waiting in a queue (0 when empty; Redis only).",
            labels=["queue"])
        now = self._now()
        with self._lock, Connection(self._broker_url, connect_timeout=2,
                                    transport_options=self._transport_options) as conn:
            channel: Any = conn.default_channel
            client = getattr(channel, "client", None)  # Redis: the lists themselves
            for queue in QUEUES:
                if client is not None:
                    depth.add_metric([queue], client.llen(queue))
                    age.add_metric([queue], _oldest_age(client.lindex(queue, -1), now))
                else:
                    depth.add_metric([queue], _declared_depth(channel, queue))
        yield depth
        if age.samples:
            yield age


def _declared_depth(channel: Any, queue: str) -> int:
    """AMQP: the broker's count; a queue nobody declared yet holds nothing."""
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:
        return 0


def _oldest_age(raw: bytes | None, now: float) -> float:
    """kombu's Redis transport pushes on the left and pops on the right: index -1 is the
    oldest. The publishers stamp ``SENT_AT_HEADER``; an older message without it counts 0."""
    if raw is None:
        return 0.0
    try:
        sent = float(json.loads(raw)["headers"][SENT_AT_HEADER])
    except (ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, now - sent)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
