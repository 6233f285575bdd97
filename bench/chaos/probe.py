"""Reading the run's database: the outbox, the audit chain, SMS codes, pushes, challenges.

Read-only SQL on the service's tables (a benchmark's view, not a use case). Every read may
fail while PostgreSQL restarts; callers that poll retry.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from bench.chaos.accounting import ChallengeRow
from services.core.plumbing.db import make_engine


@dataclass(frozen=True)
class Window:
    """A scenario's span: outbox sequence numbers and wall-clock times."""

    seq_from: int  # exclusive
    seq_to: int  # inclusive
    t_from: datetime
    t_to: datetime


class Probe:
    def __init__(self, database_url: str) -> None:
        self.engine: Engine = make_engine(database_url)

    def close(self) -> None:
        self.engine.dispose()

    def max_seq(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text("SELECT coalesce(max(seq), 0) FROM outbox")).scalar_one())

    def max_seq_retrying(self, seconds: float = 60) -> int:
        deadline = time.monotonic() + seconds
        while True:
            try:
                return self.max_seq()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def missing_from_chain(self, seq_from: int, seq_to: int) -> int:
        """Events committed in (seq_from, seq_to] not (yet) in the audit chain."""
        with self.engine.connect() as c:
            return int(c.execute(text(
                "SELECT count(*) FROM outbox o WHERE o.seq > :a AND o.seq <= :b AND NOT EXISTS "
                "(SELECT 1 FROM audit_log l WHERE l.event_id = o.event_id)"),
                {"a": seq_from, "b": seq_to}).scalar_one())

    def committed(self, w: Window) -> list[str]:
        with self.engine.connect() as c:
            return [str(r[0]) for r in c.execute(text(
                "SELECT event_id FROM outbox WHERE seq > :a AND seq <= :b"),
                {"a": w.seq_from, "b": w.seq_to})]

    def audited(self, w: Window) -> list[str]:
        with self.engine.connect() as c:
            return [str(r[0]) for r in c.execute(text(
                "SELECT l.event_id FROM audit_log l JOIN outbox o ON o.event_id = l.event_id "
                "WHERE o.seq > :a AND o.seq <= :b"), {"a": w.seq_from, "b": w.seq_to})]

    def sms_codes(self, w: Window) -> tuple[list[str], list[str]]:
        """Message ids of the login codes asked for in the window, and those the service
        recorded as failed or of unknown outcome."""
        with self.engine.connect() as c:
            ids = [str(r[0]) for r in c.execute(text(
                "SELECT id FROM sms_codes WHERE created_at >= :a AND created_at < :b"),
                {"a": w.t_from, "b": w.t_to})]
            failed = [str(r[0]) for r in c.execute(text(
                "SELECT d.message_id FROM sms_deliveries d JOIN sms_codes s ON s.id = d.message_id "
                "WHERE s.created_at >= :a AND s.created_at < :b "
                "AND d.state IN ('failed', 'unknown')"),
                {"a": w.t_from, "b": w.t_to})]
        return ids, failed

    def push_nonces(self, w: Window) -> dict[str, str]:
        """nonce -> challenge id of the pushes asked for in the window."""
        with self.engine.connect() as c:
            return {str(r[0]): str(r[1]) for r in c.execute(text(
                "SELECT nonce, challenge_id FROM push_challenges "
                "WHERE created_at >= :a AND created_at < :b"), {"a": w.t_from, "b": w.t_to})}

    def nonce_of(self, challenge_id: str) -> str | None:
        """The nonce of a push challenge (what its FCM message carries); None if not there or
        the database cannot be read right now."""
        try:
            with self.engine.connect() as c:
                got = c.execute(text("SELECT nonce FROM push_challenges WHERE challenge_id = :c"),
                                {"c": challenge_id}).scalar_one_or_none()
        except Exception:
            return None
        return None if got is None else str(got)

    def challenges(self, w: Window) -> list[ChallengeRow]:
        with self.engine.connect() as c:
            # a final state without a completion time counts as final at its expiry
            return [ChallengeRow(str(r[0]), r[1], r[2],
                                 (r[3] or r[2]) if r[1] != "pending" else None)
                    for r in c.execute(text(
                        "SELECT id, state, expires_at, completed_at FROM challenges "
                        "WHERE created_at >= :a AND created_at < :b"),
                        {"a": w.t_from, "b": w.t_to})]


class CatchUp:
    """Polls, from a moment on, until every event committed before it is in the audit chain;
    ``at`` is then the wall-clock time it was first seen complete."""

    def __init__(self, probe: Probe, seq_from: int, seq_to: int) -> None:
        self.probe, self.seq_from, self.seq_to = probe, seq_from, seq_to
        self.at: float | None = None
        self.missing = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="chaos-catchup")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.missing = self.probe.missing_from_chain(self.seq_from, self.seq_to)
                if self.missing == 0:
                    self.at = time.time()
                    return
            except Exception:
                pass  # the database is restarting
            self._stop.wait(0.25)

    def wait(self, seconds: float) -> float | None:
        self._thread.join(seconds)
        self._stop.set()
        return self.at
