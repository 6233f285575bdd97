"""The audit log for auditors (scope ``audit:read``): paged rows and chain verification;
and, for anyone, the public key that verifies its signed checkpoints.

``GET /v1/audit/verify`` answers 200 whether or not the chain is intact: the request
succeeded, and its answer is ``ok: false`` with the first bad position. A 5xx would
say the verifier broke, a 4xx that the auditor asked wrongly; neither is true of a
tampered log, and monitoring can alert on ``ok`` alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from services.api.deps import USER_ID_PATTERN, Ctx, require
from services.api.errors import ERROR_RESPONSES
from services.core.audit import alerts, query
from services.core.audit.service import verifier_for
from services.core.audit.verify import verify_chain

router = APIRouter(
    prefix="/v1/audit", tags=["audit"], dependencies=[Depends(require("audit:read"))],
    responses=ERROR_RESPONSES,
)
# A public key is meant to be handed out: outsiders verify with it and nothing else.
public_router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)


class AuditRowOut(BaseModel):
    position: int
    hash: str
    prev_hash: str
    recorded_at: datetime
    event_id: str
    type: str
    user_id: str | None
    occurred_at: datetime
    factor: str | None
    outcome: str | None
    envelope: dict[str, Any]


class AuditPageOut(BaseModel):
    events: list[AuditRowOut]
    next_after: int | None  # pass as ``after`` for the next page; null on the last page


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad_position: int | None
    problem: str | None
    head_position: int | None
    checkpoint_position: int | None
    checkpoints_checked: int


class AlertsOut(BaseModel):
    since: datetime | None
    counts: dict[str, int]  # every alert type, zeros included


class PublicKeyOut(BaseModel):
    algorithm: str
    key_id: str
    public_key: str  # PEM (SubjectPublicKeyInfo)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/events", response_model=AuditPageOut)
def events(
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62, description="last position already read")] = 0,
    limit: Annotated[int, Query(ge=1, le=query.MAX_PAGE)] = 100,
    user_id: Annotated[str | None, Query(pattern=USER_ID_PATTERN, max_length=128)] = None,
    type: Annotated[str | None, Query(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="occurred_at at or after (UTC if naive)")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="occurred_at before (UTC if naive)")
    ] = None,
) -> AuditPageOut:
    where = query.AuditFilter(user_id=user_id, type=type, since=_utc(since), until=_utc(until))
    with ctx.sessions() as session:
        rows = query.page(session, after=after, limit=limit, where=where)
        out = [AuditRowOut(**query.row_dict(r)) for r in rows]
    return AuditPageOut(events=out, next_after=out[-1].position if len(out) == limit else None)


@router.get(
    "/verify",
    response_model=VerifyOut,
    description="Recomputes every hash and checks the latest signed checkpoint. "
    "A tampered log is still a 200, with ok=false and the first bad position.",
)
def verify(ctx: Ctx) -> VerifyOut:
    verifier = verifier_for(ctx)
    with ctx.sessions() as session:
        result = verify_chain(session, verifier)
    return VerifyOut(**result.as_dict())


@router.get(
    "/alerts",
    response_model=AlertsOut,
    description="How many security alerts (fraud reports, recovery resets, locked factors) the "
    "log holds, per type; the same events are delivered as webhooks as they happen.",
)
def alert_counts(
    ctx: Ctx,
    since: Annotated[
        datetime | None, Query(description="occurred_at at or after (UTC if naive)")
    ] = None,
) -> AlertsOut:
    with ctx.sessions() as session:
        found = alerts.counts(session, _utc(since))
    return AlertsOut(since=_utc(since), counts=found)


@public_router.get(
    "/public-key",
    response_model=PublicKeyOut,
    description="The Ed25519 public key that verifies the audit log's signed checkpoints "
    "(`twofa audit verify --public-key`).",
)
def public_key(ctx: Ctx) -> PublicKeyOut:
    verifier = verifier_for(ctx)
    return PublicKeyOut(
        algorithm="Ed25519", key_id=verifier.key_id, public_key=verifier.public_pem()
    )
