"""The Kubernetes manifests (infra/k8s) and docker-compose.yml, checked offline.

The production overlay is rendered by the small subset of Kustomize it uses (resources,
namespace, images, replicas, a merging configMapGenerator); every resource of the Kubernetes
API is validated against the API schemas of kubernetes-validate (no cluster, no network); the
KEDA ScaledObjects, a CRD those schemas do not have, are checked against what they scale.
Every environment variable a manifest or compose sets must be a setting twofa reads.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.core.plumbing.messaging.routes import QUEUES
from services.core.plumbing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
# The oldest Kubernetes minor still in wide use, and the newest the package knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CRDS = {("keda.sh/v1alpha1", "ScaledObject")}


def setting_names() -> set[str]:
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(c) for c in choices)
        else:
            names.add(f"TWOFA_{field_name.upper()}")
    return names


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(directory: Path) -> list[dict[str, Any]]:
    """The Kustomize features these manifests use, nothing more (an unknown key fails)."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "resources", "namespace", "images", "replicas",
             "configMapGenerator", "labels"}
    assert set(k) <= known, f"{directory}: render() does not know {set(k) - known}"
    docs: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        target = directory / entry
        docs.extend(render(target) if target.is_dir() else load(target))
    docs = copy.deepcopy(docs)
    for gen in k.get("configMapGenerator", []):
        assert gen.get("behavior") == "merge"
        (cm,) = [d for d in docs
                 if d["kind"] == "ConfigMap" and d["metadata"]["name"] == gen["name"]]
        cm["data"].update(dict(item.split("=", 1) for item in gen["literals"]))
    for label in k.get("labels", []):
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(label["pairs"])
    for d in docs:
        if "namespace" in k and d["kind"] != "Namespace":
            d["metadata"]["namespace"] = k["namespace"]
        for r in k.get("replicas", []):
            if d["kind"] == "Deployment" and d["metadata"]["name"] == r["name"]:
                d["spec"]["replicas"] = r["count"]
        for pod in pod_specs([d]):
            for c in pod["containers"]:
                for image in k.get("images", []):
                    if c["image"].split(":")[0] == image["name"]:
                        c["image"] = f"{image['newName']}:{image['newTag']}"
    return docs


def pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(K8S / "base")


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render(K8S / "overlays" / "production")


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_validates_against_the_kubernetes_schemas(
    production: list[dict[str, Any]], version: str
) -> None:
    checked = 0
    for doc in production:
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 15


def test_a_broken_manifest_is_refused() -> None:
    """The validator is not a formality: a misspelt field fails."""
    doc = load(K8S / "base" / "relay.yaml")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)


