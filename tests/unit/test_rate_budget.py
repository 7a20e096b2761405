"""The gateway's per-caller token bucket, driven by an injected clock."""

from __future__ import annotations

import pytest

from gateway.rate_budget import RateBudget

T0 = 1_000.0


def test_a_fresh_caller_may_burst_up_to_capacity() -> None:
    budget = RateBudget(capacity=5, refill_per_s=1)
    assert [budget.take("alice", T0) for _ in range(5)] == [0.0] * 5
    assert budget.take("alice", T0) > 0.0


def test_the_defaults_allow_a_burst_of_sixty() -> None:
    budget = RateBudget()
    assert all(budget.take("alice", T0) == 0.0 for _ in range(60))
    # Empty: one token comes back after 1/20 s.
    assert budget.take("alice", T0) == pytest.approx(0.05)


def test_an_empty_budget_says_how_long_until_one_request() -> None:
    budget = RateBudget(capacity=2, refill_per_s=0.5)
    budget.take("alice", T0)
    budget.take("alice", T0)
    assert budget.take("alice", T0) == pytest.approx(2.0)
    # Half a token has come back a second later: another second to go.
    assert budget.take("alice", T0 + 1.0) == pytest.approx(1.0)


def test_refill_restores_requests_at_the_configured_rate() -> None:
    budget = RateBudget(capacity=3, refill_per_s=2)
    for _ in range(3):
        assert budget.take("alice", T0) == 0.0
    assert budget.take("alice", T0 + 0.25) > 0.0  # half a token
    assert budget.take("alice", T0 + 0.5) == 0.0  # one token, spent
    assert budget.take("alice", T0 + 0.5) > 0.0
    # 1.5 s at 2/s is three tokens: exactly a full budget again.
    assert [budget.take("alice", T0 + 2.0) for _ in range(3)] == [0.0] * 3
    assert budget.take("alice", T0 + 2.0) > 0.0


def test_refill_never_exceeds_capacity() -> None:
    budget = RateBudget(capacity=3, refill_per_s=10)
    budget.take("alice", T0)
    # An hour idle still buys only a burst of three.
    later = T0 + 3600
    assert [budget.take("alice", later) for _ in range(3)] == [0.0] * 3
    assert budget.take("alice", later) == pytest.approx(0.1)


def test_refused_requests_do_not_spend_tokens() -> None:
    budget = RateBudget(capacity=1, refill_per_s=1)
    budget.take("alice", T0)
    for _ in range(10):
        assert budget.take("alice", T0 + 0.5) == pytest.approx(0.5)
    assert budget.take("alice", T0 + 1.0) == 0.0


def test_callers_have_separate_budgets() -> None:
    budget = RateBudget(capacity=2, refill_per_s=1)
    budget.take("alice", T0)
    budget.take("alice", T0)
    assert budget.take("alice", T0) > 0.0
    assert budget.take("bob", T0) == 0.0
    assert budget.take("bob", T0) == 0.0
    assert budget.take("bob", T0) > 0.0
    assert budget.take("carol", T0) == 0.0


@pytest.mark.parametrize(
    ("wait_s", "header"),
    [
        (0.0, "1"),
        (0.001, "1"),
        (0.05, "1"),
        (1.0, "1"),
        (1.0001, "2"),
        (2.5, "3"),
        (3.0, "3"),
        (59.2, "60"),
    ],
)
def test_retry_after_rounds_up_to_whole_seconds_at_least_one(wait_s: float, header: str) -> None:
    assert RateBudget.retry_after_header(wait_s) == header


def test_retry_after_from_a_real_wait() -> None:
    budget = RateBudget(capacity=1, refill_per_s=0.3)
    budget.take("alice", T0)
    wait = budget.take("alice", T0)
    assert wait == pytest.approx(1 / 0.3)
    assert RateBudget.retry_after_header(wait) == "4"


def test_callers_whose_budget_refilled_are_forgotten() -> None:
    budget = RateBudget(capacity=2.0, refill_per_s=1.0, prune_above=3)
    for caller in ("a", "b", "c", "d"):
        budget.take(caller, now=0.0)
    # Two seconds later every bucket is full again: nothing is lost by forgetting them.
    assert budget.take("e", now=2.5) == 0.0
    assert set(budget._buckets) == {"e"}
    # A caller still inside its refill window is kept.
    budget = RateBudget(capacity=2.0, refill_per_s=1.0, prune_above=1)
    budget.take("a", now=0.0)
    budget.take("b", now=0.0)
    budget.take("c", now=1.0)
    assert set(budget._buckets) == {"a", "b", "c"}
