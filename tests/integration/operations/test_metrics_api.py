"""The API's /metrics, /readyz and request ids, through the app on the test Context."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from tests.integration.areas.helpers import code, enroll_active, wrong
from tests.integration.operations.helpers import value


@pytest.fixture
def headers(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('enroll', 'challenge')}"}


def scrape(api: TestClient) -> str:
    r = api.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_requests_are_counted_by_route_template_never_by_user(api: TestClient,
                                                              headers: dict[str, str]) -> None:
    before = scrape(api)
    assert api.get("/v1/users/carol-9f3e/tokens", headers=headers).status_code == 200
    assert api.get("/no/such/path").status_code == 404
    after = scrape(api)
    route = "/v1/users/{user_id}/tokens"
    assert value(after, "twofa_http_requests_total", route=route, status="200", method="GET") \
        == value(before, "twofa_http_requests_total", route=route, status="200", method="GET") + 1
    assert value(after, "twofa_http_request_duration_seconds_count", route=route) \
        == value(before, "twofa_http_request_duration_seconds_count", route=route) + 1
    assert value(after, "twofa_http_requests_total", route="unmatched", status="404") \
        == value(before, "twofa_http_requests_total", route="unmatched", status="404") + 1
    assert "carol-9f3e" not in after and "/no/such/path" not in after


def test_logins_and_step_ups_are_counted_apart_by_factor_and_outcome(
    api: TestClient, headers: dict[str, str], clock: FrozenClock
) -> None:
    token_id, secret, _ = enroll_active(api, headers, clock)
    clock.advance(30)
    before = scrape(api)
    # a login: one wrong code, then the right one
    cid = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"},
                   headers=headers).json()["challenge_id"]
    bad = api.post(f"/v1/challenges/{cid}/verify",
                   json={"code": wrong(secret, clock), "token_id": token_id}, headers=headers)
    assert bad.status_code == 422, bad.text
    clock.advance(2)
    ok = api.post(f"/v1/challenges/{cid}/verify",
                  json={"code": code(secret, clock), "token_id": token_id}, headers=headers)
    assert ok.status_code == 200, ok.text
    clock.advance(30)
    # a step-up, answered with the same TOTP factor through the challenge endpoint
    sid = api.post("/v1/users/alice/step-ups",
                   json={"purpose": "delete_token", "token_id": token_id},
                   headers=headers).json()["challenge_id"]
    r = api.post(f"/v1/challenges/{sid}/verify",
                 json={"code": code(secret, clock), "token_id": token_id}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    after = scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("twofa_logins_total", factor="totp", outcome="success") == 1
    assert delta("twofa_logins_total", factor="totp", outcome="invalid_code") == 1
    assert delta("twofa_step_ups_total", factor="totp", outcome="success") == 1
    assert delta("twofa_step_ups_total", factor="totp", outcome="invalid_code") == 0
    assert delta("twofa_events_total", type="challenge.verified") == 2


def test_a_request_id_is_returned_logged_and_written_into_the_events(
    api: TestClient, headers: dict[str, str], publisher: RecordingPublisher
) -> None:
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "x"},
                 headers={**headers, "X-Request-ID": "req-42.abc"})
    assert r.status_code == 201 and r.headers["x-request-id"] == "req-42.abc"
    assert publisher.published[-1]["correlation_id"] == "req-42.abc"
    # an id that could forge a log line is replaced by a new one
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "y"},
                 headers={**headers, "X-Request-ID": "x evil\tline {json}"})
    made_up = r.headers["x-request-id"]
    assert made_up != "x evil\tline {json}" and len(made_up) == 32
    assert publisher.published[-1]["correlation_id"] == made_up
    # the older header still names the id
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "z"},
                 headers={**headers, "X-Correlation-Id": "corr-7"})
    assert r.headers["x-request-id"] == "corr-7"
    assert publisher.published[-1]["correlation_id"] == "corr-7"


def test_metrics_can_require_a_token(ctx: Context) -> None:
    from pydantic import SecretStr

    ctx.settings = ctx.settings.model_copy(update={"metrics_token": SecretStr("s3cret-metrics")})
    with TestClient(create_app(ctx=ctx)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
        assert r.status_code == 200 and "twofa_http_requests_total" in r.text


def test_readiness_names_what_is_down(ctx: Context) -> None:
    def refused() -> None:
        raise ConnectionRefusedError("broker down")

    with TestClient(create_app(ctx=ctx)) as client:
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json() == {"ready": True, "checks": {"database": "ok"}}
        ctx.broker_probe = refused
        before = value(scrape(client), "twofa_readiness_failures_total", check="broker")
        r = client.get("/readyz")
        assert value(scrape(client), "twofa_readiness_failures_total", check="broker") \
            == before + 1
        assert r.status_code == 503
        assert r.json() == {"ready": False, "down": ["broker"],
                            "checks": {"database": "ok", "broker": "ConnectionRefusedError"}}
        assert client.get("/healthz").status_code == 200  # liveness stays trivial


def test_a_probe_that_hangs_is_reported_as_a_timeout_within_the_setting(ctx: Context) -> None:
    release = threading.Event()
    ctx.settings = ctx.settings.model_copy(update={"readiness_timeout_seconds": 0.3})
    ctx.broker_probe = lambda: release.wait(10) and None
    try:
        with TestClient(create_app(ctx=ctx)) as client:
            began = time.monotonic()
            r = client.get("/readyz")
            took = time.monotonic() - began
    finally:
        release.set()
    assert r.status_code == 503 and r.json()["checks"]["broker"] == "timeout"
    assert took < 2.0


def test_a_worker_metrics_port_serves_liveness_freely_and_metrics_with_the_token() -> None:
    import httpx

    from services.core.plumbing import metrics
    from tests.e2e.stack import free_port

    port = free_port()
    stop = metrics.serve("127.0.0.1", port, metrics.registry(), "tok-123")
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 401
        r = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer tok-123"})
        assert r.status_code == 200 and "twofa_task_duration_seconds" in r.text
        assert httpx.get(f"{base}/other").status_code == 404
    finally:
        stop()
