"""A relying party that speaks like each privacyIDEA login plugin (pi-validate.md §1, §4.4).

Each ``Plugin`` sends what that plugin sends — its user agent, its body encoding (form
once, form twice, multipart, a raw GET query) — and decides from one response what that
plugin decides: success, challenge or failure. The same client drives twofa and, in the
side-by-side run, privacyIDEA 3.14, over any ``httpx.Client`` (a TestClient or a real
connection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import httpx

Decision = Literal["success", "challenge", "failure"]
Encoding = Literal["once", "java_double", "perl_double", "multipart"]


def _challenges(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list((body.get("detail") or {}).get("multi_challenge") or [])


def _result(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("result") or {}


# §4.4, one rule per plugin family ---------------------------------------------------------


def decide_cp(body: dict[str, Any]) -> Decision:
    r = _result(body)
    if _challenges(body):
        return "challenge"
    auth = r.get("authentication")
    if auth == "ACCEPT" or (
        auth not in ("ACCEPT", "REJECT", "CHALLENGE") and r.get("value") is True
    ):
        return "success"
    return "failure"


def decide_ssp(body: dict[str, Any]) -> Decision:
    r = _result(body)
    if "value" not in r:
        return "failure"
    if _challenges(body):
        return "challenge"
    return "success" if r["value"] and (body.get("detail") or {}).get("user") else "failure"


def decide_java(body: dict[str, Any]) -> Decision:
    r = _result(body)
    if r.get("error"):
        return "failure"
    if _challenges(body):
        return "challenge"
    return "success" if r.get("authentication") == "ACCEPT" or r.get("value") is True else "failure"


def decide_adfs(body: dict[str, Any]) -> Decision:
    r = _result(body)
    auth = str(r.get("authentication") or "").upper()
    if auth in ("ACCEPT", "REJECT", "CHALLENGE"):
        return {"ACCEPT": "success", "CHALLENGE": "challenge"}.get(auth, "failure")  # type: ignore[return-value]
    if _challenges(body):
        return "challenge"
    return "success" if r.get("value") else "failure"


def decide_pam(body: dict[str, Any]) -> Decision:
    r = _result(body)
    value = r.get("value")
    if "error" in r:
        return "failure"
    if not isinstance(value, bool):  # get<bool>() throws
        raise TypeError(f"PAM needs a JSON bool in result.value, got {value!r}")
    if (body.get("detail") or {}).get("transaction_id"):
        return "challenge"
    return "success" if value else "failure"


def decide_pam_python(body: dict[str, Any]) -> Decision:
    r = _result(body)
    if r.get("status") and r.get("value"):
        return "success"
    return "challenge" if (body.get("detail") or {}).get("transaction_id") else "failure"


def decide_freeradius(body: dict[str, Any]) -> Decision:
    r = _result(body)
    if r.get("value"):
        return "success"
    if r.get("status") and (body.get("detail") or {}).get("transaction_id"):
        return "challenge"
    return "failure"


def decide_ldap(body: dict[str, Any]) -> Decision:
    r = _result(body)
    return "success" if r.get("status") and r.get("value") else "failure"


@dataclass(frozen=True)
class Plugin:
    name: str
    user_agent: str
    encoding: Encoding
    decide: Callable[[dict[str, Any]], Decision]
    two_step: bool = True  # answers challenges
    polls: bool = True  # polls a push (else it needs push_wait)
    needs_200: bool = False  # LDAP proxy: anything but HTTP 200 is a failure
    service_account: bool = False  # logs in at /auth and calls /validate/triggerchallenge


PLUGINS = {
    p.name: p
    for p in (
        Plugin("credential-provider", "privacyidea-cp/3.8.0 Windows/WS01", "once", decide_cp),
        Plugin("simplesamlphp", "simpleSAMLphp", "multipart", decide_ssp, service_account=True),
        Plugin(
            "keycloak",
            "privacyIDEA-Keycloak/1.8.0 Keycloak/26.0.5",
            "java_double",
            decide_java,
            service_account=True,
        ),
        Plugin(
            "shibboleth",
            "privacyIDEA-Shibboleth/1.2.0 ShibbolethIdP/5.1.3",
            "java_double",
            decide_java,
            service_account=True,
        ),
        Plugin("adfs", "PrivacyIDEA-ADFS/1.4.0", "once", decide_adfs, service_account=True),
        Plugin("pam", "PAM/1.1.0", "once", decide_pam),
        Plugin("pam-python", "PAM/2.15.0", "once", decide_pam_python, polls=False),
        Plugin("freeradius", "FreeRADIUS", "perl_double", decide_freeradius, polls=False),
        Plugin(
            "ldap-proxy",
            "privacyIDEA-LDAP-Proxy",
            "once",
            decide_ldap,
            two_step=False,
            polls=False,
            needs_200=True,
        ),
    )
}


def encode_value(value: str, encoding: Encoding) -> str:
    """One value as it appears in that plugin's form body or query string."""
    if encoding == "once":  # percent-encoded once (pi-validate.md §7: a space as +)
        return quote_plus(value, safe="")
    if encoding == "java_double":  # URLEncoder.encode, then okhttp's form encoding
        return quote_plus(quote_plus(value, safe="*"), safe="")
    if encoding == "perl_double":  # URI::Encode (%20 for a space), then LWP's form encoding
        return quote_plus(quote(value, safe="-_.~"), safe="")
    raise ValueError(encoding)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    decision: Decision

    @property
    def detail(self) -> dict[str, Any]:
        return self.body.get("detail") or {}

    @property
    def result(self) -> dict[str, Any]:
        return self.body.get("result") or {}

    @property
    def transaction_id(self) -> str | None:
        return self.detail.get("transaction_id")


