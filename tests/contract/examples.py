"""A valid example of every registered event type, for round-trip and guard tests.

``EXAMPLES`` is keyed by type name and builds the latest version; ``test_every_type_has_an
_example`` fails when a type is registered without one, so new contracts cannot skip the
round trip.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from cryptography.fernet import Fernet

from shared import events as ev
from shared.envelope import EventData
from shared.types import SealedStr, mask_phone

TOKEN = UUID("00000000-0000-4000-8000-000000000001")
CHALLENGE = UUID("00000000-0000-4000-8000-000000000002")
MESSAGE = UUID("00000000-0000-4000-8000-000000000003")
RECOVERY = UUID("00000000-0000-4000-8000-000000000004")
SUBSCRIPTION = UUID("00000000-0000-4000-8000-000000000005")
PHONE = mask_phone("+4915112345678")
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sealed_code(code: str = "123456") -> SealedStr:
    """A real Fernet ciphertext of ``code`` under a throwaway key."""
    return SealedStr(Fernet(Fernet.generate_key()).encrypt(code.encode()).decode())


EXAMPLES: dict[str, Callable[[], EventData]] = {
    # enrollment
    "enrollment.started": lambda: ev.EnrollmentStarted(
        token_id=TOKEN, token_type="sms", description="work phone", phone=PHONE, serial="SMS0001"
    ),
    "enrollment.scanned": lambda: ev.EnrollmentScanned(token_id=TOKEN, token_type="totp"),
    "enrollment.activated": lambda: ev.EnrollmentActivated(token_id=TOKEN, token_type="totp"),
    "enrollment.confirmed": lambda: ev.EnrollmentConfirmed(token_id=TOKEN, token_type="totp"),
    "enrollment.failed": lambda: ev.EnrollmentFailed(
        token_id=TOKEN, token_type="push", step="register", reason="invalid_credential"
    ),
    # token
    "token.imported": lambda: ev.TokenImported(
        token_id=TOKEN, token_type="push", serial="PIPU0001A2B3", source="privacyidea", state="active"
    ),
    "token.deleted": lambda: ev.TokenDeleted(token_id=TOKEN, token_type="totp", reason="user"),
    "token.locked": lambda: ev.TokenLocked(
        token_id=TOKEN, token_type="totp", consecutive_failures=10
    ),
    "token.unlocked": lambda: ev.TokenUnlocked(token_id=TOKEN, token_type="totp", was_locked=True),
    "token.verification_failed": lambda: ev.TokenVerificationFailed(
        token_id=TOKEN,
        token_type="sms",
        purpose="step_up",
        consecutive_failures=3,
        backoff_seconds=8,
    ),
    # area
    "area.protection_changed": lambda: ev.AreaProtectionChanged(area="payments", protected=True),
    # challenge
    "challenge.created": lambda: ev.ChallengeCreated(
        challenge_id=CHALLENGE,
        area="login",
        factors=[
            ev.FactorRef(token_id=TOKEN, token_type="totp"),
            ev.FactorRef(token_id=UUID(int=7), token_type="push"),
        ],
        purpose="login",
    ),
    "challenge.not_required": lambda: ev.ChallengeNotRequired(area="login"),
    "challenge.factor_selected": lambda: ev.ChallengeFactorSelected(
        challenge_id=CHALLENGE, token_id=TOKEN, token_type="sms"
    ),
    "challenge.verified": lambda: ev.ChallengeVerified(
        challenge_id=CHALLENGE, area="login", token_id=TOKEN, token_type="totp"
    ),
    "challenge.covered": lambda: ev.ChallengeCovered(
        challenge_id=CHALLENGE, area="portal-security", token_id=TOKEN, token_type="totp",
        by_challenge_id=UUID("00000000-0000-4000-8000-000000000006"),
    ),
    "challenge.failed": lambda: ev.ChallengeFailed(
        challenge_id=CHALLENGE,
        area="login",
        token_id=None,
        token_type=None,
        reason="undeliverable",
        attempts_left=0,
    ),
    "challenge.approved": lambda: ev.ChallengeApproved(
        challenge_id=CHALLENGE, area="login", token_id=TOKEN, token_type="push"
    ),
    "challenge.declined": lambda: ev.ChallengeDeclined(
        challenge_id=CHALLENGE,
        area="login",
        token_id=TOKEN,
        token_type="push",
        reason="unknown_trigger",
    ),
    "challenge.expired": lambda: ev.ChallengeExpired(challenge_id=CHALLENGE, area="login"),
    # sms
    "sms.requested": lambda: ev.SmsRequested(
        message_id=MESSAGE,
        token_id=TOKEN,
        challenge_id=CHALLENGE,
        purpose="login",
        phone=PHONE,
    ),
    "sms.sent": lambda: ev.SmsSent(
        message_id=MESSAGE,
        token_id=TOKEN,
        provider="twilio",
        provider_message_id="SM0123456789abcdef",
        phone=PHONE,
    ),
    "sms.delivered": lambda: ev.SmsDelivered(
        message_id=MESSAGE, provider_message_id="SM0123456789abcdef", status="delivered"
    ),
    "sms.failed": lambda: ev.SmsFailed(
        message_id=MESSAGE,
        token_id=TOKEN,
        provider="twilio",
        reason="unreachable destination",
        error_code=30003,
        permanent=False,
    ),
    "sms.send_refused": lambda: ev.SmsSendRefused(token_id=TOKEN, reason="country_cap", country="DE"),
    # push
    "push.requested": lambda: ev.PushRequested(
        challenge_id=CHALLENGE, token_id=TOKEN, serial="PIPU0001A2B3"
    ),
    "push.sent": lambda: ev.PushSent(
        challenge_id=CHALLENGE,
        token_id=TOKEN,
        provider="fcm",
        provider_message_id="projects/x/messages/1",
    ),
    "push.failed": lambda: ev.PushFailed(
        challenge_id=CHALLENGE,
        token_id=TOKEN,
        reason="UNREGISTERED",
        unregistered=True,
        permanent=True,
    ),
    "push.fraud_reported": lambda: ev.PushFraudReported(
        challenge_id=CHALLENGE, token_id=TOKEN, blocked_until=WHEN
    ),
    # recovery
    "recovery.issued": lambda: ev.RecoveryIssued(recovery_id=RECOVERY),
    "recovery.used": lambda: ev.RecoveryUsed(recovery_id=RECOVERY, tokens_removed=2),
    "recovery.failed": lambda: ev.RecoveryFailed(reason="none_issued"),
    # audit
    "audit.checkpoint_signed": lambda: ev.AuditCheckpointSigned(
        position=1200, hash="ab" * 32, signed_at=WHEN, key_id="0123456789abcdef",
        signature="c2lnbmF0dXJl" * 7,
    ),
    # notification
    "notification.sent": lambda: ev.NotificationSent(
        source_event_id=MESSAGE, source_type="token.locked", channel="email", provider="smtp"
    ),
    "notification.failed": lambda: ev.NotificationFailed(
        source_event_id=MESSAGE, source_type="recovery.used", channel=None, reason="no_channel"
    ),
    # webhook
    "webhook.disabled": lambda: ev.WebhookDisabled(
        subscription_id=SUBSCRIPTION, failing_since=WHEN, position=17, reason="HTTP 500"
    ),
}


def example(type_: str) -> EventData:
    """A fresh valid instance of the latest model of ``type_``."""
    return EXAMPLES[type_]()
