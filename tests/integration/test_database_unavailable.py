"""The database going away (a PostgreSQL restart) is a 503 with Retry-After, not a 500."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from services.core.challenges import service as challenges


@pytest.fixture
def database_down(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise OperationalError("SELECT …", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(challenges, "create", refuse)
    monkeypatch.setattr(challenges, "login", refuse)


def test_the_native_api_answers_503_and_retry_after(api, challenge_headers, database_down, caplog):
    r = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json() == {"error": {"code": "unavailable", "message": "the database is unavailable; try again"}}
    assert "SELECT" not in caplog.text and "ConnectionRefusedError" in caplog.text


def test_the_privacyidea_api_answers_503_in_its_envelope(api, database_down):
    r = api.post("/validate/check", data={"user": "alice", "pass": "123456"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    body = r.json()
    assert body["result"]["status"] is False and body["result"]["error"]["code"] == 503
