"""``/validate/check``, ``/validate/triggerchallenge``, ``/validate/polltransaction`` and
``/auth``: read the parameters as privacyIDEA does, call the mapping in
``services.core.privacyidea``, answer in privacyIDEA's envelope.

``/validate/check`` and ``/validate/polltransaction`` are anonymous, as in privacyIDEA
(every plugin calls them without credentials); what protects them is the challenge
service's own throttles. ``/validate/triggerchallenge`` needs the JWT of ``/auth``.

The handlers take the request alone, as the push app's routes do: the context and the
correlation id come from it, not from FastAPI dependencies, whose resolution cost a login
more than reading its form (the parameters are declared in ``schemas``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from services.api.challenge_waiters import waiters
from services.api.deps import context_of, run_db
from services.api.privacyidea import cors, envelope, jwt, params, schemas
from services.api.privacyidea.envelope import PiError
from services.core.plumbing.context import Context
from services.core.plumbing.logs import current_correlation
from services.core.privacyidea import accounts, enrollment, transactions, validate
from services.core.privacyidea.outcome import NO_MATCH, Entry, Outcome
from services.core.privacyidea.users import PiUser, UserNotFound, resolve

router = APIRouter(tags=["privacyIDEA-compatible"])

RECHECK_SECONDS = 0.2


def _user(ctx: Context, p: dict[str, str]) -> PiUser:
    user = p.get("user", "")
    if not user:
        raise PiError(905, "ERR905: You need to specify a serial, user or credential_id.")
    try:
        return resolve(ctx.settings, user, p.get("realm"))
    except UserNotFound:
        raise PiError(
            904, f"ERR904: User <{user}@{p.get('realm') or ''}> does not exist."
        ) from None


def _transaction_id(p: dict[str, str]) -> str | None:
    tid = p.get("transaction_id") or p.get("state")  # FreeRADIUS sends it as its State
    if tid is not None and not transactions.well_formed(tid.strip()):
        raise PiError(905, "ERR905: transaction_id must be 20 digits")
    return tid.strip() if tid is not None else None


def detail_of(outcome: Outcome) -> dict[str, Any]:
    """``detail`` as privacyIDEA fills it (pi-validate.md §4.2, §4.3)."""
    detail: dict[str, Any] = {}
    if outcome.message is not None:
        detail["message"] = outcome.message
    for key in ("serial", "type", "otplen"):
        if getattr(outcome, key) is not None:
            detail[key] = getattr(outcome, key)
    if outcome.challenge_status is not None:
        detail["challenge_status"] = outcome.challenge_status
    if outcome.entries or outcome.transaction_id:
        multi = [_entry(e) for e in outcome.entries]
        messages = [e.message for e in outcome.entries]
        detail.update(
            multi[-1] if multi else {}
        )  # the last challenge, flat (deprecated, still read)
        detail.update(
            transaction_id=outcome.transaction_id,
            transaction_ids=[e.transaction_id for e in outcome.entries],
            multi_challenge=multi,
            messages=messages,
            message=", ".join(dict.fromkeys(messages)),
        )
        if outcome.enroll is not None:  # privacyIDEA names no preferred mode here
            detail["enroll_via_multichallenge"] = True
            detail["enroll_via_multichallenge_optional"] = outcome.enroll == "optional"
        else:
            modes = {e.client_mode for e in outcome.entries}
            detail["preferred_client_mode"] = next(
                (m for m in ("interactive", "poll") if m in modes), "interactive"
            )
    if outcome.user is not None:  # add_user_in_response: who logged in, nothing secret
        detail["user"] = {
            "username": outcome.user.login,
            "userid": outcome.user.user_id,
            "realm": outcome.user.realm,
            "resolver": "twofa",
        }
        detail["user-realm"] = outcome.user.realm
        detail["user-resolver"] = "twofa"
    return detail


def _entry(entry: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "transaction_id": entry.transaction_id,
        "serial": entry.serial,
        "type": entry.type,
        "client_mode": entry.client_mode,
        "message": entry.message,
    }
    if entry.attributes is not None:
        out["attributes"] = entry.attributes
    if entry.presence_answer is not None:
        out["presence_answer"] = entry.presence_answer
    if entry.image is not None:
        out["image"] = entry.image
    if entry.link is not None:
        out["link"] = entry.link
    return out


def _answer(outcome: Outcome) -> JSONResponse:
    return envelope.success(outcome.value, detail_of(outcome))


async def _guarded(request: Request, handler: Any) -> JSONResponse:
    try:
        return await handler(await params.read(request))  # type: ignore[no-any-return]
    except PiError as exc:
        return envelope.error(exc)


# -- /validate/check -----------------------------------------------------------------------


@router.post(
    "/validate/check", operation_id="validate_check_post", **schemas.route("check", post=True)
)
@router.get("/validate/check", operation_id="validate_check_get", **schemas.route("check"))
async def check(request: Request) -> JSONResponse:
    """Check a one-time code, start challenge-response, answer a challenge (``transaction_id``)
    or finalize an approved push (empty ``pass`` with its ``transaction_id``)."""
    ctx, correlation = context_of(request), current_correlation()

    async def handle(p: dict[str, str]) -> JSONResponse:
        user, tid, passw = _user(ctx, p), _transaction_id(p), p.get("pass", "")
        if tid is not None:
            if params.flag(p.get("cancel_enrollment")):
                return _answer(await run_db(ctx, enrollment.cancel, ctx, correlation, user, tid))
            return _answer(await run_db(ctx, validate.answer, ctx, correlation, user, tid, passw))
        wait = ctx.settings.pi_push_wait
        outcome = await run_db(ctx, validate.check, ctx, correlation, user, passw, bool(wait))
        pushed = any(e.type == "push" for e in outcome.entries)
        if wait and outcome.transaction_id and pushed and outcome.enroll is None:
            outcome = await _push_wait(ctx, correlation, user, outcome.transaction_id, wait)
        return _answer(outcome)

    return await _guarded(request, handle)


async def _push_wait(
    ctx: Context, correlation: str | None, user: PiUser, tid: str, seconds: int
) -> Outcome:
    """Hold the answer until the phone said yes (then finalize it here) or ``seconds`` pass.
    The waiter holds no thread and no connection between its short reads."""
    challenge_id = await run_db(ctx, validate.challenge_id_for, ctx, tid)
    deadline = time.monotonic() + seconds
    while challenge_id is not None:
        polled = await run_in_threadpool(validate.poll, ctx, tid)
        if polled.value:
            return await run_db(ctx, validate.answer, ctx, correlation, user, tid, "")
        if polled.challenge_status != "pending" or (left := deadline - time.monotonic()) <= 0:
            break
        await waiters.wait(challenge_id, min(left, RECHECK_SECONDS))
    return Outcome(False, NO_MATCH)


# -- /validate/triggerchallenge ------------------------------------------------------------


def _service_account(ctx: Context, request: Request) -> jwt.Claims:
    token = request.headers.get("PI-Authorization") or request.headers.get("Authorization")
    if not token:
        raise PiError(4033, "Authentication failure. Missing Authorization header.", detail={})
    claims = jwt.verify(ctx.keyring, token, time.time())
    if claims is None:
        raise PiError(
            4304, "Authentication failure. Error decoding the Authorization token.", detail={}
        )
    with ctx.sessions() as session:
        live = accounts.is_live(session, claims.username)
    if not live or claims.role != jwt.ROLE:
        raise PiError(
            4304, "Authentication failure. Error decoding the Authorization token.", detail={}
        )
    return claims


@router.post(
    "/validate/triggerchallenge",
    operation_id="validate_triggerchallenge_post",
    **schemas.route("trigger", post=True),
)
@router.get(
    "/validate/triggerchallenge",
    operation_id="validate_triggerchallenge_get",
    **schemas.route("trigger"),
)
async def triggerchallenge(request: Request) -> JSONResponse:
    """Start challenge-response for ``user`` without a first factor; ``value`` is the number
    of challenges created. Needs the JWT of ``POST /auth`` in ``PI-Authorization`` or
    ``Authorization`` (raw, no ``Bearer``)."""
    ctx, correlation = context_of(request), current_correlation()

    async def handle(p: dict[str, str]) -> JSONResponse:
        await run_in_threadpool(_service_account, ctx, request)
        user = _user(ctx, p)
        outcome = await run_db(ctx, validate.trigger, ctx, correlation, user)
        detail = detail_of(outcome)
        if not outcome.entries:  # privacyIDEA lists no challenges rather than none at all
            detail.update(multi_challenge=[], messages=[], transaction_ids=[])
        return envelope.success(outcome.value, detail)

    return await _guarded(request, handle)


# -- /validate/polltransaction -------------------------------------------------------------


async def _poll(request: Request, tid: str | None) -> JSONResponse:
    ctx = context_of(request)
    allow = cors.headers(ctx.settings, request)
    try:
        if not tid:
            raise PiError(905, "ERR905: Missing parameter: transaction_id")
        if not transactions.well_formed(tid):
            raise PiError(905, "ERR905: transaction_id must be 20 digits")
        outcome = await run_in_threadpool(validate.poll, ctx, tid)
    except PiError as exc:
        return envelope.error(exc, headers=allow)
    return envelope.success(outcome.value, detail_of(outcome), headers=allow)


@router.get("/validate/polltransaction", **schemas.route("poll"))
async def polltransaction(request: Request) -> JSONResponse:
    """Whether the push of a transaction was approved (then finalize it with ``/validate/check``),
    declined, or is still pending. Unknown transactions read as pending."""
    return await _guarded(request, lambda p: _poll(request, p.get("transaction_id")))


@router.get("/validate/polltransaction/{transaction_id}", **schemas.route("poll_path"))
async def polltransaction_path(transaction_id: str, request: Request) -> JSONResponse:
    """The path form of ``/validate/polltransaction``."""
    return await _guarded(request, lambda p: _poll(request, transaction_id))


@router.options("/validate/polltransaction", include_in_schema=False)
@router.options("/validate/polltransaction/{transaction_id}", include_in_schema=False)
async def polltransaction_preflight(request: Request) -> Response:
    """The CORS preflight of in-browser pollers (only when origins are configured)."""
    settings = context_of(request).settings
    return Response(status_code=204, headers=cors.preflight_headers(settings, request))


# -- /auth ---------------------------------------------------------------------------------


def _login(ctx: Context, username: str, password: str) -> bool:
    with ctx.sessions() as session:
        return accounts.authenticate(session, username, password)


@router.post("/auth", **schemas.route("auth", post=True))
async def auth(request: Request) -> JSONResponse:
    """A service account's login: ``result.value.token`` is the JWT for
    ``/validate/triggerchallenge``. Accounts are made with ``twofa pi-account create``."""
    ctx = context_of(request)

    async def handle(p: dict[str, str]) -> JSONResponse:
        username, password, realm = p.get("username", ""), p.get("password", ""), p.get("realm", "")
        if not username:
            raise PiError(4032, "Authentication failure. Missing Username", status=401, detail={})
        if not await run_in_threadpool(_login, ctx, username, password):
            raise PiError(4031, "Authentication failed.", detail={})
        token, _ = jwt.issue(ctx.keyring, username, realm, time.time(), ctx.settings.pi_jwt_seconds)
        # privacyIDEA answers /auth like a /validate call (id 2, authentication ACCEPT)
        return envelope.success(
            {
                "token": token,
                "role": jwt.ROLE,
                "username": username,
                "realm": realm,
                "rights": ["triggerchallenge"],
            }
        )

    return await _guarded(request, handle)
