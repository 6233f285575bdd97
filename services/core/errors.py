"""Domain errors. Each carries the HTTP status and a stable machine code; the API
turns them into ``{"error": {"code", "message"}}`` without knowing the domain."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The object is in a state where this step makes no sense."""

    status = 409
    code = "wrong_state"


class InvalidCode(DomainError):
    status = 422
    code = "invalid_code"


class Unprocessable(DomainError):
    status = 422
    code = "invalid_input"


class Throttled(DomainError):
    status = 429
    code = "throttled"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.retry_after = retry_after


class Gone(DomainError):
    status = 410
    code = "gone"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
