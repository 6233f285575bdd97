"""The recovery token's whole life through the API: issue, one download, reset, reissue, throttle."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from tests.integration.areas.helpers import enroll_active, events

TOKEN_RE = re.compile(r"\b([0-9A-F]{4}(?:-[0-9A-F]{4}){7})\b")


def download(api: TestClient, headers: dict[str, str], user: str = "alice") -> str:
    r = api.get(f"/v1/users/{user}/recovery-token", headers=headers)
    assert r.status_code == 200, r.text
    [token] = TOKEN_RE.findall(r.text)
    return token


def test_first_token_offers_one_download_with_file_headers(api, enroll_headers, clock, publisher):
    _, _, confirmed = enroll_active(api, enroll_headers, clock)
    assert confirmed["details"]["recovery_token_available"] is True
    assert confirmed["details"]["recovery_token_url"] == "/v1/users/alice/recovery-token"

    r = api.get("/v1/users/alice/recovery-token", headers=enroll_headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-disposition"] == 'attachment; filename="twofa-recovery-alice.txt"'
    assert r.headers["cache-control"] == "no-store"
    [token] = TOKEN_RE.findall(r.text)
    assert "resets two-factor authentication once" in r.text

    again = api.get("/v1/users/alice/recovery-token", headers=enroll_headers)
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "recovery_token_downloaded"

    assert len(events(publisher, "recovery.issued")) == 1
    everything = json.dumps(publisher.published)
    assert token not in everything and token.replace("-", "") not in everything


def test_nothing_to_download_before_a_token_is_active(api, enroll_headers):
    r = api.get("/v1/users/alice/recovery-token", headers=enroll_headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "no_recovery_token"


def test_filename_is_sanitized(api, enroll_headers, clock):
    enroll_active(api, enroll_headers, clock, user="a+b@example.com")
    r = api.get("/v1/users/a+b@example.com/recovery-token", headers=enroll_headers)
    assert r.headers["content-disposition"] == 'attachment; filename="twofa-recovery-a_b_example.com.txt"'


def test_using_it_resets_2fa_once_and_the_next_first_token_issues_a_new_one(
    api, enroll_headers, challenge_headers, clock, publisher
):
    first, _, _ = enroll_active(api, enroll_headers, clock)
    clock.advance(30)
    second, _, _ = enroll_active(api, enroll_headers, clock, description="iPad")
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "half"}, headers=enroll_headers)
    half = r.json()["token"]["id"]
    token = download(api, enroll_headers)

    # lower case and without the separators is the same token
    r = api.post("/v1/users/alice/recovery", json={"recovery_token": token.replace("-", "").lower()}, headers=enroll_headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"reset": True, "tokens_removed": 3}
    assert api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"] == []
    deleted = events(publisher, "token.deleted")
    assert {e["data"]["token_id"] for e in deleted} == {first, second, half}
    assert {e["data"]["reason"] for e in deleted} == {"recovery"}
    used = events(publisher, "recovery.used")
    assert [e["data"]["tokens_removed"] for e in used] == [3]
    assert publisher.types().index("recovery.used") > max(
        i for i, t in enumerate(publisher.types()) if t == "token.deleted"
    )
    # no factor left: the login no longer asks for one (sso stays chosen for later)
    r = api.post("/v1/challenges", json={"user_id": "alice", "area": "sso"}, headers=challenge_headers)
    assert r.json()["status"] == "not_required"

    # the same token never works again, and there is nothing left to download
    r = api.post("/v1/users/alice/recovery", json={"recovery_token": token}, headers=enroll_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_recovery_token"
    assert api.get("/v1/users/alice/recovery-token", headers=enroll_headers).status_code == 404

    # setting up again issues a new recovery token; the old one stays dead
    clock.advance(30)
    _, _, confirmed = enroll_active(api, enroll_headers, clock)
    assert confirmed["details"]["recovery_token_available"] is True
    renewed = download(api, enroll_headers)
    assert renewed != token
    r = api.post("/v1/users/alice/recovery", json={"recovery_token": token}, headers=enroll_headers)
    assert r.status_code == 422
    assert len(events(publisher, "recovery.issued")) == 2


def test_wrong_guesses_are_throttled_with_growing_back_off(api, enroll_headers, clock, publisher):
    enroll_active(api, enroll_headers, clock)
    token = download(api, enroll_headers)
    guess = {"recovery_token": "0000-0000-0000-0000-0000-0000-0000-0000"}
    url = "/v1/users/alice/recovery"
    for _ in range(4):  # three free failures, the fourth starts a 10 s back-off
        r = api.post(url, json=guess, headers=enroll_headers)
        assert r.status_code == 422
    # during the back-off not even the right token is looked at
    r = api.post(url, json={"recovery_token": token}, headers=enroll_headers)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "10"
    assert r.json()["error"]["code"] == "throttled"

    clock.advance(10)
    assert api.post(url, json=guess, headers=enroll_headers).status_code == 422
    r = api.post(url, json=guess, headers=enroll_headers)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "20"  # doubled

    reasons = [e["data"]["reason"] for e in events(publisher, "recovery.failed")]
    assert reasons == ["invalid"] * 4 + ["throttled", "invalid", "throttled"]
    # throttling changed nothing else: the tokens are still there
    assert len(api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"]) == 1

    clock.advance(20)
    r = api.post(url, json={"recovery_token": token}, headers=enroll_headers)
    assert r.status_code == 200, r.text


def test_malformed_recovery_input_is_a_clear_4xx(api, enroll_headers):
    r = api.post("/v1/users/alice/recovery", json={"recovery_token": "<script>"}, headers=enroll_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"
    r = api.post("/v1/users/alice/recovery", json={}, headers=enroll_headers)
    assert r.status_code == 422


def test_a_user_without_a_recovery_token_gets_the_same_refusal(api, enroll_headers, publisher):
    r = api.post("/v1/users/nobody/recovery", json={"recovery_token": "A" * 32}, headers=enroll_headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_recovery_token"
    assert events(publisher, "recovery.failed")[0]["data"]["reason"] == "none_issued"


def test_the_token_list_says_whether_a_recovery_token_exists_and_can_be_downloaded(
        api, enroll_headers, clock):
    def status():
        r = api.get("/v1/users/alice/tokens", headers=enroll_headers)
        assert r.status_code == 200, r.text
        body = r.json()
        return {"issued": body["recovery_token_issued"],
                "downloadable": body["recovery_token_available"]}

    assert status() == {"issued": False, "downloadable": False}
    enroll_active(api, enroll_headers, clock)
    assert status() == {"issued": True, "downloadable": True}
    token = download(api, enroll_headers)
    assert status() == {"issued": True, "downloadable": False}
    assert token not in str(status())
    api.post("/v1/users/alice/recovery", json={"recovery_token": token}, headers=enroll_headers)
    assert status() == {"issued": False, "downloadable": False}
