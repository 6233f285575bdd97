"""Importing this package registers every task on the worker app."""

from services.workers.tasks import audit, expiry  # noqa: F401
from services.workers.tasks import sms  # noqa: F401  (SMS, issue 3)
from services.workers.tasks import push  # noqa: F401
from services.workers.tasks import webhooks  # noqa: F401
from services.workers.tasks import notify  # noqa: F401
