"""The alert rules and the Grafana dashboard (infra/monitoring) use only metrics that twofa's
processes export, with labels those metrics have; every alert has a runbook in
docs/operations.md. The exported names are read from the processes' own collectors: the metric
families every process may move, and the relay's state collector run against a database and
a broker."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from services.cli.embedded_broker import EmbeddedBroker
from services.core.models import AuditCheckpoint
from services.core.plumbing import metrics, state_metrics
from services.core.plumbing.context import Context
from services.core.plumbing.state_metrics import StateCollector

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "infra" / "monitoring"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",), "summary": ("_sum", "_count")}
METRIC = re.compile(r"\b(twofa_[a-z0-9_]+)\b(\{[^}]*\})?")
BY = re.compile(r"\bby\s*\(([^)]*)\)")



@pytest.fixture
def exported(ctx: Context, broker: EmbeddedBroker) -> dict[str, set[str]]:
    """Sample name -> its label names, for everything a twofa process exports."""
    with ctx.sessions.begin() as session:  # a checkpoint, so that its age is reported
        session.add(AuditCheckpoint(position=1, hash="0" * 64, key_id="k", signature="s",
                                    signed_at=ctx.clock.now() - timedelta(seconds=5)))
    settings = ctx.settings.model_copy(update={"broker_url": broker.url})
    families = [*REGISTRY.collect(), *StateCollector(settings, ctx.engine).collect()]
    out: dict[str, set[str]] = {}
    for family in families:
        labels = {label for s in family.samples for label in s.labels}
        labels |= set(getattr(_registered(family.name), "_labelnames", ()))
        for suffix in SUFFIXES.get(family.type, ("",)):
            out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def _registered(name: str) -> Any:
    """The metric object of a family (its label names, also before any sample exists)."""
    for module in (metrics, state_metrics):
        for attr in vars(module).values():
            if getattr(attr, "_name", None) == name:
                return attr
    return None


def expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    out = [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    out += [(f"panel {p['title']}", t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    return out


def check(where: str, expr: str, exported: dict[str, set[str]]) -> list[str]:
    problems = []
    used = METRIC.findall(expr)
    if not used:
        problems.append(f"{where}: uses no twofa metric")
    labels_of_expr: set[str] = set()
    for name, selector in used:
        if name not in exported:
            problems.append(f"{where}: {name} is not exported")
            continue
        labels_of_expr |= exported[name]
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", selector or ""):
            if label not in exported[name]:
                problems.append(f"{where}: {name} has no label {label}")
    for group in BY.findall(expr):
        for label in filter(None, (x.strip() for x in group.split(","))):
            if label not in labels_of_expr:
                problems.append(f"{where}: groups by {label}, which its metrics lack")
    if expr.count("(") != expr.count(")"):
        problems.append(f"{where}: unbalanced parentheses")
    return problems


def test_alerts_and_dashboard_use_only_exported_metrics_and_labels(
    exported: dict[str, set[str]],
) -> None:
    found = expressions()
    assert len(found) > 20
    problems = [p for where, expr in found for p in check(where, expr, exported)]
    assert problems == []


def test_the_check_catches_a_name_or_label_that_does_not_exist(
    exported: dict[str, set[str]],
) -> None:
    assert check("x", "rate(twofa_logins_total[5m])", exported) == []
    assert check("x", "rate(twofa_login_total[5m])", exported) == [
        "x: twofa_login_total is not exported"]
    assert check("x", 'sum by (queue) (twofa_sms_total{kind="a"})', exported) == [
        "x: twofa_sms_total has no label kind", "x: groups by queue, which its metrics lack"]


def test_every_alert_is_complete_and_has_a_runbook() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    wanted = {"TwofaOutboxBacklogGrowing", "TwofaQueueMessageTooOld", "TwofaSmsFailureRate",
              "TwofaAuditLag", "TwofaAuditCheckpointTooOld", "Twofa5xxRate", "TwofaNotReady"}
    assert wanted <= {a["alert"] for a in alerts}
    guide = (ROOT / "docs" / "operations.md").read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", guide, re.M)}
    for alert in alerts:
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert alert["for"] and alert["annotations"]["summary"], alert["alert"]
        anchor = alert["annotations"]["runbook"].removeprefix("docs/operations.md#")
        assert anchor == alert["alert"].lower() and anchor in headings, alert["alert"]


def test_the_state_collector_reports_every_queue(exported: dict[str, set[str]]) -> None:
    assert {"twofa_queue_depth", "twofa_queue_oldest_age_seconds", "twofa_outbox_unpublished",
            "twofa_audit_lag_events", "twofa_audit_checkpoint_age_seconds"} <= set(exported)
