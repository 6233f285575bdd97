"""Sign-in: the password (demo first factor), then the login step of guide section #3.

Session keys: ``user`` (fully signed in), ``verified`` (areas passed in this session),
``pending`` (a password-checked user in the middle of a second-factor step: user,
area, next path, challenge id, factors, selected factor, presence number).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response

from services.portal.app import flash, redirect, render
from services.portal.apiclient import ApiError, TwofaClient
from services.portal.web import CSRF_FIELD, check_csrf, safe_next

router = APIRouter()


async def csrf(request: Request) -> None:
    form = await request.form()
    value = form.get(CSRF_FIELD)
    check_csrf(request, value if isinstance(value, str) else None)


Csrf = Depends(csrf)


def client(request: Request) -> TwofaClient:
    return request.app.state.client  # type: ignore[no-any-return]


def _next(request: Request, value: str | None) -> str:
    base = request.app.state.settings.base_path
    return safe_next(value, base, f"{base}/security")


def begin_step(request: Request, user: str, area: str, next_path: str) -> Response:
    """Ask the API whether ``area`` needs a second factor now; continue or show the choice."""
    return check_area(request, user, area, next_path) or finish(request, user, area, next_path)


def check_area(request: Request, user: str, area: str, next_path: str) -> Response | None:
    """None when ``area`` needs no second factor now (it is then marked passed in the
    session); else the response that starts the step (factor choice, or "locked")."""
    try:
        ch = client(request).create_challenge(user, area)
    except ApiError as exc:
        if exc.code == "factors_locked":
            request.session["pending"] = {"user": user, "area": area, "next": next_path}
            return render(request, "locked.html", 403)
        raise
    if ch["status"] == "not_required":
        _passed(request, area)
        return None
    factors = [{"id": f["token_id"], "type": f["type"], "description": f["description"]}
               for f in ch["factors"]]
    request.session["pending"] = {"user": user, "area": area, "next": next_path,
                                  "cid": ch["challenge_id"], "factors": factors}
    return redirect(request, "/2fa")


def finish(request: Request, user: str, area: str, next_path: str) -> Response:
    request.session.pop("pending", None)
    request.session["user"] = user
    _passed(request, area)
    return Response(status_code=303, headers={"Location": next_path})


def _passed(request: Request, area: str) -> None:
    request.session["verified"] = sorted(set(request.session.get("verified", [])) | {area})


def _pending(request: Request) -> dict[str, Any] | None:
    pending = request.session.get("pending")
    return pending if isinstance(pending, dict) and pending.get("cid") else None


@router.get("/")
def home(request: Request) -> Response:
    return redirect(request, "/security" if request.session.get("user") else "/login")


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_next(request, next))


@router.post("/login", dependencies=[Csrf])
def login(request: Request, username: Annotated[str, Form(max_length=128)],
          password: Annotated[str, Form(max_length=1024)],
          next: Annotated[str | None, Form()] = None) -> Response:
    target = _next(request, next)
    if not request.app.state.accounts.verify(username, password):
        return render(request, "login.html", 401, next=target, username=username,
                      error="The user name or the password is wrong.")
    request.session.clear()  # a fresh session (and CSRF token) after the password: no fixation
    settings = request.app.state.settings
    return begin_step(request, username, settings.login_area, target)


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request) -> Response:
    request.session.clear()
    flash(request, "You are signed out.")
    return redirect(request, "/login")


@router.get("/2fa")
def choose(request: Request) -> Response:
    pending = _pending(request)
    if pending is None:
        return redirect(request, "/login")
    return render(request, "choose.html", pending=pending)


@router.post("/2fa/select", dependencies=[Csrf])
def select(request: Request, token_id: Annotated[str, Form(max_length=64)]) -> Response:
    pending = _pending(request)
    if pending is None:
        return redirect(request, "/login")
    factor = next((f for f in pending["factors"] if f["id"] == token_id), None)
    if factor is None:
        return render(request, "choose.html", 422, pending=pending, error="Choose one of your tokens.")
    try:
        sel = client(request).select(pending["cid"], token_id)
    except ApiError as exc:
        return render(request, "choose.html", exc.status, pending=pending, error=_say(exc))
    pending.update(sel_id=token_id, sel_type=factor["type"], sel_desc=factor["description"],
                   presence=sel.get("presence_answer"))
    request.session["pending"] = pending
    return redirect(request, "/2fa/push" if factor["type"] == "push" else "/2fa/code")


@router.get("/2fa/code")
def code_form(request: Request) -> Response:
    pending = _pending(request)
    if pending is None or not pending.get("sel_id"):
        return redirect(request, "/2fa" if pending else "/login")
    return render(request, "code.html", pending=pending)


@router.post("/2fa/verify", dependencies=[Csrf])
def verify(request: Request, code: Annotated[str, Form(max_length=16)]) -> Response:
    pending = _pending(request)
    if pending is None or not pending.get("sel_id"):
        return redirect(request, "/login")
    try:
        out = client(request).verify(pending["cid"], code.strip())
    except ApiError as exc:
        if exc.code in ("challenge_closed", "challenge_expired"):
            flash(request, "That sign-in step has ended. Choose a factor again.", "error")
            return begin_step(request, pending["user"], pending["area"], pending["next"])
        return render(request, "code.html", exc.status, pending=pending, error=_say(exc))
    if out["status"] != "verified":
        return render(request, "code.html", 422, pending=pending, error="The code was not accepted.")
    return finish(request, pending["user"], pending["area"], pending["next"])


@router.get("/2fa/push")
def push_wait(request: Request) -> Response:
    pending = _pending(request)
    if pending is None or pending.get("sel_type") != "push":
        return redirect(request, "/login")
    return render(request, "push_wait.html", pending=pending)


@router.get("/2fa/push/status")
def push_status(request: Request) -> JSONResponse:
    """The long-poll the waiting page calls; read-only (finishing is a CSRF-checked POST)."""
    pending = _pending(request)
    if pending is None:
        return JSONResponse({"status": "gone"}, status_code=404)
    wait = request.app.state.settings.push_wait_seconds
    out = client(request).challenge(pending["cid"], wait=wait)
    return JSONResponse({"status": out["status"]})


@router.post("/2fa/push/done", dependencies=[Csrf])
def push_done(request: Request) -> Response:
    pending = _pending(request)
    if pending is None:
        return redirect(request, "/login")
    out = client(request).challenge(pending["cid"])  # never trust the page: ask the API
    if out["status"] == "approved":
        return finish(request, pending["user"], pending["area"], pending["next"])
    if out["status"] == "pending":
        return render(request, "push_wait.html", pending=pending,
                      error="Not approved yet. Pick the number in the app.")
    return render(request, "push_wait.html", 409, pending=pending, closed=True,
                  error=f"The sign-in request was {out['status']}. Start again.")


@router.post("/2fa/restart", dependencies=[Csrf])
def restart(request: Request) -> Response:
    pending = request.session.get("pending")
    if not isinstance(pending, dict):
        return redirect(request, "/login")
    return begin_step(request, pending["user"], pending["area"], pending["next"])


def _say(exc: ApiError) -> str:
    """The API's words are for programmers; these are for people."""
    if exc.status == 429:
        wait = f" Wait {exc.retry_after} seconds." if exc.retry_after else ""
        return "Too many attempts." + wait
    return {
        "invalid_code": "The code was not accepted. Enter the current code from your app.",
        "token_locked": "This token is locked after too many wrong codes.",
        "push_blocked": "Push requests are paused for your account. Choose another factor.",
    }.get(exc.code, exc.message)
