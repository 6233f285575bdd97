"""Publishing to and consuming from a Redis broker build one redis-py client per channel.

kombu's own transport builds a client for every synchronous command (each publish, each
acknowledgement); the client costs more to build than the command costs to send.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from kombu import Queue

from services.cli.embedded_broker import EmbeddedBroker
from services.core.plumbing.messaging import redis_transport
from services.core.plumbing.messaging.celery_config import make_celery
from services.core.plumbing.messaging.publisher import CeleryPublisher
from services.core.plumbing.settings import Settings


@pytest.fixture
def clients_built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    built: list[object] = []
    init = redis.Redis.__init__

    def counting(self: redis.Redis, *args: object, **kwargs: object) -> None:
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    return built


def test_celery_publishes_through_one_client(
    settings: Settings, broker: EmbeddedBroker, clients_built: list[object]
) -> None:
    publisher = CeleryPublisher(make_celery(settings.model_copy(update={"broker_url": broker.url})))
    for _ in range(30):  # through Celery's pool of producers and connections, as the API does
        publisher.publish_many([{"event_id": str(uuid.uuid4()), "type": "challenge.verified",
                                 "data": {}}])
    # kombu's own Channel built one per publish.
    assert 1 <= len(clients_built) <= 2, len(clients_built)


def test_a_consumer_receives_and_acks_through_one_client(
    settings: Settings, broker: EmbeddedBroker, clients_built: list[object]
) -> None:
    app = make_celery(settings.model_copy(update={"broker_url": broker.url}))
    with app.connection_for_read() as conn:
        assert conn.get_transport_cls() is redis_transport.Transport
        queue = conn.SimpleQueue(Queue("transport-test", routing_key="transport-test"))
        for i in range(30):
            queue.put({"n": i})
        received = []
        for _ in range(30):
            message = queue.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
        queue.close()
    assert received == list(range(30))
    # kombu's own Channel built one per put, one per get's bookkeeping and one per ack.
    assert len(clients_built) <= 4, len(clients_built)


def test_a_dropped_pool_takes_its_client_with_it(
    settings: Settings, broker: EmbeddedBroker
) -> None:
    app = make_celery(settings.model_copy(update={"broker_url": broker.url}))
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        channel._disconnect_pools()  # as kombu does after a connection error
        second = channel._create_client()
        assert second is not first and second.connection_pool is channel.pool
        assert second.ping()
