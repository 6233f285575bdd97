"""Which task consumes which event, on which queue: the contract between the
publisher (API, workers) and the worker processes. Both sides import this module;
neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass

QUEUE_SMS = "sms"
QUEUE_PUSH = "push"
QUEUE_EXPIRY = "expiry"
QUEUE_AUDIT = "audit"
QUEUE_WEBHOOKS = "webhooks"
QUEUE_NOTIFY = "notify"
QUEUES = (QUEUE_SMS, QUEUE_PUSH, QUEUE_EXPIRY, QUEUE_AUDIT, QUEUE_WEBHOOKS, QUEUE_NOTIFY)


@dataclass(frozen=True)
class Route:
    task: str
    queue: str


AUDIT_APPEND = Route("twofa.audit.append", QUEUE_AUDIT)
# Several events in one message, in outbox order: what publishers send to the audit log.
# One broker message per event costs the API more CPU than the event itself; the consumer
# appends a batch in one transaction. ``twofa.audit.append`` (one event per message) is
# still consumed, for messages published before batches.
AUDIT_APPEND_MANY = Route("twofa.audit.append_many", QUEUE_AUDIT)
AUDIT_BATCH_MAX = 200
SMS_SEND = Route("twofa.sms.send", QUEUE_SMS)
PUSH_SEND = Route("twofa.push.send", QUEUE_PUSH)
EXPIRY_SWEEP = Route("twofa.expiry.sweep", QUEUE_EXPIRY)
# Webhooks read the audit chain, not events: the scheduler's sweep finds subscriptions
# that are behind and sends one ``deliver`` per subscription (its own task: one slow
# receiver holds one worker thread, not the others).
WEBHOOKS_SWEEP = Route("twofa.webhooks.sweep", QUEUE_WEBHOOKS)
WEBHOOKS_DELIVER = Route("twofa.webhooks.deliver", QUEUE_WEBHOOKS)
NOTIFY_SEND = Route("twofa.notify.send", QUEUE_NOTIFY)

# Events with a consumer besides the audit log. Every event also goes to the audit log.
EVENT_ROUTES: dict[str, tuple[Route, ...]] = {
    "sms.requested": (SMS_SEND,),
    "push.requested": (PUSH_SEND,),
    # the user is told, on another channel (services.core.notify)
    "enrollment.confirmed": (NOTIFY_SEND,),
    "token.deleted": (NOTIFY_SEND,),
    "token.locked": (NOTIFY_SEND,),
    "recovery.used": (NOTIFY_SEND,),
    "push.fraud_reported": (NOTIFY_SEND,),
}


# Commands whose outcome the database is asked about later (a ``dispatch_watch`` row is
# written with each): a broker can lose a message it took, see messaging.redispatch.
WATCHED_COMMANDS = frozenset({"sms.requested", "push.requested"})


def commands(event_type: str) -> tuple[Route, ...]:
    """The consumers of an event other than the audit log (one message per event each)."""
    return EVENT_ROUTES.get(event_type, ())
