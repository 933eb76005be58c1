"""The adapters' retry policy: capped exponential backoff with full jitter, Retry-After, deadlines."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from portfolio.adapters.retry import RetryPolicy


class FakeClock:
    """A monotonic clock that moves only when the policy sleeps."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def a_policy(
    *,
    max_attempts: int = 4,
    base_s: float = 0.2,
    cap_s: float = 1.0,
    jitter: float = 1.0,
    clock: FakeClock | None = None,
) -> RetryPolicy:
    clock = clock or FakeClock()
    return RetryPolicy(max_attempts, base_s, cap_s, sleep=clock.sleep, rng=lambda: jitter, clock=clock)


def test_given_jitter_pinned_to_its_maximum_when_backoff_is_computed_then_it_doubles_from_the_base_up_to_the_cap():
    policy = a_policy(base_s=0.2, cap_s=1.0, jitter=1.0)

    assert [policy.backoff(failures) for failures in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


@pytest.mark.parametrize(("jitter", "wait"), [(0.0, 0.0), (0.5, 0.4), (0.25, 0.2)])
def test_given_a_jitter_draw_when_backoff_is_computed_then_it_scales_the_ceiling(jitter, wait):
    assert a_policy(base_s=0.2, cap_s=1.0, jitter=jitter).backoff(3) == pytest.approx(wait)


@given(failures=st.integers(min_value=1, max_value=60), seed=st.integers())
def test_given_the_real_random_source_when_backoff_is_computed_then_it_stays_within_zero_and_the_ceiling(
    failures, seed
):
    policy = RetryPolicy(10, 0.05, 2.0, rng=random.Random(seed).random)

    assert 0.0 <= policy.backoff(failures) <= min(2.0, 0.05 * 2 ** (failures - 1))


def test_given_the_last_attempt_failed_when_asked_for_a_delay_then_the_policy_gives_up():
    policy = a_policy(max_attempts=3)

    assert policy.delay(2) is not None
    assert policy.delay(3) is None


def test_given_a_retry_after_longer_than_the_backoff_when_asked_for_a_delay_then_it_waits_as_long_as_the_server_asks():
    policy = a_policy(base_s=0.01, cap_s=1.0, jitter=1.0)

    assert policy.delay(1, retry_after=0.5) == 0.5


def test_given_a_retry_after_shorter_than_the_backoff_when_asked_for_a_delay_then_the_backoff_wins():
    policy = a_policy(base_s=0.2, cap_s=1.0, jitter=1.0)

    assert policy.delay(2, retry_after=0.1) == 0.4


def test_given_a_retry_after_beyond_the_cap_when_asked_for_a_delay_then_the_policy_gives_up():
    assert a_policy(cap_s=1.0).delay(1, retry_after=120) is None


def test_given_a_wait_that_would_reach_the_deadline_when_asked_for_a_delay_then_the_policy_gives_up():
    clock = FakeClock(now=100.0)
    policy = a_policy(base_s=0.2, cap_s=1.0, jitter=1.0, clock=clock)

    assert policy.delay(1, deadline=100.3) == 0.2
    assert policy.delay(2, deadline=100.3) is None
    assert policy.delay(1, deadline=100.2) is None
    assert policy.delay(1, retry_after=0.5, deadline=100.3) is None


def test_given_every_attempt_fails_when_attempts_are_iterated_then_it_sleeps_between_them_and_never_after_the_last():
    clock = FakeClock()
    policy = a_policy(max_attempts=4, base_s=0.1, cap_s=1.0, jitter=1.0, clock=clock)

    attempts = list(policy.attempts())

    assert attempts == [1, 2, 3, 4]
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_given_the_second_attempt_succeeds_when_attempts_are_iterated_then_one_wait_and_no_more():
    clock = FakeClock()
    policy = a_policy(max_attempts=5, clock=clock)

    for attempt in policy.attempts():
        if attempt == 2:
            break

    assert len(clock.sleeps) == 1


def test_given_a_deadline_when_attempts_are_iterated_then_no_sleep_passes_it():
    clock = FakeClock(now=0.0)
    policy = a_policy(max_attempts=10, base_s=0.1, cap_s=5.0, jitter=1.0, clock=clock)

    attempts = list(policy.attempts(deadline=0.5))

    # Waits of 0.1 and 0.2 fit before 0.5; the next one (0.4) would pass it
    assert attempts == [1, 2, 3]
    assert clock.now < 0.5


def test_given_a_single_attempt_when_attempts_are_iterated_then_no_wait_at_all():
    clock = FakeClock()

    assert list(a_policy(max_attempts=1, clock=clock).attempts()) == [1]
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "arguments", [{"max_attempts": 0, "base_s": 0.1, "cap_s": 1.0}, {"max_attempts": 3, "base_s": -1, "cap_s": 1.0}]
)
def test_given_impossible_settings_when_a_policy_is_made_then_it_is_refused(arguments):
    with pytest.raises(ValueError):
        RetryPolicy(**arguments)
