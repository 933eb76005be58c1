"""Where the chains' nodes come from: variables locally, a Secrets Manager secret in AWS (moto's server
here, over HTTP), and their URLs kept out of every log line."""

from __future__ import annotations

import json
import logging
import uuid

import boto3
import pytest
from portfolio.adapters.chain_readers import configured_nodes, make_chain_readers
from portfolio.services.ports import BalanceRequest, ChainUnavailableError
from portfolio.settings import Settings, chain_nodes


@pytest.fixture
def rpc_secret(moto_endpoint: str) -> str:
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    document = {"ethereum": "http://127.0.0.1:9/v2/SECRET-KEY-1", "solana": "http://127.0.0.1:9/SECRET-KEY-2"}
    created = client.create_secret(Name=f"rpc-urls-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(document))
    return created["ARN"]


def test_given_the_url_secret_when_nodes_are_configured_then_its_chains_have_nodes_and_variables_win(
    rpc_secret: str, monkeypatch: pytest.MonkeyPatch
):
    # Given the secret, and a variable for one of its chains
    monkeypatch.setenv("RPC_URL_ETHEREUM", "http://127.0.0.1:8545")
    settings = Settings(RPC_URLS_SECRET_ARN=rpc_secret, WALLET_START_BLOCKS="ethereum=21000000")

    # When the nodes are configured
    nodes = configured_nodes(settings)

    # Then both chains have one, the variable over the secret, with the start block given
    assert sorted(nodes) == ["ethereum", "solana"]
    assert nodes["ethereum"].url.get_secret_value() == "http://127.0.0.1:8545"
    assert nodes["ethereum"].start_block == 21_000_000
    assert nodes["solana"].start_block == 0
    assert "SECRET-KEY" not in repr(nodes)


@pytest.mark.parametrize(
    ("environ", "start_blocks", "says"),
    [
        ({"RPC_URL_DOGECHAIN": "http://x"}, "", "does not support"),
        ({"RPC_URL_ETHEREUM": "http://x"}, "ethereum:5", "<chain>=<block number>"),
        ({"RPC_URL_ETHEREUM": "http://x"}, "narnia=5", "<chain>=<block number>"),
    ],
)
def test_given_a_misconfigured_node_when_read_then_it_says_what_is_wrong(
    environ: dict[str, str], start_blocks: str, says: str
):
    with pytest.raises(ValueError, match=says):
        chain_nodes(environ, start_blocks=start_blocks)


def test_given_a_node_url_with_a_key_when_a_read_fails_then_neither_logs_nor_the_error_show_it(
    rpc_secret: str, caplog: pytest.LogCaptureFixture
):
    # Given readers built from the secret (nodes nobody listens on)
    settings = Settings(RPC_URLS_SECRET_ARN=rpc_secret, WALLET_RPC_MAX_ATTEMPTS=1, WALLET_RPC_CONNECT_TIMEOUT_S=0.2)
    readers = make_chain_readers(settings, configured_nodes(settings))
    caplog.set_level(logging.DEBUG)

    # When a read fails
    with pytest.raises(ChainUnavailableError) as failed:
        readers["ethereum"].read([BalanceRequest("0x" + "ab" * 20)], known_decimals={})

    # Then the key is nowhere
    assert "SECRET-KEY" not in str(failed.value)
    assert "SECRET-KEY" not in caplog.text


def test_given_a_node_variable_for_an_unknown_chain_when_a_refresh_runs_then_users_are_still_valued(
    wallet_functions, user_id: str
):
    # Given node configuration that cannot be read, and a user with a transaction
    functions = wallet_functions(RPC_URL_SEPOLIA="http://127.0.0.1:9")
    buy = {
        "id": "b1",
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": "0x0000000000000000000000000000000000000000",
        "amount": "1",
        "priceUsd": "100",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    functions.api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy)

    # When a refresh runs, Then it completes: only wallet sync is off in that container
    assert functions.refresh(user_id) == {"batchItemFailures": []}


@pytest.fixture
def coins_api():
    from local_stack.coins_api import CoinsApiServer

    with CoinsApiServer(prices={}, price_every_coin=True) as api:
        yield api
