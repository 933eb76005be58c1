"""SnapStart hooks: one snapshot resumes many environments, and each must reconnect and draw its own
random numbers; the hooks are called here directly, as the Lambda runtime would."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import pytest
from portfolio import wiring


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A container whose clients are built but never used: a standalone Redis client connects lazily."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("REDIS_CLUSTER_MODE", "false")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    wiring.reset()
    yield
    wiring.reset()


def test_given_clients_built_before_the_snapshot_when_restored_then_redis_and_httpx_ones_are_rebuilt(container):
    redis_client, cache, prices = wiring.redis_client(), wiring.portfolio_cache(), wiring.price_service()

    wiring.refresh_after_restore()

    assert wiring.redis_client() is not redis_client
    assert wiring.portfolio_cache() is not cache
    assert wiring.price_service() is not prices


def test_given_boto3_clients_and_settings_when_restored_then_they_are_kept(container):
    settings, dynamodb = wiring.settings(), wiring.dynamodb_client()

    wiring.refresh_after_restore()

    assert wiring.settings() is settings
    assert wiring.dynamodb_client() is dynamodb


def test_given_two_environments_restored_from_one_snapshot_then_their_random_sequences_differ():
    random.seed(20240101)
    in_snapshot = random.getstate()

    draws = []
    for _environment in range(2):
        random.setstate(in_snapshot)
        wiring.refresh_after_restore()
        draws.append([random.random() for _ in range(4)])

    random.setstate(in_snapshot)
    without_hook = [random.random() for _ in range(4)]
    random.setstate(in_snapshot)
    assert [random.random() for _ in range(4)] == without_hook  # what the hook prevents
    assert draws[0] != draws[1]
    assert without_hook not in draws


def test_given_the_snapshot_is_about_to_be_taken_then_what_first_use_imports_is_already_loaded(container):
    wiring.preload_for_snapshot()

    for module in ("boto3", "redis", "httpx", "aws_xray_sdk.core", "portfolio.adapters.coins_api"):
        assert module in sys.modules, module


def test_given_the_lambda_runtime_library_then_the_hooks_are_registered_once():
    snapshot_restore_py = pytest.importorskip("snapshot_restore_py")

    before = [hook for hook, _args, _kwargs in snapshot_restore_py.get_before_snapshot()]
    after = [hook for hook, _args, _kwargs in snapshot_restore_py.get_after_restore()]

    assert before.count(wiring.preload_for_snapshot) == 1
    assert after.count(wiring.refresh_after_restore) == 1
