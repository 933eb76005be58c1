"""The local stack's chain nodes: which ones start, and what of their URLs the log shows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from local_stack import chain_nodes
from local_stack.chain_nodes import ChainNodeError, node_url_for_log, solana_slot_at, start_chain_nodes
from local_stack.config import LocalStackSettings
from local_stack.solana_rpc import SolanaRpcServer


def _settings(**variables: str) -> LocalStackSettings:
    return LocalStackSettings(**variables)  # type: ignore[arg-type]


def test_nodes_named_in_the_environment_start_nothing_here():
    stopped: list[str] = []
    nodes = start_chain_nodes(
        _settings(RPC_URL_ETHEREUM="https://eth.example.com/v2/key", RPC_URL_SOLANA="https://sol.example.com/key"),
        lambda name, _stop: stopped.append(name),
    )
    assert nodes.anvil is None
    assert nodes.solana is None
    assert stopped == []
    assert {chain: node.local for chain, node in nodes.nodes.items()} == {"ethereum": False, "solana": False}
    # The functions read those from the environment as they are: nothing to export
    assert nodes.environment() == {}


def test_an_empty_node_url_counts_as_unset():
    assert _settings(RPC_URL_ETHEREUM="").rpc_url("ethereum") is None


def test_without_the_pinned_anvil_the_stack_says_how_to_get_it(monkeypatch):
    monkeypatch.delenv("RPC_URL_ETHEREUM", raising=False)
    monkeypatch.setattr(chain_nodes, "find_anvil", lambda: Path("/nonexistent/anvil"))
    with pytest.raises(ChainNodeError, match="RPC_URL_ETHEREUM"):
        start_chain_nodes(_settings(RPC_URL_SOLANA="http://127.0.0.1:1"), lambda _name, _stop: None)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://eth-mainnet.example.com/v2/secret-key", "https://eth-mainnet.example.com/…"),
        ("https://node.example.com/?api-key=secret", "https://node.example.com/…"),
        ("https://user:secret@node.example.com:8443", "https://node.example.com:8443/…"),
        ("https://node.example.com", "https://node.example.com"),
    ],
)
def test_a_node_url_in_the_log_never_shows_a_provider_key(url, shown):
    assert node_url_for_log(url) == shown


def test_the_solana_fakes_block_time_follows_the_clock():
    now = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    assert abs(SolanaRpcServer.block_time_of(solana_slot_at(now)) - now) <= 1
