"""Bad input on the privacyIDEA-compatible routes: privacyIDEA's error envelope with a 4xx,
never a 5xx, and nothing changed; CORS only where configured."""

from __future__ import annotations

import pytest

from services.core.models import Challenge


def error_of(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["result"]["status"] is False and body["result"]["error"]["code"] == code
    assert isinstance(body["result"]["error"]["code"], int) and body["detail"] is None
    return body


@pytest.mark.parametrize(
    "tid", ["123", "abcdefghijabcdefghij", "1" * 21, "１" * 20, "0" * 19 + "x"]
)
def test_malformed_transaction_ids_are_905(api, ctx, totp_user, tid):
    error_of(
        api.post("/validate/check", data={"user": "alice", "pass": "1", "transaction_id": tid}),
        400,
        905,
    )
    error_of(api.get("/validate/polltransaction", params={"transaction_id": tid}), 400, 905)
    with ctx.sessions() as session:
        assert session.query(Challenge).count() == 0


def test_a_missing_transaction_id_or_user_is_905(api):
    error_of(api.get("/validate/polltransaction"), 400, 905)
    error_of(api.post("/validate/check", data={"pass": "123456"}), 400, 905)


def test_an_unknown_transaction_id_polls_as_pending(api):
    r = api.get("/validate/polltransaction/00000000000000000042")
    assert r.status_code == 200 and r.json()["detail"]["challenge_status"] == "pending"


def test_oversized_values_and_bodies(api):
    error_of(api.post("/validate/check", data={"user": "alice", "pass": "1" * 5000}), 400, 905)
    error_of(api.post("/validate/check", data={f"p{i}": "x" for i in range(100)}), 400, 905)
    r = api.post(
        "/validate/check",
        content=b"user=" + b"a" * 20000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    error_of(r, 413, 413)


def test_wrong_methods_and_bodies_keep_the_envelope(api):
    error_of(api.put("/validate/check", data={"user": "alice"}), 405, 405)
    r = api.post(
        "/validate/check", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    error_of(r, 400, 905)  # an unreadable body is ignored: no user
    r = api.post("/validate/check", json={"user": {"nested": 1}, "pass": ""})
    error_of(r, 400, 905)
    r = api.post(
        "/validate/check",
        content=b"\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400


def test_cors_is_off_by_default_and_only_for_polltransaction(api, ctx, monkeypatch):
    origin = {"Origin": "https://sso.example.org"}
    r = api.get("/validate/polltransaction/00000000000000000042", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    monkeypatch.setattr(
        ctx,
        "settings",
        ctx.settings.model_copy(update={"pi_cors_origins": "https://sso.example.org"}),
    )
    r = api.get("/validate/polltransaction", params={"transaction_id": "0" * 20}, headers=origin)
    assert r.headers["access-control-allow-origin"] == "https://sso.example.org"
    r = api.get("/validate/polltransaction/" + "0" * 20, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = api.options(
        "/validate/polltransaction", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 204 and r.headers["access-control-allow-methods"] == "GET, OPTIONS"
    r = api.post("/validate/check", data={"user": "bob", "pass": ""}, headers=origin)
    assert "access-control-allow-origin" not in r.headers


def test_the_routes_are_in_the_openapi_document(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/validate/check"]) == {"get", "post"}
    assert set(paths["/validate/triggerchallenge"]) == {"get", "post"}
    assert (
        "get" in paths["/validate/polltransaction"]
        and "get" in paths["/validate/polltransaction/{transaction_id}"]
    )
    post = paths["/validate/check"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/json",
    }
    assert "requestBody" not in paths["/validate/check"]["get"]
    assert set(post["responses"]) >= {"200", "400"}
