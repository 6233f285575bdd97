"""What committed events count as, the log formats, and a task's correlation id."""

from __future__ import annotations

import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.core.plumbing import logs, metrics
from services.core.plumbing.settings import Settings
from services.workers.observability import correlation_of


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def envelope(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": str(uuid.uuid4()), "correlation_id": "c-1", "data": data}


@pytest.mark.parametrize(
    ("kind", "data", "family", "labels"),
    [
        ("challenge.verified", {"area": "sso", "token_type": "totp"},
         "twofa_logins_total", {"factor": "totp", "outcome": "success"}),
        ("challenge.approved", {"area": "sso", "token_type": "push"},
         "twofa_logins_total", {"factor": "push", "outcome": "success"}),
        ("challenge.failed", {"area": "sso", "token_type": "sms", "reason": "exhausted"},
         "twofa_logins_total", {"factor": "sms", "outcome": "exhausted"}),
        ("challenge.expired", {"area": "sso"},
         "twofa_logins_total", {"factor": "none", "outcome": "expired"}),
        # step-ups answered with any factor count as step-ups, not logins
        ("challenge.verified", {"area": "step_up", "token_type": "sms"},
         "twofa_step_ups_total", {"factor": "sms", "outcome": "success"}),
        ("challenge.approved", {"area": "step_up", "token_type": "push"},
         "twofa_step_ups_total", {"factor": "push", "outcome": "success"}),
        ("challenge.declined", {"area": "step_up", "token_type": "push", "reason": "declined"},
         "twofa_step_ups_total", {"factor": "push", "outcome": "declined"}),
    ],
)
def test_challenge_outcomes_count_by_purpose_factor_and_outcome(
    kind: str, data: dict[str, Any], family: str, labels: dict[str, str]
) -> None:
    other = "twofa_step_ups_total" if family == "twofa_logins_total" else "twofa_logins_total"
    before, before_other = count(family, **labels), count(other, **labels)
    metrics.observe_events([envelope(kind, **data)])
    assert count(family, **labels) == before + 1
    assert count(other, **labels) == before_other


def test_delivery_events_count_as_sms_and_push_outcomes() -> None:
    wanted = [("twofa_sms_total", "sent"), ("twofa_sms_total", "delivered"),
              ("twofa_sms_total", "failed"), ("twofa_sms_total", "undeliverable"),
              ("twofa_push_total", "sent"), ("twofa_push_total", "answered"),
              ("twofa_push_total", "declined"), ("twofa_push_total", "fraud_reported")]
    before = {w: count(w[0], outcome=w[1]) for w in wanted}
    metrics.observe_events([
        envelope("sms.sent"), envelope("sms.delivered"), envelope("sms.failed"),
        envelope("challenge.failed", area="sso", token_type="sms", reason="undeliverable"),
        envelope("push.sent"), envelope("push.fraud_reported"),
        envelope("challenge.approved", area="sso", token_type="push"),
        envelope("challenge.declined", area="sso", token_type="push", reason="unknown_trigger"),
    ])
    assert {w: count(w[0], outcome=w[1]) - before[w] for w in wanted} == dict.fromkeys(wanted, 1)


def test_challenge_events_that_are_no_outcome_count_only_as_events() -> None:
    before = count("twofa_events_total", type="challenge.created")
    logins = sum(s.value for m in REGISTRY.collect() if m.name == "twofa_logins"
                 for s in m.samples)
    metrics.observe_events([envelope("challenge.created", area="sso")])
    assert count("twofa_events_total", type="challenge.created") == before + 1
    assert sum(s.value for m in REGISTRY.collect() if m.name == "twofa_logins"
               for s in m.samples) == logins


def capture(settings: Settings) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.CorrelationFilter())
    handler.setFormatter(logs.formatter(settings.logs_as_json))
    logger = logging.getLogger(f"test.obs.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, out


def test_production_logs_are_json_lines_with_the_correlation_id() -> None:
    settings = Settings(env="test", log_format="json")
    logger, out = capture(settings)
    with logs.correlation("req-1"):
        logger.info("sent %d message(s)", 2)
    logger.warning("outside")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "sent 2 message(s)" and first["correlation_id"] == "req-1"
    assert first["level"] == "INFO" and first["logger"].startswith("test.obs.")
    assert {"time", "process_name"} <= set(first)
    assert second["correlation_id"] == "-"


def test_development_logs_are_text_and_production_defaults_to_json() -> None:
    assert not Settings(env="dev").logs_as_json
    assert Settings(env="dev", log_format="json").logs_as_json
    logger, out = capture(Settings(env="dev"))
    with logs.correlation("req-2"):
        logger.info("hello")
    assert "[req-2]: hello" in out.getvalue()


def test_a_task_takes_the_correlation_id_of_its_event() -> None:
    assert correlation_of(({"correlation_id": "abc-1", "type": "x"},)) == "abc-1"
    assert correlation_of(([{"correlation_id": "b"}, {"correlation_id": "b"}],)) == "b"
    assert correlation_of(([{"correlation_id": "b"}, {"correlation_id": "c"}],)) is None
    assert correlation_of(({"correlation_id": "bad id\n"},)) is None
    assert correlation_of(("subscription-id",)) is None
    assert correlation_of(()) is None


def test_production_refuses_a_loopback_or_missing_public_url(tmp_path: Path) -> None:
    (tmp_path / "fcm.json").write_text("{}")
    base: dict[str, Any] = dict(env="prod", encryption_keys="k", audit_signing_key="a",
                                sms_provider="twilio", push_provider="fcm",
                                fcm_credentials_file=tmp_path / "fcm.json",
                                twilio_account_sid="AC1", twilio_auth_token="t",
                                twilio_from_number="+15005550006", broker_url="redis://r:6379/0")
    for url in (None, "http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]/",
                "http://0.0.0.0:8000"):
        extra = {} if url is None else {"public_url": url}
        with pytest.raises(ValueError, match="TWOFA_PUBLIC_URL"):
            Settings(**base, **extra)
    assert Settings(**base, public_url="https://2fa.example.org").public_url


def test_fcm_without_its_credentials_file_is_named_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fcm needs TWOFA_FCM_CREDENTIALS_FILE"):
        Settings(env="test", push_provider="fcm")
    with pytest.raises(ValueError, match="is not a file"):
        Settings(env="test", push_provider="fcm", fcm_credentials_file=tmp_path / "missing.json")


def test_the_database_password_is_url_encoded_into_the_url() -> None:
    from sqlalchemy.engine import make_url

    s = Settings(env="test", database_url="postgresql+psycopg://twofa@db:5432/twofa",
                 database_password="p@ss/w:rd%?#")
    url = make_url(s.resolved_database_url)
    assert url.password == "p@ss/w:rd%?#" and url.host == "db" and url.database == "twofa"
    assert "p@ss/w:rd%?#" not in s.resolved_database_url
