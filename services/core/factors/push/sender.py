"""Push providers: FCM HTTP v1 through ``pyfcm``, and the console twin for development.

Senders raise only ``TransientProviderError`` (network, timeouts, 429, 5xx: retried by
the Celery task with backoff) or ``PermanentProviderError`` (UNREGISTERED, bad request:
no retry, a ``push.failed`` event). pyfcm's own waiting is bounded (library-notes §4):
a 10 s timeout, a urllib3 Retry of at most 2 tries for 502/503 with short backoff, and
``Retry-After`` handed to the caller instead of slept through inside ``notify()``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import google.auth.transport.requests
import requests
from pyfcm import FCMNotification
from pyfcm.errors import (
    AuthenticationError,
    FCMError,
    FCMNotRegisteredError,
    FCMSenderIdMismatchError,
    FCMServerError,
    InvalidDataError,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from services.core.plumbing.providers.errors import (  # noqa: F401  (re-exported)
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from services.core.plumbing.settings import Settings

log = logging.getLogger(__name__)

FCM_TIMEOUT_SECONDS = 10
MAX_RETRY_AFTER_SECONDS = 60


@dataclass(frozen=True)
class PushMessage:
    device_token: str
    data: dict[str, str]  # the §4 challenge dictionary, all strings
    ttl_seconds: int  # the challenge validity
    title: str
    body: str


class PushSender(Protocol):
    name: str
    # False for the console twin: it "delivers" poll-only tokens' challenges too, so a
    # developer sees every push in the log and the outbox file.
    needs_device_token: bool

    def send(self, message: PushMessage) -> str:
        """Deliver ``message``; return the provider's message id."""


def fcm_envelope(message: PushMessage, now: float) -> dict[str, Any]:
    """privacyIDEA's FirebaseProvider envelope (§4), with FCM TTL = challenge validity."""
    return {
        "android_config": {"priority": "HIGH", "ttl": f"{message.ttl_seconds}s"},
        "apns_config": {
            "headers": {
                "apns-priority": "10",
                "apns-push-type": "alert",
                "apns-collapse-id": "privacyidea.pushtoken",
                "apns-expiration": str(int(now) + message.ttl_seconds),
            },
            "payload": {"aps": {"category": "PUSH_AUTHENTICATION"}},
        },
    }


