"""Redis visibility timeouts per queue: each above the longest a live worker holds one of its
messages, each swept in hashes of its own, and one shared value where a worker consumes
several queues or the operator set one."""

from __future__ import annotations

import pytest

from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings
from services.workers import app as worker_app
from services.workers import visibility

REDIS = "redis://127.0.0.1:6379/0"


def test_a_worker_of_one_queue_keeps_its_unacked_messages_apart() -> None:
    s = Settings(env="test", broker_url=REDIS)
    options = visibility.transport_options(s, ("sms",))
    assert options == {"visibility_timeout": 90, "unacked_key": "unacked:sms",
                       "unacked_index_key": "unacked_index:sms",
                       "unacked_mutex_key": "unacked_mutex:sms"}
    timeouts = {q: visibility.visibility_timeout(s, (q,)) for q in QUEUES}
    assert timeouts == {"sms": 90, "push": 75, "expiry": 15, "audit": 25, "webhooks": 125,
                        "notify": 90}
    assert max(timeouts.values()) < s.broker_visibility_timeout


@pytest.mark.parametrize("queues", [("sms", "push"), tuple(QUEUES), ("nosuchqueue",)])
def test_a_worker_of_several_queues_shares_the_default_hashes(queues: tuple[str, ...]) -> None:
    s = Settings(env="test", broker_url=REDIS)
    assert visibility.transport_options(s, queues) == {"visibility_timeout": 300}


def test_a_timeout_the_operator_set_applies_to_every_worker() -> None:
    s = Settings(env="test", broker_url=REDIS, broker_visibility_timeout=40)
    assert visibility.transport_options(s, ("sms",)) == {"visibility_timeout": 40}
    assert visibility.visibility_timeout(s, ("sms",)) == 40


def test_nothing_for_rabbitmq_which_acknowledges() -> None:
    s = Settings(env="test", broker_url="amqp://guest@127.0.0.1//")
    assert visibility.transport_options(s, ("sms",)) == {}


def test_the_timeouts_cover_the_tasks_own_limits() -> None:
    """The numbers visibility uses are the tasks' own, so they cannot drift apart."""
    s = Settings(env="test", broker_url=REDIS)
    worker_app.configure(s, queues=("push",))
    try:
        from services.workers.tasks import audit, notify, push, sms

        assert push.send.time_limit + push.MAX_COUNTDOWN < visibility.visibility_timeout(
            s, ("push",))
        assert all(push.countdown(s, n, 999) <= push.MAX_COUNTDOWN for n in range(10))
        assert visibility.visibility_timeout(s, ("notify",)) > notify.MAX_COUNTDOWN
        assert audit.append_many.retry_backoff_max < visibility.visibility_timeout(s, ("audit",))
        worker_app.configure(s, queues=("sms",))
        lease = 2 * s.sms_send_timeout_seconds + 5
        assert max(sms.backoff(s, n, 10_000) for n in range(20)) + lease < 90
        assert worker_app.app.conf.broker_transport_options["unacked_key"] == "unacked:sms"
    finally:
        worker_app.configure(Settings(env="test"))
