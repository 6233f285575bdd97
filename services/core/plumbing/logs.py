"""Log lines: JSON objects in production, text for people in development, each with the
correlation id of the request or event it belongs to.

The id comes from the request (``X-Request-ID`` or ``X-Correlation-ID``, else a new one),
is written into every event's envelope by the unit of work, and is set again by the worker
that consumes the event: one login's lines share it across the API, the relay and every
worker. It is a context variable, so threads of a pool and concurrent requests keep their own.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from pythonjsonlogger.json import JsonFormatter

from services.core.plumbing.settings import Settings

_CORRELATION: ContextVar[str | None] = ContextVar("twofa_correlation_id", default=None)
# What a caller may send as an id: short, and nothing that could forge a log line.
CORRELATION_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(correlation_id)s]: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "processName", "process", "correlation_id",
               "message")


def current_correlation() -> str | None:
    return _CORRELATION.get()


def well_formed(value: str | None) -> str | None:
    return value if value and CORRELATION_PATTERN.match(value) else None


def set_correlation(value: str | None) -> Token[str | None]:
    return _CORRELATION.set(value)


def reset_correlation(token: Token[str | None]) -> None:
    _CORRELATION.reset(token)


@contextmanager
def correlation(value: str | None) -> Iterator[None]:
    """Lines logged inside carry ``value`` (nothing when it is None)."""
    token = _CORRELATION.set(value)
    try:
        yield
    finally:
        _CORRELATION.reset(token)


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` to every record ("-" outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _CORRELATION.get() or "-"
        return True


def formatter(as_json: bool) -> logging.Formatter:
    if as_json:
        return JsonFormatter(
            list(JSON_FIELDS),
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger",
                           "processName": "process_name"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    return logging.Formatter(TEXT_FORMAT)


def configure(settings: Settings) -> None:
    """The root logger of this process: one handler on stderr, the format the settings ask
    for. Idempotent (a spawned API worker configures itself again)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "twofa", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.twofa = True  # type: ignore[attr-defined]
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(formatter(settings.logs_as_json))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
