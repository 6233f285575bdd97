"""A worker tries to reach the broker again every second at most, not kombu's growing waits."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from services.core.plumbing.messaging.celery_config import PromptReconnect, make_celery
from services.workers.app import app as worker_app
from tests.conftest import make_settings


@pytest.mark.parametrize("which", ["publisher", "worker"])
def test_every_connection_retries_promptly(tmp_path, which):
    settings = make_settings(tmp_path, "sqlite://", broker_url="redis://127.0.0.1:1/0")
    app = make_celery(settings) if which == "publisher" else worker_app
    conn = app.connection_for_read(url="redis://127.0.0.1:1/0")
    assert isinstance(conn, PromptReconnect)
    waits: list[float] = []
    with pytest.raises(OperationalError):
        conn.ensure_connection(lambda exc, interval: waits.append(interval), max_retries=4)
    assert waits and max(waits) <= 1.0, waits
    conn.release()
