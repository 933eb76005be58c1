"""Key shapes and TTL jitter: pure rules, no Redis."""

from __future__ import annotations

import random

import pytest
from portfolio.adapters.portfolio_cache import CacheKey, CacheKind, jittered_ttl_ms
from redis.crc import key_slot


def test_given_each_kind_when_building_keys_then_they_keep_the_seed_shape_with_a_literal_hash_tag() -> None:
    # Given / When / Then
    assert CacheKey(CacheKind.PORTFOLIO, "alice").value == "portfolio:cross-chain:{alice}"
    assert CacheKey(CacheKind.PERFORMANCE, "alice").value == "performance:cross-chain:{alice}"
    assert CacheKey(CacheKind.ASSETS, "alice", "chain=base").value == "assets:cross-chain:{alice}:chain=base"
    assert CacheKey(CacheKind.TRANSACTIONS, "alice", "p2").value == "transactions:cross-chain:{alice}:p2"


def test_given_different_filter_keys_when_building_keys_then_each_view_has_its_own_key() -> None:
    # Given
    filters = ["", "chain=base", "chain=ethereum", "chain=ethereum&min=1"]

    # When
    keys = {CacheKey(CacheKind.ASSETS, "alice", f).value for f in filters}

    # Then
    assert len(keys) == len(filters)


def test_given_one_user_when_building_all_their_keys_then_every_key_lands_in_one_cluster_slot() -> None:
    # Given: value, generation and lock keys of every kind, with and without a filter key
    keys = []
    for kind in CacheKind:
        for filter_key in ("", "chain={odd}"):
            key = CacheKey(kind, "alice", filter_key)
            keys += [key.value, key.generation, key.lock]

    # When
    slots = {key_slot(k.encode()) for k in keys}

    # Then: multi-key commands and scripts over them are legal in cluster mode
    assert slots == {key_slot(b"{alice}")}


@pytest.mark.parametrize("user_id", ["", "a}b", "{alice}", "x{y"])
def test_given_a_user_id_that_would_break_the_hash_tag_when_building_a_key_then_it_is_refused(user_id: str) -> None:
    with pytest.raises(ValueError, match="braces"):
        CacheKey(CacheKind.PORTFOLIO, user_id)


def test_given_a_jitter_ratio_when_drawing_ttls_then_they_vary_within_ttl_and_ratio() -> None:
    # Given
    rng = random.Random(7)

    # When
    ttls = [jittered_ttl_ms(300, 0.1, rng) for _ in range(2_000)]

    # Then
    assert min(ttls) >= 270_000
    assert max(ttls) <= 300_000
    assert len(set(ttls)) > 1_000


def test_given_no_jitter_when_drawing_ttls_then_the_configured_ttl_is_used_exactly() -> None:
    assert {jittered_ttl_ms(600, 0.0, random.Random()) for _ in range(50)} == {600_000}
