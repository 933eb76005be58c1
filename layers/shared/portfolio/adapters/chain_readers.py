"""The chain readers of this container: one per chain with a node, over one shared HTTP client.

Node URLs come from `RPC_URL_<CHAIN>` variables or the Secrets Manager secret named by
RPC_URLS_SECRET_ARN (a JSON object chain -> URL), read once per container through Powertools'
parameters utility. They often carry a provider key, so they are kept out of every log line.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from portfolio.adapters.coins_api import keep_out_of_http_logs
from portfolio.adapters.evm_chain_reader import EvmChainReader
from portfolio.adapters.json_rpc import JsonRpcClient
from portfolio.adapters.retry import RetryPolicy
from portfolio.adapters.solana_chain_reader import MAINNET_GENESIS_HASH, SolanaChainReader
from portfolio.domain.tokens import CHAINS
from portfolio.services.ports import ChainReader
from portfolio.settings import ChainNode, Settings, chain_nodes

USER_AGENT = "cross-chain-portfolio/0.1 (+wallets)"
# Backoff between whole-request retries: a node that rate-limits asks for seconds, not minutes.
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 4.0


def configured_nodes(settings: Settings, *, secret_reader: Any = None) -> dict[str, ChainNode]:
    """Every chain with a node: the variables, then the secret's entries for the other chains."""
    secret: dict[str, str] = {}
    if settings.rpc_urls_secret_arn:
        if secret_reader is None:
            from aws_lambda_powertools.utilities import parameters

            secret_reader = parameters.get_secret
        raw = secret_reader(settings.rpc_urls_secret_arn)
        document = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        if not isinstance(document, dict):
            raise ValueError("the RPC URL secret must be a JSON object of chain -> URL")
        secret = {str(chain): str(url) for chain, url in document.items()}
    return chain_nodes(secret=secret, start_blocks=settings.wallet_start_blocks)


def make_chain_readers(settings: Settings, nodes: dict[str, ChainNode]) -> dict[str, ChainReader]:
    if not nodes:
        return {}
    client = httpx.Client(
        timeout=httpx.Timeout(
            connect=settings.wallet_rpc_connect_timeout_s,
            read=settings.wallet_rpc_read_timeout_s,
            write=settings.wallet_rpc_connect_timeout_s,
            pool=settings.wallet_rpc_connect_timeout_s,
        ),
        limits=httpx.Limits(max_connections=2 * len(nodes), max_keepalive_connections=2 * len(nodes)),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )
    retry = RetryPolicy(settings.wallet_rpc_max_attempts, BACKOFF_BASE_S, BACKOFF_CAP_S)
    readers: dict[str, ChainReader] = {}
    for chain, node in nodes.items():
        url = node.url.get_secret_value()
        keep_out_of_http_logs(url)
        rpc = JsonRpcClient(
            client,
            url,
            retry=retry,
            connect_timeout_s=settings.wallet_rpc_connect_timeout_s,
            read_timeout_s=settings.wallet_rpc_read_timeout_s,
        )
        spec = CHAINS[chain]
        if spec.is_evm:
            assert spec.chain_id is not None
            readers[chain] = EvmChainReader(
                chain,
                spec.chain_id,
                rpc,
                batch_size=settings.wallet_rpc_batch_size,
                log_block_range=settings.wallet_log_block_range,
                log_ranges_per_read=settings.wallet_log_ranges_per_sync,
            )
        else:
            readers[chain] = SolanaChainReader(
                rpc, batch_size=settings.wallet_rpc_batch_size, expected_genesis_hash=MAINNET_GENESIS_HASH
            )
    return readers
