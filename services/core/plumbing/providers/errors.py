"""The only two errors a provider (SMS, push) may raise.

The split is what the workers act on: a transient error is retried with back-off, a
permanent one ends in a ``*.failed`` event at once. ``code`` is the provider's own error
code when it gave one (Twilio 21211, ...), for the failure event and the logs.
"""

from __future__ import annotations


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        reason: str = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.reason = reason


class TransientProviderError(ProviderError):
    """Network error, timeout, 429 or 5xx: the same request may succeed later.

    ``retry_after`` is the provider's own hint in seconds, if it gave one.
    """

    def __init__(
        self, message: str, *, retry_after: int | None = None, reason: str = "transient",
        code: int | None = None, status: int | None = None,
    ) -> None:
        super().__init__(message, reason=reason, code=code, status=status)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """The request itself is wrong (invalid number, unsubscribed, FCM token unregistered):
    no retry."""

    def __init__(
        self, message: str, *, unregistered: bool = False, reason: str = "permanent",
        code: int | None = None, status: int | None = None,
    ) -> None:
        super().__init__(message, reason=reason, code=code, status=status)
        self.unregistered = unregistered
