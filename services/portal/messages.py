"""What the portal says when something goes wrong: sentences for people, never the API's
words (those are for programmers), and which form field each message belongs beside.

The API's answer is an error code; every code the portal can meet has a sentence here.
A code without one gets a general sentence rather than the API's message.
"""

from __future__ import annotations

from services.portal.apiclient import ApiError

TYPE_NAMES = {"totp": "TOTP", "sms": "SMS", "push": "PUSH"}

# Where the code comes from, by factor type: an SMS code is not "from your app".
CODE_SOURCE = {
    "sms": "the code from the SMS",
    "totp": "the code your authenticator app shows now",
    "push": "the code",
}

_SENTENCES = {
    "invalid_phone": (
        "Enter your mobile number with the country code, for example +49 151 23456789."
    ),
    "sms_country_not_allowed": (
        "We cannot send SMS to numbers from this country. Choose another kind of token or "
        "another number."
    ),
    "sms_throttled": "We sent an SMS moments ago. Wait a little before asking for another one.",
    "sms_quota_exceeded": (
        "Too many SMS were sent to this number. Try again later, or use another of your "
        "tokens."
    ),
    "too_many_tokens": (
        "You have as many tokens as an account can have. Delete one you no longer use "
        "first."
    ),
    "enrollment_expired": "This set-up took too long and has expired. Start again.",
    "token_not_found": "That token no longer exists. It may have been deleted meanwhile.",
    "factors_locked": (
        "Your tokens are locked after too many wrong codes. Use your recovery token to "
        "reset two-factor authentication."
    ),
    "token_locked": "This token is locked after too many wrong codes. Choose another one.",
    "push_blocked": "Push requests are paused for your account. Choose another factor.",
    "push_rate_limited": (
        "Too many push requests were sent. Wait a minute, or choose another factor."
    ),
    "push_pending_limit": (
        "A push request is already waiting in your app. Answer it, or wait a minute."
    ),
    "push_already_sent": "A push request is already waiting in your app.",
    "challenge_closed": "That confirmation has ended. Start again.",
    "challenge_expired": "That took too long and the request has expired. Start again.",
    "step_up_required": "Confirm this change with one of your tokens.",
    "step_up_expired": "The confirmation took too long. Start the change again.",
    "step_up_used": "That confirmation was already used. Start the change again.",
    "recovery_token_downloaded": (
        "The recovery file can be downloaded only once, and that has happened already."
    ),
    "no_recovery_token": "You have no recovery token yet. You get one with your first token.",
    "invalid_recovery_token": "This recovery token is not valid. Check it and try again.",
    "user_throttled": "Too many wrong codes. Wait a little before you try again.",
    "unknown_area": "This protected area is no longer offered.",
}


def say(exc: ApiError, factor_type: str | None = None) -> str:
    """The sentence for an API error; ``factor_type`` says where a code came from."""
    if exc.code in ("invalid_code", "factor_mismatch"):
        source = CODE_SOURCE.get(factor_type or "", "the code")
        return f"That code was not accepted. Check {source} and enter it again."
    if exc.status == 429 and exc.code not in _SENTENCES:
        wait = (
            f" Wait {exc.retry_after} seconds and try again."
            if exc.retry_after
            else " Wait a little and try again."
        )
        return "Too many attempts." + wait
    sentence = _SENTENCES.get(exc.code)
    if sentence is None:
        return "That did not work. Please try again, or start over from your security page."
    if exc.status == 429 and exc.retry_after:
        sentence += f" (You can try again in {exc.retry_after} seconds.)"
    return sentence


FIELDS = {
    "invalid_phone": "phone",
    "sms_country_not_allowed": "phone",
    "invalid_code": "code",
    "factor_mismatch": "code",
}


def field_of(exc: ApiError, default: str | None = None) -> str | None:
    """The form field the error belongs beside, if it is about one."""
    return FIELDS.get(exc.code, default)
