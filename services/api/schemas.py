"""Request and response bodies of the v1 API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.challenges.step_up import CONTACT_TARGET
from services.core.factors.base import factor_for
from services.core.models import Token
from services.core.plumbing.clock import as_utc
from services.core.storable import REFUSED, storable
from shared.types import TokenType

Code = Field(min_length=4, max_length=16, pattern=r"^[0-9 ]+$")


class Strict(BaseModel):
    """Every request body: unknown fields and text no database can store are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if not storable(data):
            raise ValueError(REFUSED)
        return data


class EnrollIn(Strict):
    type: Literal["totp", "sms", "push"]
    description: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(None, min_length=3, max_length=32)


class CodeIn(Strict):
    code: str = Code


class StepUpProof(Strict):
    """What a protected action takes: a passed step-up, or (the older way) a code.

    Both optional so that ``{}`` gets 403 step_up_required (or goes through when the user
    has no active token) rather than a schema error."""

    step_up_id: uuid.UUID | None = None
    code: str | None = Field(None, min_length=4, max_length=16, pattern=r"^[0-9 ]+$")
    verify_token_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_proof(self) -> StepUpProof:
        if self.step_up_id is not None and (self.code or self.verify_token_id):
            raise ValueError("give step_up_id or code, not both")
        return self


class DeleteIn(StepUpProof):
    pass


class StepUpIn(Strict):
    """``delete_token`` takes ``token_id``, ``set_area`` takes ``area``, ``set_contact``
    neither (its target is the contact address, ``email``)."""

    purpose: Literal["delete_token", "set_area", "set_contact"]
    token_id: uuid.UUID | None = None
    area: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _target_fits_purpose(self) -> StepUpIn:
        wanted = {"delete_token": {"token_id"}, "set_area": {"area"}}.get(self.purpose, set())
        given = {name for name in ("token_id", "area") if getattr(self, name) is not None}
        if given != wanted:
            takes = " ".join(sorted(wanted)) or "no token_id or area"
            raise ValueError(f"a {self.purpose} step-up takes {takes} (only)")
        return self

    @property
    def target(self) -> str:
        if self.purpose == "delete_token":
            return str(self.token_id)
        return str(self.area) if self.purpose == "set_area" else CONTACT_TARGET


class TokenOut(BaseModel):
    id: uuid.UUID
    type: TokenType
    description: str
    state: str
    serial: str | None = None
    phone: str | None = None
    created_at: datetime
    activated_at: datetime | None = None
    last_used_at: datetime | None = None
    locked: bool = False
    takes_codes: bool = False  # the user can type a code from it (step-up)

    @classmethod
    def of(cls, token: Token) -> TokenOut:
        return cls(
            id=token.id,
            type=token.type,
            description=token.description,
            state=token.state,
            serial=token.serial,
            phone=token.phone_masked,
            created_at=as_utc(token.created_at),
            activated_at=as_utc(token.activated_at) if token.activated_at else None,
            last_used_at=as_utc(token.last_used_at) if token.last_used_at else None,
            locked=token.state == "locked",
            takes_codes=factor_for(token.type).takes_codes,
        )


class EnrollmentOut(BaseModel):
    token: TokenOut
    details: dict[str, Any] = {}


class TokenListOut(BaseModel):
    tokens: list[TokenOut]
    # A recovery token exists (a portal offers "use your recovery token" only then) ...
    recovery_token_issued: bool = False
    # ... and waits for its one download (GET …/recovery-token): offer it.
    recovery_token_available: bool = False


class ChallengeIn(Strict):
    user_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$")
    area: str = Field(min_length=1, max_length=64)
    # Optional: the login in one request. The code is checked at once against a factor
    # whose code exists before a challenge (TOTP): ``token_id``, or the user's oldest.
    code: str | None = Field(default=None, min_length=4, max_length=16, pattern=r"^[0-9 ]+$")
    token_id: uuid.UUID | None = None


class SelectIn(Strict):
    token_id: uuid.UUID


class VerifyIn(Strict):
    code: str = Code
    # Optional: select this (code-ready, e.g. TOTP) factor and verify in one request.
    token_id: uuid.UUID | None = None


class CoverIn(Strict):
    answered_challenge_id: uuid.UUID = Field(
        description="a login challenge of the same user that was verified or approved after "
                    "this one was created"
    )


class FactorOut(BaseModel):
    token_id: uuid.UUID
    type: str
    description: str


class ChallengeOut(BaseModel):
    status: Literal[
        "not_required", "pending", "verified", "approved", "declined", "failed", "expired"
    ]
    challenge_id: uuid.UUID | None = None
    user_id: str | None = None
    area: str | None = None
    purpose: str | None = None  # login, or the action a step-up allows
    target: str | None = None  # a step-up's token id or area
    factors: list[FactorOut] = []
    selected_token_id: uuid.UUID | None = None
    selected_type: str | None = None
    attempts_left: int | None = None
    expires_at: datetime | None = None
    reason: str | None = None
    presence_answer: str | None = None
    details: dict[str, Any] = {}