class _BoundedFCM(FCMNotification):  # type: ignore[misc]  # pyfcm is untyped
    """pyfcm with a configurable endpoint and no unbounded waits inside ``notify()``."""

    FCM_END_POINT_BASE = "https://fcm.googleapis.com/v1/projects"
    # pyfcm loads the credentials on first use and then forgets the file's path; two of the
    # worker's threads starting at once could both pass its "not loaded yet" check, and the
    # second then opened a path of None (TypeError, the push lost). One thread loads.
    _credentials_lock = threading.Lock()

    def _initialize_credentials(self) -> None:
        with self._credentials_lock:
            if self.credentials is None:
                super()._initialize_credentials()

    def _get_access_token(self) -> str:
        # pyfcm's own version waits up to google-auth's 120 s default and reports any
        # failure as InvalidDataError (permanent); the OAuth endpoint being down is not.
        if self.credentials is None:
            self._initialize_credentials()
        try:
            self.credentials.refresh(_TimedRequest())
        except Exception as exc:  # google-auth raises its own, transport-specific errors
            raise TransientProviderError(f"OAuth token refresh failed: {type(exc).__name__}",
                                         reason="oauth") from exc
        return str(self.credentials.token)

    def send_request(self, payload: Any = None, timeout: Any = None) -> requests.Response:
        response: requests.Response = self.requests_session.post(
            self.fcm_end_point, data=payload, timeout=timeout
        )
        if response.status_code == 401 and self._is_access_token_expired(response):
            self.thread_local.token_expiry = 0  # one fresh token, one resend: no loop
            response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        if response.status_code == 429 or (
            response.status_code >= 500 and "Retry-After" in response.headers
        ):
            raise TransientProviderError(
                f"FCM answered {response.status_code}",
                reason=f"http_{response.status_code}",
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        return response


class _TimedRequest(google.auth.transport.requests.Request):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = min(kwargs.get("timeout") or FCM_TIMEOUT_SECONDS, FCM_TIMEOUT_SECONDS)
        return super().__call__(*args, **kwargs)  # type: ignore[no-untyped-call]


def _retry_after(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(int(value), MAX_RETRY_AFTER_SECONDS)


class FcmSender:
    """FCM HTTP v1 with a service account; one pyfcm client per process, made lazily
    (after the worker fork); pyfcm keeps its session per thread."""

    name = "fcm"
    needs_device_token = True

    def __init__(self, credentials_file: Path, api_url: str) -> None:
        self._credentials_file = credentials_file
        self._endpoint_base = api_url.rstrip("/") + "/v1/projects"
        self._client: _BoundedFCM | None = None
        self._lock = threading.Lock()

    def _fcm(self) -> _BoundedFCM:
        with self._lock:
            if self._client is None:
                retry = Retry(total=2, backoff_factor=0.25, backoff_max=1,
                              status_forcelist=[502, 503], allowed_methods=None,
                              respect_retry_after_header=False, raise_on_status=False)
                cls = type("LocalFCM", (_BoundedFCM,), {"FCM_END_POINT_BASE": self._endpoint_base})
                self._client = cls(service_account_file=str(self._credentials_file),
                                   adapter=HTTPAdapter(max_retries=retry))
            return self._client

    def send(self, message: PushMessage) -> str:
        try:
            result = self._fcm().notify(
                fcm_token=message.device_token,
                notification_title=message.title,
                notification_body=message.body,
                data_payload=message.data,
                timeout=FCM_TIMEOUT_SECONDS,
                **fcm_envelope(message, time.time()),
            )
        except TransientProviderError:
            raise
        except FCMNotRegisteredError as exc:
            raise PermanentProviderError("FCM: device token not registered", reason="unregistered",
                                         unregistered=True) from exc
        except (InvalidDataError, FCMSenderIdMismatchError) as exc:
            raise PermanentProviderError(f"FCM refused the message: {type(exc).__name__}",
                                         reason="invalid") from exc
        except (FCMServerError, AuthenticationError) as exc:
            raise TransientProviderError(f"FCM: {type(exc).__name__}", reason="server") from exc
        except (requests.RequestException, FCMError, OSError) as exc:
            raise TransientProviderError(f"FCM unreachable: {type(exc).__name__}",
                                         reason="network") from exc
        return str(result.get("name", "")) if isinstance(result, dict) else ""


class ConsolePushSender:
    """Development twin: the data message goes to the log (without nonce and signatures)
    and, in full, as one JSON line to ``var/outbox/push.log`` for a developer to read."""

    name = "console"
    needs_device_token = False
    HIDDEN = ("nonce", "signature", "capabilities_signature")

    def __init__(self, outbox_dir: Path) -> None:
        self._path = outbox_dir / "push.log"
        self._lock = threading.Lock()
        self._count = 0

    def send(self, message: PushMessage) -> str:
        shown = {k: v for k, v in message.data.items() if k not in self.HIDDEN}
        log.info("console push to serial %s: %s", message.data.get("serial"), json.dumps(shown))
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as fh:
                line = {"ttl_seconds": message.ttl_seconds, "data": message.data}
                fh.write(json.dumps(line) + "\n")
            self._count += 1
            return f"console/{self._count}"


def sender_from_settings(settings: Settings) -> PushSender:
    if settings.push_provider == "fcm":
        if settings.fcm_credentials_file is None:
            raise ValueError("TWOFA_PUSH_PROVIDER=fcm needs TWOFA_FCM_CREDENTIALS_FILE")
        return FcmSender(settings.fcm_credentials_file, settings.fcm_api_url)
    return ConsolePushSender(settings.var_dir / "outbox")
