"""The audit consumer's use case: append one event, sign the head when a checkpoint is due."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from services.core.audit import chain
from services.core.audit.checkpoints import CheckpointPolicy, maybe_checkpoint
from services.core.audit.signing import CheckpointSigner, CheckpointVerifier, signer_from_settings
from services.core.plumbing.db import read_only

if TYPE_CHECKING:
    from services.core.plumbing.context import Context


def signer_for(ctx: Context) -> CheckpointSigner:
    """The process's checkpoint signer, loaded once (key parsing is not free)."""
    if ctx.audit_signer is None:
        ctx.audit_signer = signer_from_settings(ctx.settings)
    return ctx.audit_signer


def verifier_for(ctx: Context) -> CheckpointVerifier:
    return signer_for(ctx).verifier


def policy_for(ctx: Context) -> CheckpointPolicy:
    s = ctx.settings
    return CheckpointPolicy(
        every_rows=s.audit_checkpoint_rows, every_seconds=s.audit_checkpoint_every
    )


def record(
    session: Session,
    envelope: dict[str, Any],
    now: datetime,
    signer: CheckpointSigner,
    policy: CheckpointPolicy,
) -> chain.NewEntry | None:
    """Append ``envelope`` (once per event_id) and checkpoint if due, in the caller's
    transaction."""
    entry = chain.append(session, envelope, now)
    if entry is not None:
        maybe_checkpoint(session, signer, now, policy, head=(entry.position, entry.hash))
    return entry


def record_many_in(ctx: Context, envelopes: list[dict[str, Any]]) -> int:
    """Append a batch: the rows are hashed against a head read without the write lock,
    then written under it (hashing a batch under the lock would hold every API writer
    back meanwhile). One checkpoint if one fell due within the batch, so
    a checkpoint may sign up to a batch more rows than ``every_rows``."""
    signer, policy = signer_for(ctx), policy_for(ctx)
    now = ctx.clock.now()
    with read_only(ctx.engine) as conn:
        batch = chain.prepare(conn, envelopes, now)
    with ctx.sessions.begin() as session:
        entries = chain.append_prepared(session, batch, envelopes, now)
        if entries:
            last = entries[-1]
            maybe_checkpoint(session, signer, now, policy, head=(last.position, last.hash))
        return len(entries)


def record_in(ctx: Context, envelope: dict[str, Any]) -> chain.NewEntry | None:
    """``record`` in its own transaction, with the Context's clock, key and policy."""
    signer, policy = signer_for(ctx), policy_for(ctx)
    with ctx.sessions.begin() as session:
        return record(session, envelope, ctx.clock.now(), signer, policy)
