"""Importing this package registers every task on the worker app."""

from services.workers.tasks import audit, expiry  # noqa: F401