def test_a_deployment_per_process_type_with_probes_limits_and_no_root(
    production: list[dict[str, Any]],
) -> None:
    deployments = by_kind(production, "Deployment")
    assert set(deployments) == {"twofa-api", "twofa-relay"} | {f"twofa-worker-{q}" for q in QUEUES}
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name
            assert "livenessProbe" in c and "startupProbe" in c, name
            assert c["image"] == "registry.example.org/twofa:0.1.0", name
            assert {"mountPath": "/tmp", "name": "tmp"} in c["volumeMounts"], name
        if name != "twofa-api":
            (c,) = pod["containers"]
            assert c["args"][-4:] == ["--metrics-host", "0.0.0.0", "--metrics-port", "9100"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        if name.startswith("twofa-worker-"):
            queue = name.removeprefix("twofa-worker-")
            (c,) = pod["containers"]
            assert c["args"][c["args"].index("--queues") + 1] == queue
    api = deployments["twofa-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployments["twofa-api"]["spec"]["replicas"] == 3  # the overlay's
    audit = deployments["twofa-worker-audit"]["spec"]
    assert audit["replicas"] == 1 and audit["strategy"]["type"] == "Recreate"


def test_the_migrate_job_services_and_disruption_budgets(
    production: list[dict[str, Any]],
) -> None:
    (job,) = by_kind(production, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert by_kind(production, "Service")["twofa-api"]["spec"]["ports"][0]["targetPort"] == "http"
    budgets = by_kind(production, "PodDisruptionBudget")
    deployments = by_kind(production, "Deployment")
    assert {"twofa-api", "twofa-worker-sms", "twofa-worker-push"} <= set(budgets)
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    namespaced = [d for d in production if d["kind"] != "Namespace"]
    assert all(d["metadata"]["namespace"] == "twofa" for d in namespaced)


def test_secrets_are_referenced_never_written(production: list[dict[str, Any]]) -> None:
    assert not by_kind(production, "Secret")
    secret_vars = {"TWOFA_DATABASE_PASSWORD", "TWOFA_ENCRYPTION_KEYS", "TWOFA_AUDIT_SIGNING_KEY",
                   "TWILIO_AUTH_TOKEN", "TWOFA_METRICS_TOKEN", "VONAGE_API_SECRET",
                   "VONAGE_SIGNATURE_SECRET"}
    for pod in pod_specs(production):
        for c in pod["containers"]:
            env = {e["name"]: e for e in c.get("env", [])}
            assert secret_vars <= set(env)
            for name in secret_vars:
                assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"]
    config = by_kind(production, "ConfigMap")["twofa-config"]["data"]
    assert not secret_vars & set(config)
    assert ":" not in config["TWOFA_DATABASE_URL"].split("@")[0].split("//")[1]  # no password


def test_keda_scales_the_sms_and_push_workers_on_their_queues_and_an_hpa_the_api(
    production: list[dict[str, Any]],
) -> None:
    deployments = by_kind(production, "Deployment")
    scaled = by_kind(production, "ScaledObject")
    assert set(scaled) == {"twofa-worker-sms", "twofa-worker-push"}
    broker = by_kind(production, "ConfigMap")["twofa-config"]["data"]["TWOFA_BROKER_URL"]
    host, db = re.fullmatch(r"redis://([^/]+)/(\d+)", broker).groups()  # type: ignore[union-attr]
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] == name and name in deployments
        (trigger,) = obj["spec"]["triggers"]
        queue = name.removeprefix("twofa-worker-")
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue
        assert trigger["metadata"]["address"] == host
        assert trigger["metadata"]["databaseIndex"] == db
        assert int(trigger["metadata"]["listLength"]) > 0
        assert 0 < obj["spec"]["minReplicaCount"] <= obj["spec"]["maxReplicaCount"]
    (hpa,) = by_kind(production, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "twofa-api"
    targets = {hpa["spec"]["scaleTargetRef"]["name"]} | set(scaled)
    assert "twofa-worker-audit" not in targets  # the chain has one writer


def env_names(production: list[dict[str, Any]]) -> set[str]:
    names = set(by_kind(production, "ConfigMap")["twofa-config"]["data"])
    for pod in pod_specs(production):
        for c in pod["containers"]:
            names.update(e["name"] for e in c.get("env", []))
    return names


def test_every_variable_the_manifests_set_is_a_setting(production: list[dict[str, Any]]) -> None:
    unknown = env_names(production) - setting_names()
    assert not unknown, f"not read by twofa: {sorted(unknown)}"


def test_the_manifests_settings_pass_production_validation(
    production: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The ConfigMap plus stand-ins for the Secrets is a configuration TWOFA_ENV=prod accepts."""
    config = dict(by_kind(production, "ConfigMap")["twofa-config"]["data"])
    fcm = tmp_path / "fcm.json"
    fcm.write_text("{}")
    config.update(TWOFA_FCM_CREDENTIALS_FILE=str(fcm), TWOFA_ENCRYPTION_KEYS="k",
                  TWOFA_AUDIT_SIGNING_KEY="a", TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t",
                  TWILIO_FROM_NUMBER="+15005550006", TWOFA_DATABASE_PASSWORD="p@ss:w/rd",
                  VONAGE_API_KEY="k", VONAGE_API_SECRET="s", VONAGE_SIGNATURE_SECRET="sig",
                  VONAGE_FROM="twofa")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in config.items():
            mp.setenv(k, v)
        settings = Settings()
    assert settings.env == "prod" and not settings.is_dev and settings.logs_as_json
    assert settings.sms_provider_names == ("twilio", "vonage")


def test_every_variable_compose_sets_is_a_setting() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-twofa-env"]
    unknown = set(env) - setting_names()
    assert not unknown, f"not read by twofa: {sorted(unknown)}"
    assert "${TWOFA_PUBLIC_URL:?" in (ROOT / "docker-compose.yml").read_text()
    assert compose["services"]["postgres"]["image"] == "postgres:15"