class PluginClient:
    def __init__(self, http: httpx.Client, plugin: Plugin, base: str = "") -> None:
        self.http, self.plugin, self.base = http, plugin, base.rstrip("/")

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"User-Agent": self.plugin.user_agent, **(extra or {})}

    def _reply(self, response: httpx.Response) -> Reply:
        body = response.json()
        decision = self.plugin.decide(body)
        if self.plugin.needs_200 and response.status_code != 200:
            decision = "failure"
        return Reply(response.status_code, body, decision)

    def post(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> Reply:
        url = self.base + path
        if self.plugin.encoding == "multipart":
            files = {k: (None, v) for k, v in params.items()}
            return self._reply(self.http.post(url, files=files, headers=self._headers(headers)))
        body = "&".join(
            f"{quote_plus(k)}={encode_value(v, self.plugin.encoding)}" for k, v in params.items()
        )
        headers = self._headers(
            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        )
        return self._reply(self.http.post(url, content=body.encode(), headers=headers))

    def get(self, path: str, params: dict[str, str]) -> Reply:
        if self.plugin.encoding == "multipart":  # php-client: ?k=v& concatenated, unencoded
            query = "".join(f"{k}={v}&" for k, v in params.items())
        else:
            query = "&".join(
                f"{quote_plus(k)}={encode_value(v, self.plugin.encoding)}"
                for k, v in params.items()
            )
        return self._reply(self.http.get(f"{self.base}{path}?{query}", headers=self._headers()))

    # the calls plugins make
    def check(self, user: str, passw: str, **extra: str) -> Reply:
        return self.post("/validate/check", {"user": user, "pass": passw, **extra})

    def answer(self, user: str, passw: str, transaction_id: str, **extra: str) -> Reply:
        key = "state" if self.plugin.name == "freeradius" else "transaction_id"
        return self.post(
            "/validate/check", {"user": user, "pass": passw, key: transaction_id, **extra}
        )

    def poll(self, transaction_id: str) -> Reply:
        return self.get("/validate/polltransaction", {"transaction_id": transaction_id})

    def auth(self, username: str, password: str, realm: str = "") -> Reply:
        params = {"username": username, "password": password, **({"realm": realm} if realm else {})}
        return self.post("/auth", params)

    def trigger(self, jwt: str, user: str, **extra: str) -> Reply:
        return self.post(
            "/validate/triggerchallenge", {"user": user, **extra}, {"Authorization": jwt}
        )


def client_for(http: httpx.Client, name: str, base: str = "") -> PluginClient:
    return PluginClient(http, PLUGINS[name], base)
