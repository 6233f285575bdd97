"""The portal's own configuration (``TWOFA_PORTAL_*``), read once at its composition root.

Separate from the API's ``Settings`` on purpose: the portal is a client of the API and
could run on another machine with nothing but these variables.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWOFA_PORTAL_", extra="ignore", frozen=True)

    # Shared with the API's variables on purpose: same environment name, same var dir.
    env: str = Field("dev", validation_alias=AliasChoices("TWOFA_ENV", "env"))
    var_dir: Path = Field(Path("var"), validation_alias=AliasChoices("TWOFA_VAR_DIR", "var_dir"))

    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None
    api_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # The portal's own account table (the demo first factor); not the API's database.
    database_url: str = ""
    secret_key: SecretStr | None = None
    base_path: str = Field("/portal", pattern=r"^(/[a-z0-9_-]+)+$")
    login_area: str = "sso"
    security_area: str = "portal-security"
    # None: Secure cookies outside dev/test; set true behind https in dev too.
    secure_cookies: bool | None = None
    session_max_age_seconds: int = Field(3600, ge=60, le=86400)
    push_wait_seconds: int = Field(25, ge=1, le=30)

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> PortalSettings:
        if self.is_dev:
            return self
        problems = []
        if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
            problems.append("TWOFA_PORTAL_SECRET_KEY (at least 32 characters) is required")
        if self.api_key is None:
            problems.append("TWOFA_PORTAL_API_KEY is required")
        if problems:
            raise ValueError(f"TWOFA_ENV={self.env} refuses: " + "; ".join(problems))
        return self

    @property
    def is_dev(self) -> bool:
        return self.env in ("dev", "test")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'portal.db').resolve()}"

    @property
    def cookie_secure(self) -> bool:
        return (not self.is_dev) if self.secure_cookies is None else self.secure_cookies

    def session_secret(self) -> str:
        """The configured key; in dev a random one per process (sessions end on restart)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return secrets.token_urlsafe(32)
