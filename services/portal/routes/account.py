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

from services.portal.apiclient import ApiError
from services.portal.app import LoginRequired, flash, redirect, render
from services.portal.routes import step_up
from services.portal.routes.login import Csrf, _say, check_area, client, finish

router = APIRouter()
TYPE_NAMES = {"totp": "TOTP", "sms": "SMS", "push": "PUSH"}
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
        step = check_area(request, user, settings.security_area, request.url.path)
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
    listing = client(request).token_overview(user)
    tokens = _named(listing["tokens"])
    # Downloaded by itself right after the first enrollment here; offered with a button on
    # any later visit until it is downloaded (imported users get theirs without enrolling).
    recovery_auto = bool(request.session.pop("recovery_ready", False))
    recovery_ready = recovery_auto or bool(listing.get("recovery_token_available"))
    return render(request, "security.html", status, tokens=tokens, areas=client(request).areas(user),
                  code_tokens=_code_tokens(tokens), has_active=any(t["state"] == "active" for t in tokens),
                  contact=client(request).contact(user), recovery_ready=recovery_ready,
                  recovery_auto=recovery_auto, **extra)


@router.get("/security")
def security(request: Request) -> Response:
    user = guard(request)
    return user if isinstance(user, Response) else overview(request, user)


@router.get("/security/enroll")
def enroll_form(request: Request) -> Response:
    user = guard(request)
    return user if isinstance(user, Response) else render(request, "enroll.html")


@router.post("/security/enroll", dependencies=[Csrf])
def enroll(request: Request, type: Annotated[str, Form(pattern="^(totp|push|sms)$")],
           description: Annotated[str, Form(max_length=64)],
           phone: Annotated[str, Form(max_length=32)] = "") -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    if not description.strip() or (type == "sms" and not phone.strip()):
        return render(request, "enroll.html", 422, error="Enter a description"
                      + (" and your phone number." if type == "sms" else "."), chosen=type)
    try:
        out = client(request).start_enrollment(user, type, description.strip(),
                                                phone.strip() if type == "sms" else None)
    except ApiError as exc:
        return render(request, "enroll.html", exc.status, error=_say(exc), chosen=type)
    token = out["token"]
    if type == "sms":
        return redirect(request, f"/security/tokens/{token['id']}/activate")
    return render(request, "qr.html", token=token, details=out["details"],
                  type_name=TYPE_NAMES[type])


@router.post("/security/tokens/{token_id}/scanned", dependencies=[Csrf])
def scanned(request: Request, token_id: str) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None:
        return redirect(request, "/security")
    if token["type"] != "push":
        try:
            client(request).enrollment_step(user, token_id, "scanned")
        except ApiError as exc:
            return overview(request, user, exc.status, error=_say(exc))
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


def _find(request: Request, user: str, token_id: str) -> dict[str, Any] | None:
    return next((t for t in _tokens(request, user) if t["id"] == token_id), None)


@router.get("/security/tokens/{token_id}/{step}")
def step_form(request: Request, token_id: str, step: str) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None or step not in ("activate", "confirm", "delete"):
        return redirect(request, "/security")
    tokens = _tokens(request, user)
    return render(request, "token_step.html", token=token, step=step,
                  code_tokens=_code_tokens(tokens) if step == "delete" else [])


