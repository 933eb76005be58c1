"""What a user's connections were told, in a real Redis and a real Redis Cluster: an older portfolio
version is never announced after a newer one, the figures kept are the newest delivered, and a Redis
that is down only costs the change (never the update)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from portfolio.adapters.pushed_figures import RedisPushedFigures, pushed_key
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.services.ports import PushClaim, PushedFigures
from portfolio.settings import Settings

from local_stack.ports import free_port

FIVE = PushedFigures(total_value_usd=Decimal("1000.5"), total_pnl_usd=Decimal("-2"), stale_price_count=0)
SIX = PushedFigures(total_value_usd=Decimal("1500.25"), total_pnl_usd=Decimal("497.75"), stale_price_count=1)


@pytest.fixture(params=["standalone", "cluster"])
def pushed(request: pytest.FixtureRequest) -> Iterator[RedisPushedFigures]:
    if request.param == "cluster":
        url = request.getfixturevalue("cluster_url")
        settings = Settings(REDIS_URL=url, REDIS_CLUSTER_MODE=True)
    else:
        settings = Settings(REDIS_URL=request.getfixturevalue("redis_url"))
    client = make_redis_client(settings)
    yield RedisPushedFigures(client)
    client.close()


@pytest.fixture
def user() -> str:
    return f"live-{uuid.uuid4().hex[:10]}"


def test_given_nothing_announced_when_claimed_then_current_without_figures(pushed, user):
    assert pushed.claim(user, 1) == PushClaim(current=True)


def test_given_version_6_announced_when_version_5_claims_then_it_is_not_current(pushed, user):
    pushed.claim(user, 6)

    assert pushed.claim(user, 5) == PushClaim(current=False)
    assert pushed.claim(user, 6).current
    assert pushed.claim(user, 7).current
    assert not pushed.claim(user, 6).current


def test_given_figures_delivered_then_the_next_claim_returns_them_and_the_other_users_none(pushed, user):
    pushed.claim(user, 5)
    pushed.remember(user, 5, FIVE)

    assert pushed.claim(user, 5) == PushClaim(current=True, delivered=FIVE)
    assert pushed.claim(f"{user}-other", 5) == PushClaim(current=True)


def test_given_newer_figures_delivered_when_older_ones_are_delivered_late_then_the_newer_are_kept(pushed, user):
    pushed.claim(user, 5)
    pushed.claim(user, 6)
    pushed.remember(user, 6, SIX)

    pushed.remember(user, 5, FIVE)

    assert pushed.claim(user, 6).delivered == SIX


def test_given_figures_forgotten_then_no_change_is_measured_but_the_version_still_holds(pushed, user):
    pushed.claim(user, 6)
    pushed.remember(user, 6, SIX)

    pushed.forget(user)

    assert pushed.claim(user, 6) == PushClaim(current=True)
    assert not pushed.claim(user, 5).current


def test_given_the_key_then_it_lives_as_long_as_a_connection(redis_url, user):
    client = make_redis_client(Settings(REDIS_URL=redis_url))
    pushed = RedisPushedFigures(client, ttl_ms=60_000)

    pushed.claim(user, 1)
    pushed.remember(user, 1, FIVE)

    assert 0 < client.pttl(pushed_key(user)) <= 60_000
    client.close()


def test_given_redis_down_then_every_update_is_current_and_nothing_raises(user):
    down = make_redis_client(
        Settings(
            REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_CONNECT_TIMEOUT_MS=100, REDIS_SOCKET_TIMEOUT_MS=100
        )
    )
    pushed = RedisPushedFigures(down)

    assert pushed.claim(user, 5) == PushClaim(current=True)
    pushed.remember(user, 5, FIVE)
    pushed.forget(user)
    assert pushed.claim(user, 4) == PushClaim(current=True)


def test_given_no_redis_configured_then_every_update_is_current(user):
    pushed = RedisPushedFigures(None)

    pushed.remember(user, 5, FIVE)
    pushed.forget(user)
    assert pushed.claim(user, 4) == PushClaim(current=True)
