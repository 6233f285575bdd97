"""The check of a Vonage delivery receipt's ``sig``, through the SDK's ``Auth.check_signature``.

Apart from ``vonage.py`` (the sender) because the API serves the receipts but never sends: the
SDK and the HTTP clients it brings would stay in every API process's memory for a route that
only a Vonage deployment calls, so its ``Auth`` is imported by the first receipt.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.core.plumbing.settings import Settings

RECEIPT_PATH = "/v1/callbacks/vonage"


def receipt_is_signed(settings: Settings, params: Mapping[str, str]) -> bool:
    """True when ``params`` (a delivery receipt's fields, ``sig`` included) carry a valid
    signature made with our signature secret; False for a missing or wrong one, or when no
    secret is configured."""
    if not (settings.vonage_api_key and settings.vonage_signature_secret):
        return False
    if not params.get("sig") or not params.get("timestamp"):
        return False  # without a timestamp the SDK would sign the current time instead
    from vonage_http_client.auth import Auth

    auth = Auth(api_key=settings.vonage_api_key,
                signature_secret=settings.vonage_signature_secret.get_secret_value(),
                signature_method=settings.vonage_signature_method)
    return bool(auth.check_signature(dict(params)))
