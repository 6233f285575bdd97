"""The chaos harness's counting (bench/chaos): lost events, deliveries per request,
finality, recovery, and which missed goals fail a run. The report is only as good as these."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bench.chaos import accounting
from bench.chaos.fakes import FlakyTwilio
from bench.chaos.report import failed_goals, kept_analysis
from bench.chaos.run import Result
from bench.chaos.scenarios import SCENARIOS, Scenario, Timing

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def test_an_event_committed_and_missing_from_the_chain_is_lost_by_id() -> None:
    got = accounting.events(["e1", "e2", "e3", "e3"], ["e3", "e1", "other-window"])
    assert (got.committed, got.in_chain, got.lost) == (3, 2, ("e2",))


def test_no_event_lost_when_the_chain_holds_every_committed_id() -> None:
    assert accounting.events(["a", "b"], ["b", "a"]).lost == ()


def test_deliveries_count_duplicates_extras_and_silent_losses() -> None:
    sends = {"m1": 1, "m2": 3, "m3": 2, "elsewhere": 5}
    got = accounting.deliveries(["m1", "m2", "m3", "m4", "m5"], sends, recorded_failed=["m5", "m1"])
    assert got.requested == 5
    assert got.delivered_once == 1
    assert got.duplicated == 2  # m2 and m3
    assert got.extra_sends == 3  # m2 twice more, m3 once more
    assert got.never_delivered == 2  # m4 (silent) and m5 (recorded as failed)
    assert got.failed_on_record == 1  # m1 was delivered: its failure record does not count
    assert got.max_per_request == 3


def test_deliveries_of_nothing_requested_are_zero() -> None:
    got = accounting.deliveries([], {"x": 2})
    assert (got.requested, got.duplicated, got.never_delivered, got.max_per_request) == (0, 0, 0, 0)


def test_finality_sorts_in_time_late_open_and_not_yet_due() -> None:
    exp = T0 + timedelta(seconds=60)
    rows = [
        accounting.ChallengeRow("a", "verified", exp, T0 + timedelta(seconds=10)),
        accounting.ChallengeRow("b", "expired", exp, exp + timedelta(seconds=60)),  # on the edge
        accounting.ChallengeRow("c", "expired", exp, exp + timedelta(seconds=61)),  # late
        accounting.ChallengeRow("d", "pending", exp, None),
        accounting.ChallengeRow("e", "pending", exp + timedelta(seconds=300), None),
    ]
    got = accounting.finality(rows, grace_seconds=60, now=exp + timedelta(seconds=120))
    assert (got.total, got.final_in_time, got.late, got.open_past_deadline, got.not_yet_due) \
        == (5, 2, 1, 1, 1)


def test_recovery_waits_for_every_kind_and_the_audit_chain() -> None:
    successes = {"sms": [(95.0, 99.0), (101.0, 104.0), (102.0, 103.0)],
                 "push": [(100.5, 107.0)], "totp": []}
    # sms: first started after 100 finished at 103; push at 107; the chain caught up at 105
    assert accounting.recovery_seconds(100.0, successes, caught_up_at=105.0) == pytest.approx(7.0)
    assert accounting.recovery_seconds(100.0, successes, caught_up_at=110.0) == pytest.approx(10.0)
    assert accounting.recovery_seconds(100.0, successes, caught_up_at=None) is None
    assert accounting.recovery_seconds(100.0, {"sms": [(90.0, 99.0)]}, caught_up_at=100.0) is None


def test_5xx_are_counted_inside_the_span_only() -> None:
    answers = [(1.0, 500), (2.0, 503), (2.5, 200), (3.0, 429), (5.0, 502)]
    assert accounting.status_5xx(answers, 2.0, 3.0) == 1
    assert accounting.status_5xx(answers, 0.0, 9.0) == 3


def _result(scenario: Scenario, *, lost: int = 0, dup: int = 0, fault_5xx: int = 0,
            recovery: float | None = 1.0) -> Result:
    r = Result(scenario, Timing(1, 1, 1))
    ids = [f"e{i}" for i in range(10)]
    r.events = accounting.events(ids, ids[lost:])
    r.sms = accounting.deliveries(["m1", "m2"], {"m1": 1 + dup, "m2": 1})
    r.push = accounting.deliveries([], {})
    r.api_5xx_in_fault = fault_5xx
    r.recovery = recovery
    return r


BROKER = next(s for s in SCENARIOS if s.broker_down)
OTHER = next(s for s in SCENARIOS if not s.broker_down)


@pytest.mark.parametrize("short", [True, False])
def test_a_lost_event_a_duplicate_or_a_5xx_in_the_outage_fails_every_run(short: bool) -> None:
    assert failed_goals([_result(BROKER)], short) == []
    assert len(failed_goals([_result(OTHER, lost=1)], short)) == 1
    assert len(failed_goals([_result(OTHER, dup=1)], short)) == 1
    assert len(failed_goals([_result(BROKER, fault_5xx=2)], short)) == 1
    assert failed_goals([_result(OTHER, fault_5xx=2)], short) == []  # only where the broker is down


def test_a_slow_recovery_fails_only_the_full_run() -> None:
    slow = _result(OTHER, recovery=11.0)
    assert failed_goals([slow], short=True) == []
    assert len(failed_goals([slow], short=False)) == 1
    assert len(failed_goals([_result(OTHER, recovery=None)], short=False)) == 1


def test_the_scenario_names_are_unique() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))


def test_flaky_twilio_counts_accepted_sends_per_message_id_and_fails_its_share() -> None:
    with FlakyTwilio(send_timeout=0.2, seed=3) as fake:
        url = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
        auth = (fake.account_sid, fake.auth_token)

        def send(message_id: str) -> int:
            form = {"To": "+4915112345678", "From": "+15005550006", "Body": "123456 is your code",
                    "StatusCallback": f"http://127.0.0.1/v1/callbacks/twilio?message_id={message_id}"}
            try:
                return httpx.post(url, data=form, auth=auth, timeout=0.5).status_code
            except httpx.TimeoutException:
                return 0
        a, b = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
        assert [send(a), send(a), send(b)] == [201, 201, 201]
        assert fake.sends_per_message_id() == {a: 2, b: 1}
        fake.failure_rate = 1.0
        statuses = [send(b) for _ in range(9)]
        assert all(s in (0, 429, 500, 502, 503) for s in statuses)
        assert sum(fake.failures.values()) == 9
        assert fake.sends_per_message_id() == {a: 2, b: 1}  # a refused call is no delivery


def test_the_hand_written_analysis_survives_a_new_report(tmp_path: Path) -> None:
    out = tmp_path / "CHAOS.md"
    assert kept_analysis(out) == ""
    out.write_text("# Chaos\n\n| old | table |\n\n## Analysis\n\nWhy it missed.\n")
    assert kept_analysis(out) == "## Analysis\n\nWhy it missed.\n"
    out.write_text("# Chaos\n\nno analysis\n")
    assert kept_analysis(out) == ""


def test_recovery_names_what_came_back_last() -> None:
    successes = {"sms": [(101.0, 103.0)], "push": [(99.0, 100.5)], "totp": []}
    assert accounting.recovery_parts(100.0, successes, caught_up_at=104.5) == {
        "sms": pytest.approx(3.0), "push": None, "audit": pytest.approx(4.5)}
    assert accounting.recovery_parts(100.0, {}, caught_up_at=90.0) == {"audit": 0.0}
