"""The circuit rules of SMS failover, on a fake clock: when a provider is skipped and when it is
tried again."""

from __future__ import annotations

import pytest

from services.core.factors.sms.circuit import Circuit, CircuitRules, Circuits

RULES = CircuitRules(failures=3, window=10.0, open_for=30.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def circuit(clock: FakeClock) -> Circuit:
    return Circuit(RULES, clock)


def test_n_failures_in_a_row_within_the_window_open_it(circuit: Circuit, clock: FakeClock) -> None:
    assert circuit.failed() is False
    clock.now += 4
    assert circuit.failed() is False
    assert circuit.state == "closed" and circuit.allows()
    clock.now += 4
    assert circuit.failed() is True  # the third within 10 s
    assert circuit.state == "open" and not circuit.allows()


def test_failures_spread_wider_than_the_window_do_not(circuit: Circuit, clock: FakeClock) -> None:
    for _ in range(10):
        assert circuit.failed() is False
        clock.now += 5.1  # never three within 10 s
    assert circuit.state == "closed"


def test_a_success_clears_the_count(circuit: Circuit, clock: FakeClock) -> None:
    circuit.failed(), circuit.failed()
    circuit.succeeded()
    assert circuit.failed() is False and circuit.failed() is False
    assert circuit.state == "closed"
    assert circuit.failed() is True


def test_open_for_its_time_then_one_probe(circuit: Circuit, clock: FakeClock) -> None:
    for _ in range(3):
        circuit.failed()
    clock.now += 29.9
    assert not circuit.allows()
    clock.now += 0.1
    assert circuit.state == "half_open"
    assert circuit.allows() is True  # the probe
    assert circuit.allows() is False  # everyone else keeps skipping while it is out
    clock.now += 5
    assert circuit.allows() is False


def test_the_probe_succeeding_closes_it(circuit: Circuit, clock: FakeClock) -> None:
    for _ in range(3):
        circuit.failed()
    clock.now += 30
    assert circuit.allows()
    circuit.succeeded()
    assert circuit.state == "closed"
    assert circuit.allows() and circuit.allows()
    # and it counts from zero again
    assert circuit.failed() is False and circuit.failed() is False


def test_the_probe_failing_opens_it_for_another_period(circuit: Circuit, clock: FakeClock) -> None:
    for _ in range(3):
        circuit.failed()
    clock.now += 30
    assert circuit.allows()
    assert circuit.failed() is True  # one failure is enough in half-open
    assert circuit.state == "open"
    clock.now += 29
    assert not circuit.allows()
    clock.now += 1
    assert circuit.allows()


def test_a_probe_that_never_reports_is_replaced(circuit: Circuit, clock: FakeClock) -> None:
    for _ in range(3):
        circuit.failed()
    clock.now += 30
    assert circuit.allows()
    clock.now += 29
    assert not circuit.allows()
    clock.now += 1
    assert circuit.allows()  # the first probe's thread died: a new probe goes


def test_a_late_failure_of_a_send_started_before_opening_changes_nothing(
        circuit: Circuit, clock: FakeClock) -> None:
    for _ in range(3):
        circuit.failed()
    opened = clock.now
    clock.now += 20
    assert circuit.failed() is False  # in flight when the circuit opened
    clock.now = opened + 30
    assert circuit.state == "half_open"  # still measured from the opening


def test_circuits_skip_open_providers_in_order(clock: FakeClock) -> None:
    circuits = Circuits(["twilio", "vonage"], RULES, clock)
    assert circuits.plan(["twilio", "vonage"]) == (["twilio", "vonage"], [])
    for _ in range(3):
        circuits["twilio"].failed()
    assert circuits.plan(["twilio", "vonage"]) == (["vonage"], ["twilio"])
    clock.now += 30
    # half-open: the probe goes to twilio first, the sends beside it go on skipping it
    assert circuits.plan(["twilio", "vonage"]) == (["twilio", "vonage"], [])
    assert circuits.plan(["twilio", "vonage"]) == (["vonage"], ["twilio"])


def test_when_every_circuit_is_open_every_provider_is_tried(clock: FakeClock) -> None:
    circuits = Circuits(["twilio", "vonage"], RULES, clock)
    for name in ("twilio", "vonage"):
        for _ in range(3):
            circuits[name].failed()
    assert circuits.plan(["twilio", "vonage"]) == (["twilio", "vonage"], [])
    single = Circuits(["twilio"], RULES, clock)
    for _ in range(3):
        single["twilio"].failed()
    assert single.plan(["twilio"]) == (["twilio"], [])  # one provider: never held back
