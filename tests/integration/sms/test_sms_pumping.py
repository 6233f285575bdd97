"""SMS pumping: destinations outside the allow-list and service-wide caps are refused with a
clear 4xx, change nothing, and leave an ``sms.send_refused`` alert behind."""

from __future__ import annotations

import pytest

from services.core.plumbing.settings import Settings
from tests.conftest import make_settings
from tests.integration.sms.conftest import events

FR = "+33612345678"
DE = "+4915112345678"


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return make_settings(tmp_path, database_url, sms_allowed_countries="de, at",
                         sms_global_max_per_hour=4, sms_country_max_per_hour=3, sms_daily_quota=2)


def enroll(api, headers, phone, user="alice"):
    return api.post(f"/v1/users/{user}/tokens", json={"type": "sms", "description": "phone", "phone": phone},
                    headers=headers)


def test_a_destination_outside_the_allow_list_is_refused_with_an_alert(api, enroll_headers, publisher):
    r = enroll(api, enroll_headers, FR)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "sms_country_not_allowed")
    assert api.get("/v1/users/alice/tokens", headers=enroll_headers).json()["tokens"] == []
    assert [e["type"] for e in publisher.published] == ["sms.send_refused"]  # the enrollment rolled back
    (alert,) = events(publisher, "sms.send_refused")
    assert alert["data"]["reason"] == "country_not_allowed" and alert["data"]["country"] == "FR"
    assert alert["user_id"] == "alice" and FR not in str(alert)


def test_the_country_and_the_service_caps_per_hour(api, enroll_headers, publisher, clock):
    for i in range(3):
        assert enroll(api, enroll_headers, f"+49151123456{i:02d}", user=f"user{i}").status_code == 201
    r = enroll(api, enroll_headers, "+4915112345699", user="user9")
    assert (r.status_code, r.json()["error"]["code"]) == (429, "sms_country_cap_reached")
    assert int(r.headers["Retry-After"]) == 3600
    assert enroll(api, enroll_headers, "+436641234567", user="austria").status_code == 201  # 4th SMS, AT
    r = enroll(api, enroll_headers, "+436641234568", user="austria2")
    assert (r.status_code, r.json()["error"]["code"]) == (429, "sms_global_cap_reached")
    assert [e["data"]["reason"] for e in events(publisher, "sms.send_refused")] == ["country_cap", "global_cap"]
    clock.advance(3601)
    assert enroll(api, enroll_headers, "+4915112345699", user="user9").status_code == 201


def test_a_reached_daily_quota_is_an_alert(api, enroll_headers, publisher, clock):
    token = enroll(api, enroll_headers, DE).json()["token"]
    clock.advance(60)  # past the resend interval
    resend = f"/v1/users/alice/tokens/{token['id']}/sms/resend"
    assert api.post(resend, headers=enroll_headers).status_code == 202
    clock.advance(60)
    r = api.post(resend, headers=enroll_headers)
    assert (r.status_code, r.json()["error"]["code"]) == (429, "sms_quota_exceeded")
    (alert,) = events(publisher, "sms.send_refused")
    assert alert["data"]["reason"] == "user_quota"


def test_every_country_may_be_allowed(tmp_path, database_url):
    assert make_settings(tmp_path, database_url, sms_allowed_countries="*").sms_country_set is None
    assert "DE" in make_settings(tmp_path, database_url).sms_country_set
    with pytest.raises(ValueError):
        make_settings(tmp_path, database_url, sms_allowed_countries="Germany")
