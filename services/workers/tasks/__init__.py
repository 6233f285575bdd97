"""Importing this package registers every task on the worker app."""

from services.workers.tasks import (  # noqa: F401
    audit,
    expiry,
    notify,
    push,
    sms,
    webhooks,
)
