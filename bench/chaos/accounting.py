"""What a scenario did to the data, counted from what the database and the fakes hold.

Pure functions over plain values, so that the counting itself is unit-tested
(tests/unit/bench/test_chaos_accounting.py) and the report cannot be silently wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EventCount:
    committed: int
    in_chain: int
    lost: tuple[str, ...]  # committed, never in the audit chain (event ids)


def events(committed: Iterable[str], audited: Iterable[str]) -> EventCount:
    """Events committed (outbox) against the audit chain, by event id. An id in the chain
    that was not committed in the window is not counted (it belongs to another window)."""
    c = set(committed)
    in_chain = c & set(audited)
    return EventCount(len(c), len(in_chain), tuple(sorted(c - in_chain)))


@dataclass(frozen=True)
class DeliveryCount:
    requested: int
    delivered_once: int
    duplicated: int  # requests delivered more than once
    extra_sends: int  # deliveries beyond the first
    never_delivered: int  # requested, never reached the provider (or the phone)
    failed_on_record: int  # of those, the ones the service recorded as failed (a known outcome)
    max_per_request: int


def deliveries(requested: Iterable[str], sends: Mapping[str, int],
               recorded_failed: Iterable[str] = ()) -> DeliveryCount:
    """Deliveries per request: SMS per code (message id) or pushes per challenge (nonce).

    ``sends`` counts accepted provider calls per request id; ids in ``sends`` that were not
    requested in the window are ignored. ``recorded_failed``: requests the service closed as
    failed or unknown, so that a user was told (never-delivered ones that are not among them
    are the silent losses).
    """
    req = set(requested)
    counts = [sends.get(r, 0) for r in req]
    failed = set(recorded_failed) & req
    never = [r for r in req if sends.get(r, 0) == 0]
    return DeliveryCount(
        requested=len(req),
        delivered_once=sum(1 for n in counts if n == 1),
        duplicated=sum(1 for n in counts if n > 1),
        extra_sends=sum(n - 1 for n in counts if n > 1),
        never_delivered=len(never),
        failed_on_record=sum(1 for r in never if r in failed),
        max_per_request=max(counts, default=0),
    )


def tally(keys: Iterable[str]) -> Counter[str]:
    return Counter(keys)


@dataclass(frozen=True)
class ChallengeRow:
    id: str
    state: str
    expires_at: datetime
    final_at: datetime | None  # when it left pending (None: still pending)


@dataclass(frozen=True)
class FinalCount:
    total: int
    final_in_time: int
    late: int  # final, but later than the deadline
    open_past_deadline: int  # still pending after expiry + grace
    not_yet_due: int  # still pending, deadline not reached when counted


def finality(rows: Sequence[ChallengeRow], *, grace_seconds: float, now: datetime) -> FinalCount:
    """Every challenge must be final by ``expires_at + grace``."""
    in_time = late = open_late = not_due = 0
    for row in rows:
        deadline = row.expires_at.timestamp() + grace_seconds
        if row.final_at is not None:
            if row.final_at.timestamp() <= deadline:
                in_time += 1
            else:
                late += 1
        elif now.timestamp() > deadline:
            open_late += 1
        else:
            not_due += 1
    return FinalCount(len(rows), in_time, late, open_late, not_due)


def recovery_parts(fault_end: float, successes: Mapping[str, Sequence[tuple[float, float]]],
                   caught_up_at: float | None) -> dict[str, float | None]:
    """Seconds after the fault ended until each kind of login first succeeded (started after
    it), and until the audit chain caught up (key ``audit``); None: it never did."""
    parts: dict[str, float | None] = {}
    for kind, spans in successes.items():
        if spans:
            after = [done for started, done in spans if started >= fault_end]
            parts[kind] = min(after) - fault_end if after else None
    parts["audit"] = None if caught_up_at is None else max(caught_up_at - fault_end, 0.0)
    return parts


def recovery_seconds(fault_end: float, successes: Mapping[str, Sequence[tuple[float, float]]],
                     caught_up_at: float | None) -> float | None:
    """Seconds from the end of a fault until the service works again: for each kind of login,
    the first one *started* after the fault ended that succeeded (its completion time), and
    the audit chain holding every event committed before the fault ended. The latest of
    these; None if one of them never happened.

    ``successes`` maps a kind (totp, sms, push, enroll) to (started, finished) pairs of the
    successful logins; kinds with no success at all in the run are ignored (not in the mix).
    """
    parts = recovery_parts(fault_end, successes, caught_up_at).values()
    return None if None in parts else max(p for p in parts if p is not None)


def status_5xx(responses: Iterable[tuple[float, int]], start: float, end: float) -> int:
    """Answers with a 5xx status received in [start, end]."""
    return sum(1 for t, status in responses if start <= t <= end and status >= 500)
