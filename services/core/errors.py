"""Domain errors: what went wrong, as a stable machine code and a message. They know
nothing of HTTP; the API maps each kind to its status (``services/api/errors.py``)."""

from __future__ import annotations


class DomainError(Exception):
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The object is in a state where this step makes no sense."""

    code = "wrong_state"


class InvalidCode(DomainError):
    code = "invalid_code"


class Unprocessable(DomainError):
    code = "invalid_input"


class Throttled(DomainError):
    code = "throttled"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.retry_after = retry_after


class Gone(DomainError):
    code = "gone"


class Forbidden(DomainError):
    code = "forbidden"
