"""One module per event family; importing this package registers every contract.

Families: enrollment, token, area, challenge, sms, push, recovery, audit, webhook, notification.
"""

from shared.events.area import AreaProtectionChanged
from shared.events.audit import AuditCheckpointSigned
from shared.events.challenge import (
    ChallengeApproved,
    ChallengeCovered,
    ChallengeCreated,
    ChallengeDeclined,
    ChallengeExpired,
    ChallengeFactorSelected,
    ChallengeFailed,
    ChallengeNotRequired,
    ChallengeVerified,
    FactorRef,
)
from shared.events.challenge_superseded import ChallengeCreatedV1, ChallengeCreatedV2
from shared.events.enrollment import (
    EnrollmentActivated,
    EnrollmentConfirmed,
    EnrollmentFailed,
    EnrollmentScanned,
    EnrollmentStarted,
)
from shared.events.notification import NotificationFailed, NotificationSent
from shared.events.push import PushFailed, PushFraudReported, PushRequested, PushSent
from shared.events.recovery import RecoveryFailed, RecoveryIssued, RecoveryUsed
from shared.events.sms import (
    SmsDelivered,
    SmsFailed,
    SmsRequested,
    SmsRequestedV1,
    SmsSendRefused,
    SmsSent,
)
from shared.events.token import (
    TokenDeleted,
    TokenImported,
    TokenLocked,
    TokenUnlocked,
    TokenVerificationFailed,
)
from shared.events.webhook import WebhookDisabled

__all__ = [
    "AreaProtectionChanged",
    "AuditCheckpointSigned",
    "ChallengeApproved",
    "ChallengeCovered",
    "ChallengeCreated",
    "ChallengeCreatedV1",
    "ChallengeCreatedV2",
    "ChallengeDeclined",
    "ChallengeExpired",
    "ChallengeFactorSelected",
    "ChallengeFailed",
    "ChallengeNotRequired",
    "ChallengeVerified",
    "EnrollmentActivated",
    "EnrollmentConfirmed",
    "EnrollmentFailed",
    "EnrollmentScanned",
    "EnrollmentStarted",
    "FactorRef",
    "NotificationFailed",
    "NotificationSent",
    "PushFailed",
    "PushFraudReported",
    "PushRequested",
    "PushSent",
    "RecoveryFailed",
    "RecoveryIssued",
    "RecoveryUsed",
    "SmsDelivered",
    "SmsFailed",
    "SmsRequested",
    "SmsRequestedV1",
    "SmsSendRefused",
    "SmsSent",
    "TokenDeleted",
    "TokenImported",
    "TokenLocked",
    "TokenUnlocked",
    "TokenVerificationFailed",
    "WebhookDisabled",
]