@router.post("/security/tokens/{token_id}/{step}", dependencies=[Csrf])
def step(request: Request, token_id: str, step: str,
         code: Annotated[str, Form(max_length=16)] = "",
         verify_token_id: Annotated[str, Form(max_length=64)] = "") -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    token = _find(request, user, token_id)
    if token is None or step not in ("activate", "confirm", "delete"):
        return redirect(request, "/security")
    api = client(request)
    if step == "delete" and not code.strip() and token["state"] in ("active", "locked"):
        name = f"{TYPE_NAMES.get(token['type'], token['type'])} token “{token['description']}”"
        return step_up.begin(request, user, "delete_token", token_id, f"Delete the {name}.",
                             f"The token “{token['description']}” is deleted.")
    try:
        if step == "delete":
            api.delete_token(user, token_id, code.strip() or None, verify_token_id or None)
            flash(request, f"The token “{token['description']}” is deleted.")
            return redirect(request, "/security")
        out = api.enrollment_step(user, token_id, step, code.strip())
    except ApiError as exc:
        codes = _code_tokens(_tokens(request, user)) if step == "delete" else []
        return render(request, "token_step.html", exc.status, token=token, step=step,
                      code_tokens=codes, error=_say(exc))
    if out["token"]["state"] == "unconfirmed":
        return redirect(request, f"/security/tokens/{token_id}/confirm")
    if out.get("details", {}).get("recovery_token_available"):
        request.session["recovery_ready"] = True
    flash(request, f"Your {TYPE_NAMES.get(token['type'], token['type'])} token "
                   f"“{token['description']}” is active.")
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
        message = ("The recovery file was downloaded already." if exc.status == 410
                   else "There is no recovery file to download.")
        flash(request, message, "error")
        return redirect(request, "/security")
    return Response(file.text, media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{file.filename}"',
        "Cache-Control": "no-store"})


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
    current = {a["area"]: a["protected"] for a in api.areas(user)}
    changes = [(a, a in wanted) for a, p in current.items() if (a in wanted) != p]
    if not changes:
        flash(request, "Nothing changed.")
        return redirect(request, "/security")
    has_active = any(t["state"] == "active" for t in api.tokens(user))
    if has_active and len(changes) > 1:
        return overview(request, user, 422, area_error="Change one area at a time: "
                        "each change needs its own confirmation.")
    if has_active and not code:
        ((area, protected),) = changes
        verb = "Protect" if protected else "Stop protecting"
        return step_up.begin(request, user, "set_area", area, f"{verb} the area “{area}”.",
                             "Your protected areas are saved.", protected)
    try:
        for area, protected in changes:
            api.set_area(user, area, protected, code or None, verify_with or None)
    except ApiError as exc:
        message = "Enter a code from your app to change this." if exc.code == "step_up_required" \
            else _say(exc)
        return overview(request, user, exc.status, area_error=message)
    flash(request, "Your protected areas are saved.")
    return redirect(request, "/security")


def _recovery_user(request: Request) -> str | None:
    """Signed in, or past the password and stuck at the second factor (lost phone)."""
    pending = request.session.get("pending")
    return request.session.get("user") or (pending.get("user") if isinstance(pending, dict) else None)


@router.get("/recovery")
def recovery_form(request: Request) -> Response:
    if _recovery_user(request) is None:
        raise LoginRequired(request.url.path)
    return render(request, "recovery.html")


@router.post("/recovery", dependencies=[Csrf])
async def recovery(request: Request, recovery_token: Annotated[str, Form(max_length=64)] = "",
                   file: Annotated[UploadFile | None, File()] = None) -> Response:
    user = _recovery_user(request)
    if user is None:
        raise LoginRequired(f"{request.app.state.settings.base_path}/recovery")
    value = recovery_token.strip()
    if not value and file is not None and file.filename:
        value = _token_from_file((await file.read(4096)).decode("utf-8", "replace"))
    if not value:
        return render(request, "recovery.html", 422, error="Paste the recovery token or choose the file.")
    try:
        client(request).redeem_recovery(user, value)
    except ApiError as exc:
        message = "This recovery token is not valid." if exc.status == 422 else _say(exc)
        return render(request, "recovery.html", exc.status, error=message)
    settings = request.app.state.settings
    request.session["verified"] = []
    finish(request, user, settings.login_area, f"{settings.base_path}/security")
    flash(request, "Two-factor authentication is reset and your tokens are removed. "
                   "Set it up again now: select Secure My Account.")
    return redirect(request, "/security")


def _token_from_file(text: str) -> str:
    """The line of the API's file that looks like the token (8 groups of 4 hex digits)."""
    import re

    match = re.search(r"\b[0-9A-Fa-f]{4}(?:[- ]?[0-9A-Fa-f]{4}){7}\b", text)
    return match.group(0) if match else ""
