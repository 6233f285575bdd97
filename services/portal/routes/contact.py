"""Where security notifications go: the user's e-mail address, shown and changed here.

A change is confirmed with one of the user's factors, so that a stolen session cannot
redirect the warnings before it changes anything else: a code typed here (TOTP, SMS), or,
with the code left empty, the step-up page, where any token answers (an SMS sent, a push
approved).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from services.portal.apiclient import ApiError
from services.portal.app import flash, redirect, render
from services.portal.messages import say
from services.portal.routes import step_up
from services.portal.routes.account import _code_tokens, _tokens, guard
from services.portal.routes.login import Csrf, client

router = APIRouter()

BAD_EMAIL = "Enter a valid e-mail address, like name@example.com."
# A first look only, so that nobody confirms a change the API will then refuse; the API's
# check is the one that counts.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _page(request: Request, user: str, status: int = 200, **extra: object) -> Response:
    tokens = _tokens(request, user)
    return render(
        request,
        "contact.html",
        status,
        email=client(request).contact(user),
        code_tokens=_code_tokens(tokens),
        has_active=any(t["state"] == "active" for t in tokens),
        **extra,
    )


@router.get("/security/contact")
def contact_form(request: Request) -> Response:
    user = guard(request)
    return user if isinstance(user, Response) else _page(request, user)


@router.post("/security/contact", dependencies=[Csrf])
def contact(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    code: Annotated[str, Form(max_length=32)] = "",
    verify_token_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    user = guard(request)
    if isinstance(user, Response):
        return user
    if email.strip() and not _EMAIL_SHAPE.fullmatch(email.strip()):
        return _page(request, user, 422, entered=email, errors={"email": BAD_EMAIL})
    tokens = _tokens(request, user)
    if not code.strip() and any(t["state"] in ("active", "locked") for t in tokens):
        new = email.strip() or None
        title = (f"Send security notifications to {new}." if new
                 else "Stop security notifications by e-mail.")
        done = (f"Security notifications go to {new}." if new
                else "Security notifications are off: no e-mail address is set.")
        return step_up.begin(request, user, "set_contact", "email", title, done, email=new)
    try:
        saved = client(request).set_contact(
            user, email.strip() or None, code.strip() or None, verify_token_id or None
        )
    except ApiError as exc:
        if exc.code == "invalid_email":
            return _page(request, user, exc.status, entered=email, errors={"email": BAD_EMAIL})
        source = next((t["type"] for t in _code_tokens(_tokens(request, user))
                       if t["id"] == verify_token_id), None)
        message = ("Enter a code from one of your tokens to save this change."
                   if exc.code == "step_up_required" else say(exc, source))
        return _page(request, user, exc.status, entered=email, errors={"code": message})
    flash(
        request,
        f"Security notifications go to {saved}."
        if saved
        else "Security notifications are off: no e-mail address is set.",
    )
    return redirect(request, "/security")
