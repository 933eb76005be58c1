"""Which bucket a request spends (the caller's sub; reads or writes) and the 429 a refusal becomes."""

from __future__ import annotations

import json

import pytest
from portfolio.api.errors import RateLimited
from portfolio.api.request_guards import rate_limit_refusal
from portfolio.api.responses import error_response
from portfolio.services.ports import RateDecision, RequestKind

from local_stack.http_events import http_event


class RecordingLimiter:
    """A RateLimiter that answers `decision` and remembers what it was asked."""

    def __init__(self, decision: RateDecision) -> None:
        self.decision = decision
        self.asked: list[tuple[str, RequestKind]] = []

    def take(self, subject: str, kind: RequestKind) -> RateDecision:
        self.asked.append((subject, kind))
        return self.decision


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/portfolios/user-bob", RequestKind.READ),
        ("GET", "/portfolios/user-bob/transactions", RequestKind.READ),
        ("POST", "/portfolios/user-bob/transactions", RequestKind.WRITE),
        ("DELETE", "/portfolios/user-bob/transactions/tx-1", RequestKind.WRITE),
        ("PUT", "/portfolios/user-bob/settings", RequestKind.WRITE),
        ("POST", "/portfolios/user-bob/wallets/w-1/sync", RequestKind.WRITE),
    ],
)
def test_given_a_portfolio_route_when_checked_then_the_callers_sub_spends_from_its_read_or_write_bucket(
    method: str, path: str, kind: RequestKind
) -> None:
    limiter = RecordingLimiter(RateDecision(allowed=True))

    refusal = rate_limit_refusal(http_event(method, path, sub="user-alice"), limiter)

    assert refusal is None
    assert limiter.asked == [("user-alice", kind)]


@pytest.mark.parametrize("sub", [None, "user-alice"])
def test_given_health_or_a_request_without_claims_when_checked_then_no_bucket_is_asked(sub: str | None) -> None:
    limiter = RecordingLimiter(RateDecision(allowed=False, retry_after_s=5))

    assert rate_limit_refusal(http_event("GET", "/health", sub=sub), limiter) is None
    assert rate_limit_refusal(http_event("GET", "/portfolios/user-alice", sub=None), limiter) is None
    assert limiter.asked == []


@pytest.mark.parametrize(("wait_s", "header"), [(0.001, "1"), (0.5, "1"), (1.0, "1"), (1.2, "2"), (9.99, "10")])
def test_given_a_refusal_when_answered_then_429_rate_limited_with_retry_after_in_whole_seconds_rounded_up(
    wait_s: float, header: str
) -> None:
    limiter = RecordingLimiter(RateDecision(allowed=False, retry_after_s=wait_s))

    refusal = rate_limit_refusal(http_event("POST", "/portfolios/user-alice/transactions", sub="user-alice"), limiter)

    assert isinstance(refusal, RateLimited)
    response = error_response(refusal)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == header
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(str(response.body))
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["details"] == {"limit": "write", "retryAfterSeconds": int(header)}


def test_given_a_limit_that_could_not_be_checked_when_answered_then_the_request_goes_on() -> None:
    limiter = RecordingLimiter(RateDecision(allowed=True, checked=False))

    assert rate_limit_refusal(http_event("GET", "/portfolios/user-alice", sub="user-alice"), limiter) is None
