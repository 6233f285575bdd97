"""Importing this package registers every task on the worker app."""

from services.workers.tasks import (  # noqa: F401
    audit,
    expiry,
    notify,  # noqa: F401
    push,  # noqa: F401
    sms,  # noqa: F401  (SMS, issue 3)
    webhooks,  # noqa: F401
)
