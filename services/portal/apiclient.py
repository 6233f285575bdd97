"""The portal's only way to the twofa API: JSON over HTTP with the portal's API key.

Every method maps to one endpoint of product.md §6. Errors come back as ``ApiError``
with the API's ``{"error": {"code", "message"}}``; codes, secrets and recovery tokens
travel only in request bodies, never in a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class ApiUnavailable(Exception):
    """The API could not be reached or answered with a 5xx."""


@dataclass(frozen=True)
class RecoveryFile:
    filename: str
    text: str


def _u(user: str) -> str:
    return quote(user, safe="")


class TwofaClient:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @classmethod
    def connect(cls, base_url: str, api_key: str, timeout: float) -> TwofaClient:
        # The long-poll adds its own wait to the read timeout (see ``challenge``).
        return cls(httpx.Client(base_url=base_url, timeout=timeout,
                                headers={"Authorization": f"Bearer {api_key}"}))

    def _call(self, method: str, path: str, *, json: Any = None,
              params: dict[str, Any] | None = None, timeout: float | None = None) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            r = self.http.request(method, path, json=json, params=params, **extra)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(type(exc).__name__) from exc
        if r.status_code >= 500:
            raise ApiUnavailable(f"HTTP {r.status_code}")
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                code, message = str(err["code"]), str(err["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "error", r.reason_phrase
            retry = r.headers.get("Retry-After")
            after = int(retry) if retry and retry.isdigit() else None
            raise ApiError(r.status_code, code, message, after)
        return r

    # -- tokens (scope enroll) ------------------------------------------------------------
    def start_enrollment(self, user: str, type_: str, description: str,
                         phone: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type_, "description": description}
        if phone is not None:
            body["phone"] = phone
        return self._call("POST", f"/v1/users/{_u(user)}/tokens", json=body).json()  # type: ignore[no-any-return]

    def enrollment_step(self, user: str, token_id: str, step: str,
                        code: str | None = None) -> dict[str, Any]:
        assert step in ("scanned", "activate", "confirm")
        body = None if code is None else {"code": code}
        return self._call("POST", f"/v1/users/{_u(user)}/tokens/{_u(token_id)}/{step}",  # type: ignore[no-any-return]
                          json=body).json()

    def token_overview(self, user: str) -> dict[str, Any]:
        """``tokens`` and ``recovery_token_available`` (a recovery file waits to be offered)."""
        return self._call("GET", f"/v1/users/{_u(user)}/tokens").json()  # type: ignore[no-any-return]

    def tokens(self, user: str) -> list[dict[str, Any]]:
        return self.token_overview(user)["tokens"]  # type: ignore[no-any-return]

    def delete_token(self, user: str, token_id: str, code: str | None,
                     verify_token_id: str | None = None, step_up_id: str | None = None) -> None:
        body: dict[str, Any] = {"code": code} if code else {}
        if verify_token_id:
            body["verify_token_id"] = verify_token_id
        if step_up_id:
            body["step_up_id"] = step_up_id
        self._call("DELETE", f"/v1/users/{_u(user)}/tokens/{_u(token_id)}", json=body)

    # -- recovery (scope enroll) ----------------------------------------------------------
    def recovery_file(self, user: str) -> RecoveryFile:
        r = self._call("GET", f"/v1/users/{_u(user)}/recovery-token")
        disposition = r.headers.get("Content-Disposition", "")
        name = ""
        if 'filename="' in disposition:
            name = disposition.split('filename="', 1)[-1].rstrip('"')
        return RecoveryFile(filename=name or "twofa-recovery.txt", text=r.text)

    def redeem_recovery(self, user: str, recovery_token: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/users/{_u(user)}/recovery",  # type: ignore[no-any-return]
                          json={"recovery_token": recovery_token}).json()

    def cancel_enrollment(self, user: str, token_id: str) -> None:
        """An enrollment not finished yet is deleted without a code."""
        self._call("DELETE", f"/v1/users/{_u(user)}/tokens/{_u(token_id)}", json={})

    def resend_enrollment_sms(self, user: str, token_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/users/{_u(user)}/tokens/{_u(token_id)}/sms/resend").json()  # type: ignore[no-any-return]

    def has_recovery(self, user: str) -> bool:
        """Whether the user has a recovery token to reset 2FA with."""
        return bool(self.token_overview(user).get("recovery_token_issued"))

    # -- areas (scope enroll) -------------------------------------------------------------
    def display_names(self) -> dict[str, str]:
        """Each area's name for people (the catalogue's ``slug=Display name``)."""
        return self._call("GET", "/v1/areas").json()["display_names"]  # type: ignore[no-any-return]

    def areas(self, user: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/v1/users/{_u(user)}/areas").json()["areas"]  # type: ignore[no-any-return]

    def set_area(
        self,
        user: str,
        area: str,
        protected: bool,
        code: str | None,
        verify_token_id: str | None = None,
        step_up_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"protected": protected}
        if code:
            body["code"] = code
        if verify_token_id:
            body["verify_token_id"] = verify_token_id
        if step_up_id:
            body["step_up_id"] = step_up_id
        return self._call("PUT", f"/v1/users/{_u(user)}/areas/{_u(area)}", json=body).json()  # type: ignore[no-any-return]

    # -- contact address for security notifications (scope enroll) ------------------------
    def contact(self, user: str) -> str | None:
        return self._call("GET", f"/v1/users/{_u(user)}/contact").json()["email"]  # type: ignore[no-any-return]

    def set_contact(
        self,
        user: str,
        email: str | None,
        code: str | None,
        verify_token_id: str | None = None,
        step_up_id: str | None = None,
    ) -> str | None:
        body: dict[str, Any] = {"email": email}
        if code:
            body["code"] = code
        if verify_token_id:
            body["verify_token_id"] = verify_token_id
        if step_up_id:
            body["step_up_id"] = step_up_id
        return self._call("PUT", f"/v1/users/{_u(user)}/contact", json=body).json()["email"]  # type: ignore[no-any-return]

    def create_step_up(self, user: str, purpose: str, target: str) -> dict[str, Any]:
        """A step-up for deleting token ``target``, changing area ``target`` or (purpose
        ``set_contact``) the contact address."""
        body = {"purpose": purpose}
        if purpose != "set_contact":
            body["token_id" if purpose == "delete_token" else "area"] = target
        return self._call("POST", f"/v1/users/{_u(user)}/step-ups", json=body).json()  # type: ignore[no-any-return]

    # -- the login challenge and step-ups' answers (scope challenge) ----------------------
    def create_challenge(self, user: str, area: str) -> dict[str, Any]:
        return self._call("POST", "/v1/challenges", json={"user_id": user, "area": area}).json()  # type: ignore[no-any-return]

    def select(self, challenge_id: str, token_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/challenges/{_u(challenge_id)}/select",  # type: ignore[no-any-return]
                          json={"token_id": token_id}).json()

    def verify(self, challenge_id: str, code: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/challenges/{_u(challenge_id)}/verify",  # type: ignore[no-any-return]
                          json={"code": code}).json()

    def cover(self, challenge_id: str, answered_challenge_id: str) -> dict[str, Any]:
        """Let the answer to one login challenge count for another area's challenge."""
        return self._call("POST", f"/v1/challenges/{_u(challenge_id)}/cover",  # type: ignore[no-any-return]
                          json={"answered_challenge_id": answered_challenge_id}).json()

    def resend_challenge_sms(self, challenge_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/challenges/{_u(challenge_id)}/sms/resend").json()  # type: ignore[no-any-return]

    def challenge(self, challenge_id: str, wait: int = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        timeout = None if not wait else float(wait) + 10.0
        return self._call("GET", f"/v1/challenges/{_u(challenge_id)}", params=params,  # type: ignore[no-any-return]
                          timeout=timeout).json()

    def close(self) -> None:
        self.http.close()
