"""GET /v1/audit/events and /v1/audit/verify: paging, filters, and every tampering found."""

from __future__ import annotations

import pytest

from services.core.audit import service
from tests.integration.audit.conftest import TAMPERINGS


def test_an_intact_chain_verifies(api, chain12, audit_headers):
    r = api.get("/v1/audit/verify", headers=audit_headers)
    assert r.status_code == 200
    assert r.json() == {"ok": True, "checked": 12, "first_bad_position": None, "problem": None,
                        "head_position": 12, "checkpoint_position": 11, "checkpoints_checked": 1}


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_tampering_is_reported_with_the_first_bad_position(api, ctx, chain12, audit_headers, kind):
    action, first_bad = TAMPERINGS[kind]
    action(ctx.sessions)
    r = api.get("/v1/audit/verify", headers=audit_headers)
    assert r.status_code == 200  # the check worked; its answer is "tampered"
    body = r.json()
    assert body["ok"] is False
    assert body["first_bad_position"] == first_bad
    assert body["problem"]


def test_events_are_paged_by_position(api, chain12, audit_headers):
    first = api.get("/v1/audit/events", params={"limit": 5}, headers=audit_headers).json()
    assert [e["position"] for e in first["events"]] == [1, 2, 3, 4, 5]
    assert first["next_after"] == 5
    rest = api.get("/v1/audit/events", params={"after": 5, "limit": 500}, headers=audit_headers).json()
    assert [e["position"] for e in rest["events"]] == list(range(6, 13))
    assert rest["next_after"] is None
    row = rest["events"][0]
    assert row["prev_hash"] == first["events"][-1]["hash"]
    assert (row["factor"], row["outcome"], row["type"]) == ("totp", "success", "challenge.verified")
    assert row["envelope"]["event_id"] == row["event_id"]


def test_events_filter_by_user_type_and_time(api, ctx, chain12, audit_headers):
    by_user = api.get("/v1/audit/events", params={"user_id": "user1"}, headers=audit_headers).json()["events"]
    assert [e["position"] for e in by_user] == [2, 5, 8, 11]
    assert api.get("/v1/audit/events", params={"type": "challenge.failed"}, headers=audit_headers).json()["events"] == []
    # the chain was built one event per second from T0
    t0 = chain12[0]["occurred_at"]
    since = chain12[3]["occurred_at"]
    until = chain12[6]["occurred_at"]
    window = api.get("/v1/audit/events", params={"since": since, "until": until}, headers=audit_headers).json()
    assert [e["position"] for e in window["events"]] == [4, 5, 6]
    naive = api.get("/v1/audit/events", params={"since": t0.replace("Z", "").replace("+00:00", "")},
                    headers=audit_headers).json()
    assert len(naive["events"]) == 12


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"after": -1}, {"user_id": "bad id"},
                                    {"type": "DROP TABLE"}, {"since": "yesterday"}])
def test_bad_query_parameters_are_a_422(api, audit_headers, params):
    r = api.get("/v1/audit/events", params=params, headers=audit_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"


def test_the_audit_consumer_records_what_the_api_emits(api, ctx, publisher, enroll_headers, audit_headers):
    api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "Pixel"}, headers=enroll_headers)
    for env in publisher.published:
        service.record_in(ctx, env)
    rows = api.get("/v1/audit/events", params={"user_id": "alice"}, headers=audit_headers).json()["events"]
    assert [(r["type"], r["factor"]) for r in rows] == [("enrollment.started", "totp")]
    assert api.get("/v1/audit/verify", headers=audit_headers).json()["checkpoint_position"] == 1


def test_every_operation_declares_the_error_shape(api):
    spec = api.get("/openapi.json").json()
    assert "ErrorOut" in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/v1/"):
                for status in ("401", "403", "422", "429"):
                    ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorOut"), (method, path, status)


def test_the_public_key_is_published_without_an_api_key(api, ctx):
    from services.core.audit.service import verifier_for
    from services.core.audit.signing import parse_public_key

    r = api.get("/v1/audit/public-key")
    assert r.status_code == 200
    body = r.json()
    assert body["algorithm"] == "Ed25519"
    assert parse_public_key(body["public_key"]).key_id == body["key_id"] == verifier_for(ctx).key_id
    assert "PRIVATE" not in r.text


@pytest.mark.parametrize("column,value", [("event_id", "not-a-uuid"), ("occurred_at", "yesterday"),
                                          ("recorded_at", "2026-13-45T99:99:99")])
def test_verify_names_a_row_whose_column_was_garbled_instead_of_failing(api, ctx, chain12, audit_headers,
                                                                          column, value):
    from sqlalchemy import text

    if ctx.engine.dialect.name == "postgresql":
        from services.core.models import AuditEntry
        from sqlalchemy import update
        import uuid
        from datetime import timedelta

        with ctx.sessions.begin() as session:
            row = session.get(AuditEntry, 7)
            edits = {"event_id": uuid.uuid4(), "occurred_at": row.occurred_at + timedelta(seconds=5),
                     "recorded_at": row.recorded_at + timedelta(seconds=5)}
            session.execute(update(AuditEntry).where(AuditEntry.position == 7).values({column: edits[column]}))
    else:
        with ctx.engine.begin() as conn:
            conn.execute(text(f"UPDATE audit_log SET {column} = :v WHERE position = 7"), {"v": value})
    r = api.get("/v1/audit/verify", headers=audit_headers)
    assert r.status_code == 200
    assert (r.json()["ok"], r.json()["first_bad_position"]) == (False, 7)


def test_security_alerts_are_counted_per_type(api, ctx, clock, audit_headers):
    from shared.registry import new_event
    from tests.contract.examples import example

    def record(type_):
        env = new_event(example(type_), user_id="alice", correlation_id="c", occurred_at=clock.now())
        service.record_in(ctx, env.model_dump(mode="json"))

    record("push.fraud_reported")
    clock.advance(3600)
    for type_ in ("push.fraud_reported", "token.locked", "token.locked", "challenge.verified"):
        record(type_)
    r = api.get("/v1/audit/alerts", headers=audit_headers)
    assert r.status_code == 200
    assert r.json()["counts"] == {"push.fraud_reported": 2, "recovery.used": 0, "token.locked": 2,
                                  "sms.send_refused": 0}
    since = clock.now().isoformat().replace("+00:00", "Z")
    counts = api.get("/v1/audit/alerts", params={"since": since}, headers=audit_headers).json()["counts"]
    assert counts == {"push.fraud_reported": 1, "recovery.used": 0, "token.locked": 2, "sms.send_refused": 0}
