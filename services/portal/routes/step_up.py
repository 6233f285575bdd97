"""The step-up page: a change to the security settings (delete a token, protect or
unprotect an area, change the contact address) confirmed with any of the user's tokens,
through the API's step-ups.

Session key ``step_up``: the action (purpose, target, protected, what to say), the API's
step-up id and factors, and the selected factor (with the push's number). The action is
done only after the API says the step-up passed, and with its id, never trusting the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from services.portal.apiclient import ApiError
from services.portal.app import flash, redirect, render
from services.portal.messages import TYPE_NAMES, say
from services.portal.routes.login import Csrf, client

router = APIRouter()


def begin(request: Request, user: str, purpose: str, target: str, title: str, done: str,
          protected: bool | None = None, email: str | None = None) -> Response:
    """Start a step-up for the action (``title`` says what it is, ``done`` that it
    happened), or do the action at once when the user has no token to confirm with."""
    action = {"user": user, "purpose": purpose, "target": target, "title": title, "done": done,
              "protected": protected, "email": email}
    try:
        out = client(request).create_step_up(user, purpose, target)
    except ApiError as exc:
        flash(request, say(exc), "error")
        return redirect(request, "/security")
    if out["status"] == "not_required":
        return _act(request, action, None)
    factors = [{"id": f["token_id"], "type": f["type"], "description": f["description"],
                "type_name": TYPE_NAMES.get(f["type"], f["type"])} for f in out["factors"]]
    request.session["step_up"] = {**action, "sid": out["challenge_id"], "factors": factors}
    return redirect(request, "/security/step-up")


def _current(request: Request) -> dict[str, Any] | None:
    step = request.session.get("step_up")
    user = request.session.get("user")
    return step if isinstance(step, dict) and step.get("user") == user and user else None


def _page(request: Request, step: dict[str, Any], status: int = 200, **extra: Any) -> Response:
    return render(request, "step_up.html", status, step=step, **extra)


@router.get("/security/step-up")
def show(request: Request) -> Response:
    step = _current(request)
    return redirect(request, "/security") if step is None else _page(request, step)


@router.post("/security/step-up/select", dependencies=[Csrf])
def select(request: Request, token_id: Annotated[str, Form(max_length=64)]) -> Response:
    step = _current(request)
    if step is None:
        return redirect(request, "/security")
    factor = next((f for f in step["factors"] if f["id"] == token_id), None)
    if factor is None:
        return _page(request, step, 422, error="Choose one of your tokens.")
    try:
        sel = client(request).select(step["sid"], token_id)
    except ApiError as exc:
        return _page(request, step, exc.status, error=say(exc, factor["type"]))
    step.update(sel_id=token_id, sel_type=factor["type"], sel_desc=factor["description"],
                presence=sel.get("presence_answer"))
    request.session["step_up"] = step
    return redirect(request, "/security/step-up")


@router.post("/security/step-up/verify", dependencies=[Csrf])
def verify(request: Request, code: Annotated[str, Form()] = "") -> Response:
    step = _current(request)
    if step is None or not step.get("sel_id"):
        return redirect(request, "/security")
    if not code.strip() or len(code) > 16:
        return _page(request, step, 422, errors={"code": "Enter the code: usually 6 digits."})
    try:
        out = client(request).verify(step["sid"], code.strip())
    except ApiError as exc:
        if exc.code in ("challenge_closed", "challenge_expired"):
            return _restart(request, step, "That confirmation has ended. Start again.")
        return _page(request, step, exc.status, errors={"code": say(exc, step["sel_type"])})
    if out["status"] != "verified":
        return _page(request, step, 422, errors={
            "code": say(ApiError(422, "invalid_code", ""), step["sel_type"])})
    return _act(request, step, step["sid"])


@router.post("/security/step-up/resend", dependencies=[Csrf])
def resend(request: Request) -> Response:
    """"Send the SMS again" for the confirmation's SMS code."""
    step = _current(request)
    if step is None or step.get("sel_type") != "sms":
        return redirect(request, "/security")
    try:
        client(request).resend_challenge_sms(step["sid"])
    except ApiError as exc:
        if exc.code in ("challenge_closed", "challenge_expired"):
            return _restart(request, step, "That confirmation has ended. Start again.")
        return _page(request, step, exc.status, error=say(exc, "sms"))
    flash(request, f"We sent a new code by SMS to {step['sel_desc']}. Only the newest code works.")
    return redirect(request, "/security/step-up")


@router.get("/security/step-up/status")
def status(request: Request) -> JSONResponse:
    """The long-poll of the push waiting page; read-only (acting is a CSRF-checked POST)."""
    step = _current(request)
    if step is None:
        return JSONResponse({"status": "gone"}, status_code=404)
    out = client(request).challenge(step["sid"], wait=request.app.state.settings.push_wait_seconds)
    return JSONResponse({"status": out["status"]})


@router.post("/security/step-up/done", dependencies=[Csrf])
def done(request: Request) -> Response:
    step = _current(request)
    if step is None:
        return redirect(request, "/security")
    out = client(request).challenge(step["sid"])
    if out["status"] == "approved":
        return _act(request, step, step["sid"])
    if out["status"] == "pending":
        return _page(request, step, error="Not approved yet. Pick the number in the app.")
    return _page(request, step, 409, closed=True,
                 error=f"The request was {out['status']}. Start again.")


@router.post("/security/step-up/restart", dependencies=[Csrf])
def restart(request: Request) -> Response:
    step = _current(request)
    return redirect(request, "/security") if step is None else _restart(request, step, None)


@router.post("/security/step-up/cancel", dependencies=[Csrf])
def cancel(request: Request) -> Response:
    request.session.pop("step_up", None)
    return redirect(request, "/security")


def _restart(request: Request, step: dict[str, Any], message: str | None) -> Response:
    if message:
        flash(request, message, "error")
    return begin(request, step["user"], step["purpose"], step["target"], step["title"],
                 step["done"], step["protected"])


def _act(request: Request, action: dict[str, Any], step_up_id: str | None) -> Response:
    request.session.pop("step_up", None)
    api, user, target = client(request), action["user"], action["target"]
    try:
        if action["purpose"] == "delete_token":
            api.delete_token(user, target, None, step_up_id=step_up_id)
        elif action["purpose"] == "set_contact":
            api.set_contact(user, action["email"], None, step_up_id=step_up_id)
        else:
            api.set_area(user, target, bool(action["protected"]), None, step_up_id=step_up_id)
    except ApiError as exc:
        flash(request, say(exc), "error")
        return redirect(request, "/security")
    flash(request, action["done"])
    return redirect(request, "/security")
