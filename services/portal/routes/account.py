"""The security page of guide sections #1, #2 and #4: enrollment ("Secure My Account"),
the token overview with its recycle bin, protected areas, the recovery file and reset.

Every page here needs a signed-in user and, when the user protected the portal's own
security area, a second factor passed in this session (a step-up on entry).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.portal.apiclient import ApiError
from services.portal.app import LoginRequired, flash, redirect, render
from services.portal.messages import TYPE_NAMES, field_of, say
from services.portal.routes import step_up
from services.portal.routes.login import Csrf, check_areas, client, finish

router = APIRouter()
PUSH_REGISTRATION_WAIT = 6.0  # seconds "QR code scanned" waits for the app's step 2


def guard(request: Request) -> str | Response:
    """The signed-in user, or the response that gets them there (login or step-up)."""
    user = request.session.get("user")
    if not user:
        raise LoginRequired(request.url.path)
    settings = request.app.state.settings
    if settings.security_area not in request.session.get("verified", []):
        if request.method != "GET":
            return redirect(request, "/security")
        step = check_areas(request, user, [settings.security_area], request.url.path)
        if step is not None:
            return step
    return str(user)


def _tokens(request: Request, user: str) -> list[dict[str, Any]]:
    return _named(client(request).tokens(user))


def _named(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for t in tokens:
        t["type_name"] = TYPE_NAMES.get(t["type"], t["type"])
    return tokens


def _code_tokens(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tokens if t["state"] == "active" and t.get("takes_codes")]


def overview(request: Request, user: str, status: int = 200, **extra: Any) -> Response:
    api = client(request)
    listing = api.token_overview(user)
    tokens = _named(listing["tokens"])
    recovery = {"issued": bool(listing.get("recovery_token_issued")),
                "downloadable": bool(listing.get("recovery_token_available"))}
    # Downloaded by itself right after the first enrollment here; offered with a button on
    # any later visit until it is downloaded (imported users get theirs without enrolling).
    recovery_auto = bool(request.session.pop("recovery_ready", False)) and recovery["downloadable"]
    return render(
        request,
        "security.html",
        status,
        tokens=tokens,
        areas=api.areas(user),
        code_tokens=_code_tokens(tokens),
        has_active=any(t["state"] == "active" for t in tokens),
        contact=api.contact(user),
        recovery=recovery,
        recovery_auto=recovery_auto,
        **extra,
    )


@router.get("/security")
def security(request: Request) -> Response:
    user = guard(request)
    return user if isinstance(user, Response) else overview(request, user)


@router.get("/security/enroll")
def enroll_form(request: Request) -> Response:
    user = guard(request)
    return user if isinstance(user, Response) else render(request, "enroll.html")


def _enroll_errors(type_: str, description: str, phone: str) -> dict[str, str]:
    errors = {}
    if type_ not in TYPE_NAMES:
        errors["type"] = "Choose the kind of token you want to set up."
    if not description:
        errors["description"] = "Enter a description, for example the name of your phone."
    elif len(description) > 64:
        errors["description"] = (
            f"The description is {len(description)} characters long. "
            "Shorten it to 64 characters or fewer."
        )
    if type_ == "sms" and not phone:
        errors["phone"] = "Enter the phone number the SMS should go to, with the country code."
    elif type_ == "sms" and len(phone) > 32:
        errors["phone"] = "That is too long for a phone number. Check it and enter it again."
    return errors


@router.post("/security/enroll", dependencies=[Csrf])
def enroll(
    request: Request,
    type: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    """Checked here rather than by the form's schema, so that a wrong field comes back as
    this page with the message beside it and what was typed still there."""
    user = guard(request)
    if isinstance(user, Response):
        return user
    description, phone = description.strip(), phone.strip()
    form = {"chosen": type, "description": description, "phone": phone}
    errors = _enroll_errors(type, description, phone)
    if errors:
        return render(request, "enroll.html", 422, errors=errors, **form)
    try:
        out = client(request).start_enrollment(
            user, type, description, phone if type == "sms" else None
        )
    except ApiError as exc:
        field = field_of(exc)
        if field is None:
            return render(request, "enroll.html", exc.status, error=say(exc), **form)
        return render(request, "enroll.html", exc.status, errors={field: say(exc)}, **form)
    token = out["token"]
    if type == "sms":
        return redirect(request, f"/security/tokens/{token['id']}/activate")
    return render(
        request, "qr.html", token=token, details=out["details"], type_name=TYPE_NAMES[type]
    )


@router.post("/security/tokens/{token_id}/scanned", dependencies=[Csrf])
def scanned(request: Request, token_id: str) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None:
        return _gone(request)
    if token["type"] != "push":
        try:
            client(request).enrollment_step(user, token_id, "scanned")
        except ApiError as exc:
            return overview(request, user, exc.status, error=say(exc))
        return redirect(request, f"/security/tokens/{token_id}/activate")
    # PUSH: the app registers itself with the API (enrollment step 2); wait a moment for it.
    deadline = time.monotonic() + PUSH_REGISTRATION_WAIT
    while token is not None and token["state"] != "active" and time.monotonic() < deadline:
        time.sleep(0.3)
        token = _find(request, user, token_id)
    if token is not None and token["state"] == "active":
        if sum(t["state"] == "active" for t in _tokens(request, user)) == 1:
            request.session["recovery_ready"] = True  # the first token: offer the file
        flash(request, f"Your PUSH token “{token['description']}” is active.")
        return redirect(request, "/security")
    return render(request, "push_pending.html", 409, token_id=token_id)


def _gone(request: Request) -> Response:
    flash(
        request,
        "That token is no longer there: a set-up that is not finished in time "
        "expires, or it was cancelled or deleted. Start again if you need it.",
        "error",
    )
    return redirect(request, "/security")


def _find(request: Request, user: str, token_id: str) -> dict[str, Any] | None:
    return next((t for t in _tokens(request, user) if t["id"] == token_id), None)


@router.post("/security/tokens/{token_id}/cancel", dependencies=[Csrf])
def cancel(request: Request, token_id: str) -> Response:
    """Cancel on the QR and code pages: the unfinished enrollment is deleted."""
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is not None and token["state"] not in ("active", "locked"):
        try:
            client(request).cancel_enrollment(user, token_id)
        except ApiError as exc:
            flash(request, say(exc), "error")
            return redirect(request, "/security")
        flash(request, f"The set-up of “{token['description']}” is cancelled.")
    return redirect(request, "/security")


@router.post("/security/tokens/{token_id}/resend", dependencies=[Csrf])
def resend(request: Request, token_id: str) -> Response:
    """ "Send the SMS again" while activating an SMS token."""
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None or token["type"] != "sms":
        return redirect(request, "/security")
    try:
        client(request).resend_enrollment_sms(user, token_id)
    except ApiError as exc:
        return render(
            request,
            "token_step.html",
            exc.status,
            token=token,
            step="activate",
            code_tokens=[],
            error=say(exc, "sms"),
        )
    flash(request, f"We sent a new code by SMS to {token['phone']}. Only the newest code works.")
    return redirect(request, f"/security/tokens/{token_id}/activate")


@router.get("/security/tokens/{token_id}/{step}")
def step_form(request: Request, token_id: str, step: str) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None:
        return _gone(request)
    if step not in ("activate", "confirm", "delete"):
        raise StarletteHTTPException(404)
    tokens = _tokens(request, user)
    return render(
        request,
        "token_step.html",
        token=token,
        step=step,
        code_tokens=_code_tokens(tokens) if step == "delete" else [],
    )


@router.post("/security/tokens/{token_id}/{step}", dependencies=[Csrf])
def step(
    request: Request,
    token_id: str,
    step: str,
    code: Annotated[str, Form()] = "",
    verify_token_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None:
        return _gone(request)
    if step not in ("activate", "confirm", "delete"):
        raise StarletteHTTPException(404)
    api = client(request)
    if len(code) > 16 or (step != "delete" and not code.strip()):
        return render(
            request,
            "token_step.html",
            422,
            token=token,
            step=step,
            code_tokens=_code_tokens(_tokens(request, user)) if step == "delete" else [],
            errors={"code": "Enter the code: usually 6 digits."},
        )
    if step == "delete" and not code.strip() and token["state"] in ("active", "locked"):
        name = f"{TYPE_NAMES.get(token['type'], token['type'])} token “{token['description']}”"
        return step_up.begin(
            request,
            user,
            "delete_token",
            token_id,
            f"Delete the {name}.",
            f"The token “{token['description']}” is deleted.",
        )
    try:
        if step == "delete":
            api.delete_token(user, token_id, code.strip() or None, verify_token_id or None)
            flash(request, f"The token “{token['description']}” is deleted.")
            return redirect(request, "/security")
        out = api.enrollment_step(user, token_id, step, code.strip())
    except ApiError as exc:
        codes = _code_tokens(_tokens(request, user)) if step == "delete" else []
        source = _source_type(codes, verify_token_id) if step == "delete" else token["type"]
        message = say(exc, source)
        field = field_of(exc)
        return render(
            request,
            "token_step.html",
            exc.status,
            token=token,
            step=step,
            code_tokens=codes,
            verify_token_id=verify_token_id,
            **({"errors": {field: message}} if field else {"error": message}),
        )
    if out["token"]["state"] == "unconfirmed":
        return redirect(request, f"/security/tokens/{token_id}/confirm")
    if out.get("details", {}).get("recovery_token_available"):
        request.session["recovery_ready"] = True
    flash(
        request,
        f"Your {TYPE_NAMES.get(token['type'], token['type'])} token "
        f"“{token['description']}” is active.",
    )
    return redirect(request, "/security")


@router.post("/security/recovery-token", dependencies=[Csrf])
def recovery_download(request: Request) -> Response:
    """The API's one-time file, passed through as a download; nothing is kept."""
    user = guard(request)
    if isinstance(user, Response):
        return user
    try:
        file = client(request).recovery_file(user)
    except ApiError as exc:
        flash(request, say(exc), "error")
        return redirect(request, "/security")
    return Response(
        file.text,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/security/areas", dependencies=[Csrf])
async def areas(request: Request) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    form = await request.form()
    wanted = {str(v) for v in form.getlist("area")}
    code = str(form.get("code") or "").strip()
    verify_with = str(form.get("verify_token_id") or "")
    api = client(request)
    listed = api.areas(user)
    current = {a["area"]: a["protected"] for a in listed}
    names = {a["area"]: a["display_name"] for a in listed}
    has_active = any(t["state"] == "active" for t in api.tokens(user))
    if not has_active:
        # Without a token there is nothing to ask and nothing to confirm a change with.
        return overview(
            request,
            user,
            409,
            area_error="Set up a token first: then you choose here where it is asked.",
        )
    changes = [(a, a in wanted) for a, p in current.items() if (a in wanted) != p]
    if not changes:
        flash(request, "Nothing changed.")
        return redirect(request, "/security")
    if len(changes) > 1:
        return overview(
            request,
            user,
            422,
            area_error="Change one area at a time: each change needs its own confirmation.",
        )
    if not code:
        ((area, protected),) = changes
        verb = "Ask for a second factor at" if protected else "Stop asking for a second factor at"
        return step_up.begin(
            request,
            user,
            "set_area",
            area,
            f"{verb} “{names[area]}”.",
            "Your protected areas are saved.",
            protected,
        )
    try:
        for area, protected in changes:
            api.set_area(user, area, protected, code or None, verify_with or None)
    except ApiError as exc:
        codes = _code_tokens(api.tokens(user))
        return overview(
            request, user, exc.status, area_error=say(exc, _source_type(codes, verify_with))
        )
    flash(request, "Your protected areas are saved.")
    return redirect(request, "/security")


def _source_type(code_tokens: list[dict[str, Any]], verify_token_id: str) -> str | None:
    """The type of the token a typed code is from (the form's choice, else the only one)."""
    chosen = next((t for t in code_tokens if t["id"] == verify_token_id), None)
    if chosen is None and len(code_tokens) == 1:
        chosen = code_tokens[0]
    return chosen["type"] if chosen else None


def _recovery_user(request: Request) -> str | None:
    """Signed in, or past the password and stuck at the second factor (lost phone)."""
    pending = request.session.get("pending")
    return request.session.get("user") or (
        pending.get("user") if isinstance(pending, dict) else None
    )


@router.get("/recovery")
def recovery_form(request: Request) -> Response:
    user = _recovery_user(request)
    if user is None:
        raise LoginRequired(request.url.path)
    return render(request, "recovery.html", issued=client(request).has_recovery(user))


@router.post("/recovery", dependencies=[Csrf])
async def recovery(
    request: Request,
    recovery_token: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    user = _recovery_user(request)
    if user is None:
        raise LoginRequired(f"{request.app.state.settings.base_path}/recovery")
    value = recovery_token.strip()
    if not value and file is not None and file.filename:
        value = _token_from_file((await file.read(4096)).decode("utf-8", "replace"))
    if not value:
        return render(
            request,
            "recovery.html",
            422,
            issued=True,
            errors={
                "recovery_token": "Paste the recovery token, or choose the recovery file below."
            },
        )
    if len(value) > 64:
        return render(
            request,
            "recovery.html",
            422,
            issued=True,
            errors={
                "recovery_token": (
                    "That is longer than a recovery token. Check it and paste it again."
                )
            },
        )
    try:
        client(request).redeem_recovery(user, value)
    except ApiError as exc:
        return render(
            request, "recovery.html", exc.status, issued=True, errors={"recovery_token": say(exc)}
        )
    settings = request.app.state.settings
    request.session["verified"] = []
    finish(request, user, f"{settings.base_path}/security")
    flash(
        request,
        "Two-factor authentication is reset and your tokens are removed. "
        "Set it up again now: select Secure My Account.",
    )
    return redirect(request, "/security")


def _token_from_file(text: str) -> str:
    """The line of the API's file that looks like the token (8 groups of 4 hex digits)."""
    import re

    match = re.search(r"\b[0-9A-Fa-f]{4}(?:[- ]?[0-9A-Fa-f]{4}){7}\b", text)
    return match.group(0) if match else ""
