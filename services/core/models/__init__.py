"""Every mapped class, imported here so that metadata and Alembic see them all."""

from services.core.models.apikeys import ApiKey
from services.core.models.audit import AuditCheckpoint, AuditEntry
from services.core.models.challenges import Challenge, ChallengeState
from services.core.models.messaging import (
    DispatchWatch,
    OutboxEvent,
    ProcessedEvent,
    ReconcileCursor,
)
from services.core.models.notify import Notification, UserContact
from services.core.models.privacyidea import PiEnrollment, PiServiceAccount, PiTransaction
from services.core.models.push import PushBlock, PushChallenge, PushToken
from services.core.models.sms import DeliveryState, SmsCode, SmsDelivery, SmsPendingCode
from services.core.models.tokens import Token, TokenState
from services.core.models.users import AreaProtection, UserProfile
from services.core.models.webhooks import SubscriptionState, WebhookSubscription

__all__ = [
    "ApiKey",
    "AreaProtection",
    "AuditCheckpoint",
    "AuditEntry",
    "Challenge",
    "ChallengeState",
    "DispatchWatch",
    "OutboxEvent",
    "ReconcileCursor",
    "ProcessedEvent",
    "DeliveryState",
    "SmsCode",
    "SmsDelivery",
    "PiServiceAccount",
    "PiEnrollment",
    "PiTransaction",
    "SmsPendingCode",
    "PushBlock",
    "PushChallenge",
    "PushToken",
    "Token",
    "TokenState",
    "UserProfile",
    "SubscriptionState",
    "WebhookSubscription",
    "Notification",
    "UserContact",
]
