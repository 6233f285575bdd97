"""When an SMS provider is skipped: one circuit per provider, per process.

The rules, all of them here:

* **closed**: the provider is tried. A failure is counted; a success clears the count. When
  ``failures`` failures in a row fall within ``window`` seconds the circuit **opens**.
* **open**: the provider is skipped for ``open_for`` seconds.
* **half-open** (``open_for`` has passed): one send is let through as a probe while the others
  keep skipping the provider. The probe's success closes the circuit, its failure opens it
  for another ``open_for``. A probe that never reports (its thread died) is replaced after
  ``open_for``.

Only transient failures count (a 5xx, 429, timeout or network error): a permanent one (an
invalid number) says nothing about the provider's health, and counts as an answer.

State lives in the process (the SMS worker's threads share it): each process finds out on its
own, after ``failures`` sends, that a provider is down. Nothing here reads a clock of its own;
the caller passes a monotonic one (tests pass a fake).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CircuitRules:
    failures: int
    window: float
    open_for: float


class Circuit:
    def __init__(self, rules: CircuitRules, clock: Callable[[], float]) -> None:
        self._rules = rules
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probe_at: float | None = None

    @property
    def state(self) -> State:
        with self._lock:
            return self._state(self._clock())

    def _state(self, now: float) -> State:
        if self._opened_at is None:
            return "closed"
        return "open" if now < self._opened_at + self._rules.open_for else "half_open"

    def allows(self) -> bool:
        """May a send go to this provider now? In half-open, True for the one probe only."""
        with self._lock:
            now = self._clock()
            state = self._state(now)
            if state == "closed":
                return True
            if state == "open":
                return False
            if self._probe_at is not None and now < self._probe_at + self._rules.open_for:
                return False
            self._probe_at = now
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures.clear()
            self._opened_at = self._probe_at = None

    def failed(self) -> bool:
        """Count a transient failure; True when this one opened (or reopened) the circuit."""
        with self._lock:
            now = self._clock()
            if self._opened_at is not None:
                if self._probe_at is None:
                    return False  # a send that started before the circuit opened
                self._opened_at, self._probe_at = now, None  # the probe failed
                return True
            self._failures.append(now)
            while self._failures and self._failures[0] <= now - self._rules.window:
                self._failures.popleft()
            if len(self._failures) < self._rules.failures:
                return False
            self._failures.clear()
            self._opened_at = now
            return True


class Circuits:
    """The circuits of a list of providers, and the order a send tries them in."""

    def __init__(self, names: Sequence[str], rules: CircuitRules,
                 clock: Callable[[], float]) -> None:
        self._circuits = {name: Circuit(rules, clock) for name in names}

    def __getitem__(self, name: str) -> Circuit:
        return self._circuits[name]

    def plan(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        """(to try, in order; skipped). When every circuit is open, every provider is tried
        anyway, in order: circuits choose between providers, they never hold a code back."""
        allowed = [name for name in names if self._circuits[name].allows()]
        if not allowed:
            return list(names), []
        return allowed, [name for name in names if name not in allowed]
