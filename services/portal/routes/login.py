"""Sign-in: the password (demo first factor), then the login step of guide section #3.

Session keys: ``user`` (fully signed in), ``verified`` (areas passed in this session),
``pending`` (a password-checked user in the middle of a second-factor step: user, the
areas it is for and their names, next path, the challenge answered and the other areas'
challenges it covers, factors, selected factor, presence number, whether a recovery
token exists).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response

from services.portal.apiclient import ApiError, TwofaClient
from services.portal.app import flash, redirect, render
from services.portal.messages import CODE_SOURCE, TYPE_NAMES, say
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


def begin_step(request: Request, user: str, areas: list[str], next_path: str) -> Response:
    """Ask the API whether ``areas`` need a second factor now; continue or show the choice."""
    return check_areas(request, user, areas, next_path) or finish(request, user, next_path)


def check_areas(request: Request, user: str, areas: list[str], next_path: str) -> Response | None:
    """None when no area of ``areas`` needs a second factor now (each is then marked
    passed in the session); else the response that starts the one step for all of them
    (the factor choice, or "locked").

    Every area that needs one gets its challenge now, before the answer: the answer to
    the first then covers the others (the API's ``cover``), so one code signs in to all."""
    api = client(request)
    required: list[tuple[str, dict[str, Any]]] = []
    for area in areas:
        try:
            ch = api.create_challenge(user, area)
        except ApiError as exc:
            if exc.code == "factors_locked":
                request.session["pending"] = {"user": user, "areas": areas, "next": next_path}
                return render(request, "locked.html", 403,
                              has_recovery=api.has_recovery(user))
            raise
        if ch["status"] == "not_required":
            _passed(request, area)
        else:
            required.append((area, ch))
    if not required:
        return None
    (area, first), others = required[0], required[1:]
    ids = {f["token_id"] for _, ch in others for f in ch["factors"]}
    factors = [{"id": f["token_id"], "type": f["type"], "description": f["description"],
                "type_name": TYPE_NAMES.get(f["type"], f["type"])}
               for f in first["factors"] if not others or f["token_id"] in ids]
    names = api.display_names()
    request.session["pending"] = {
        "user": user, "next": next_path, "cid": first["challenge_id"], "factors": factors,
        "areas": [a for a, _ in required], "names": [names.get(a, a) for a, _ in required],
        "covers": {a: ch["challenge_id"] for a, ch in others},
        "recovery": api.has_recovery(user),
    }
    return redirect(request, "/2fa")


def finish(request: Request, user: str, next_path: str,
           pending: dict[str, Any] | None = None) -> Response:
    """Signed in. After an answered step, that answer also covers the other areas'
    challenges; an area whose cover is refused is asked again when it is visited."""
    request.session.pop("pending", None)
    request.session["user"] = user
    if pending:
        _passed(request, pending["areas"][0])
        for area, cid in pending.get("covers", {}).items():
            try:
                client(request).cover(cid, pending["cid"])
            except ApiError:
                continue
            _passed(request, area)
    return Response(status_code=303, headers={"Location": next_path})


def _passed(request: Request, area: str) -> None:
    request.session["verified"] = sorted(set(request.session.get("verified", [])) | {area})


def _pending(request: Request) -> dict[str, Any] | None:
    pending = request.session.get("pending")
    return pending if isinstance(pending, dict) and pending.get("cid") else None


def login_areas(request: Request, next_path: str) -> list[str]:
    """The areas a sign-in to ``next_path`` needs at once: the sign-in's own, and the
    security settings' when that is where it goes."""
    settings = request.app.state.settings
    areas = [settings.login_area]
    security = f"{settings.base_path}/security"
    if (next_path == security or next_path.startswith(security + "/")) \
            and settings.security_area not in areas:
        areas.append(settings.security_area)
    return areas


@router.get("/")
def home(request: Request) -> Response:
    return redirect(request, "/security" if request.session.get("user") else "/login")


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", next=_next(request, next))


@router.post("/login", dependencies=[Csrf])
def login(request: Request, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "",
          next: Annotated[str | None, Form()] = None) -> Response:
    target = _next(request, next)
    if not username.strip() or not password:
        return render(request, "login.html", 422, next=target, username=username[:128],
                      error="Enter your user name and your password.")
    if len(username) > 128 or len(password) > 1024 \
            or not request.app.state.accounts.verify(username, password):
        return render(request, "login.html", 401, next=target, username=username[:128],
                      error="The user name or the password is wrong.")
    request.session.clear()  # a fresh session (and CSRF token) after the password: no fixation
    return begin_step(request, username, login_areas(request, target), target)


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
        return render(
            request, "choose.html", 422, pending=pending, error="Choose one of your tokens."
        )
    try:
        sel = client(request).select(pending["cid"], token_id)
    except ApiError as exc:
        return render(
            request, "choose.html", exc.status, pending=pending, error=say(exc, factor["type"])
        )
    pending.update(
        sel_id=token_id,
        sel_type=factor["type"],
        sel_desc=factor["description"],
        presence=sel.get("presence_answer"),
    )
    request.session["pending"] = pending
    return redirect(request, "/2fa/push" if factor["type"] == "push" else "/2fa/code")


@router.get("/2fa/code")
def code_form(request: Request) -> Response:
    pending = _pending(request)
    if pending is None or not pending.get("sel_id"):
        return redirect(request, "/2fa" if pending else "/login")
    return render(request, "code.html", pending=pending)


@router.post("/2fa/verify", dependencies=[Csrf])
def verify(request: Request, code: Annotated[str, Form()] = "") -> Response:
    pending = _pending(request)
    if pending is None or not pending.get("sel_id"):
        return redirect(request, "/login")
    source = CODE_SOURCE.get(pending["sel_type"], "the code")
    if not code.strip() or len(code) > 16:
        return render(
            request,
            "code.html",
            422,
            pending=pending,
            errors={"code": f"Enter {source}: usually 6 digits."},
        )
    try:
        out = client(request).verify(pending["cid"], code.strip())
    except ApiError as exc:
        if exc.code in ("challenge_closed", "challenge_expired"):
            flash(request, "That sign-in step has ended. Choose a factor again.", "error")
            return begin_step(request, pending["user"], pending["areas"], pending["next"])
        return render(
            request,
            "code.html",
            exc.status,
            pending=pending,
            errors={"code": say(exc, pending["sel_type"])},
        )
    if out["status"] != "verified":
        return render(
            request,
            "code.html",
            422,
            pending=pending,
            errors={"code": say(ApiError(422, "invalid_code", ""), pending["sel_type"])},
        )
    return finish(request, pending["user"], pending["next"], pending)


@router.post("/2fa/resend", dependencies=[Csrf])
def resend(request: Request) -> Response:
    """ "Send the SMS again": a new code (the old one stops working), throttled by the API."""
    pending = _pending(request)
    if pending is None or pending.get("sel_type") != "sms":
        return redirect(request, "/login")
    try:
        client(request).resend_challenge_sms(pending["cid"])
    except ApiError as exc:
        if exc.code in ("challenge_closed", "challenge_expired"):
            flash(request, "That sign-in step has ended. Choose a factor again.", "error")
            return begin_step(request, pending["user"], pending["areas"], pending["next"])
        return render(request, "code.html", exc.status, pending=pending, error=say(exc, "sms"))
    flash(
        request, f"We sent a new code by SMS to {pending['sel_desc']}. Only the newest code works."
    )
    return redirect(request, "/2fa/code")


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
        return finish(request, pending["user"], pending["next"], pending)
    if out["status"] == "pending":
        return render(
            request,
            "push_wait.html",
            pending=pending,
            error="Not approved yet. Pick the number in the app.",
        )
    return render(
        request,
        "push_wait.html",
        409,
        pending=pending,
        closed=True,
        error=f"The sign-in request was {out['status']}. Start again.",
    )


@router.post("/2fa/restart", dependencies=[Csrf])
def restart(request: Request) -> Response:
    pending = request.session.get("pending")
    if not isinstance(pending, dict):
        return redirect(request, "/login")
    return begin_step(request, pending["user"], pending["areas"], pending["next"])
