"""Wallet sync's nodes for the local stack: the ones the environment names, else nodes of this machine.

- Ethereum: `RPC_URL_ETHEREUM` when set; else the project's pinned anvil (local_stack/evm, installed by
  `make`) on a free loopback port, with chain id 1 (Ethereum's, which the wallet reader checks).
- Solana: `RPC_URL_SOLANA` when set; else `SolanaRpcServer`, a JSON-RPC fake answering with mainnet's
  genesis hash, its slot kept in step with the clock (0.4 s a slot), so block times are "now".

The functions find each node as they do in AWS, through `RPC_URL_<CHAIN>` (portfolio.settings); the
local ones are exported there before the functions are imported. Any other `RPC_URL_<CHAIN>` of the
environment reaches the functions as it is. Node URLs are secrets (a provider's key is usually in its
path or query), so `node_url_for_log` keeps only the scheme and host of one that is not local.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from local_stack.config import LocalStackSettings
from local_stack.evm_node import ANVIL, EVM_DIR, AnvilNode, find_anvil
from local_stack.solana_rpc import GENESIS_UNIX_TIME, SolanaRpcServer

RPC_URL_PREFIX = "RPC_URL_"
ETHEREUM_CHAIN_ID = 1
# Solana produces a slot every 0.4 s: 5 slots every 2 seconds.
SOLANA_SLOTS_PER_2_S = 5

OnStop = Callable[[str, Callable[[], None]], None]


class ChainNodeError(Exception):
    """A local node could not start; the message says what to do."""


@dataclass(frozen=True)
class ChainNode:
    chain: str
    url: str
    local: bool  # started by the stack for this run (and stopped with it)
    kind: str  # what answers there, for the startup log

    @property
    def variable(self) -> str:
        return f"{RPC_URL_PREFIX}{self.chain.upper()}"


@dataclass
class ChainNodes:
    nodes: dict[str, ChainNode] = field(default_factory=dict)
    anvil: AnvilNode | None = None
    solana: SolanaRpcServer | None = None

    def environment(self) -> dict[str, str]:
        """`RPC_URL_<CHAIN>` of the nodes started here, for the functions."""
        return {node.variable: node.url for node in self.nodes.values() if node.local}


def node_url_for_log(url: str) -> str:
    """A node URL fit for a log line: a loopback one whole, any other as scheme://host/… (its key hidden)."""
    parts = urlsplit(url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and not parts.password:
        return url
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    hidden = "/…" if parts.path.strip("/") or parts.query or parts.username else ""
    return f"{parts.scheme}://{host}{hidden}"


def solana_slot_at(unix_time: float) -> int:
    """The slot of the fake's clock at a moment: its genesis time plus 0.4 s a slot."""
    return int((unix_time - GENESIS_UNIX_TIME) * SOLANA_SLOTS_PER_2_S // 2)


class SolanaClock(threading.Thread):
    """Moves the fake's slot on with the wall clock, so each read pins a newer slot, as a live node's would."""

    def __init__(self, server: SolanaRpcServer, *, every_s: float = 1.0) -> None:
        super().__init__(name="solana-clock", daemon=True)
        self._server = server
        self._every_s = every_s
        self._stop_requested = threading.Event()

    def run(self) -> None:
        while not self._stop_requested.wait(self._every_s):
            behind = solana_slot_at(time.time()) - self._server.slot
            if behind > 0:
                self._server.advance(behind)

    def stop(self) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout=5)


def start_chain_nodes(settings: LocalStackSettings, on_stop: OnStop) -> ChainNodes:
    """Ethereum's and Solana's nodes: the configured ones, else started here (each handed to `on_stop`)."""
    started = ChainNodes()
    configured = settings.rpc_url("ethereum")
    if configured:
        started.nodes["ethereum"] = ChainNode("ethereum", configured, local=False, kind="from RPC_URL_ETHEREUM")
    else:
        started.anvil = _start_anvil()
        on_stop("anvil", started.anvil.stop)
        started.nodes["ethereum"] = ChainNode(
            "ethereum",
            started.anvil.url,
            local=True,
            kind=f"local: anvil {pinned_anvil_version()}, chain id {ETHEREUM_CHAIN_ID}",
        )

    configured = settings.rpc_url("solana")
    if configured:
        started.nodes["solana"] = ChainNode("solana", configured, local=False, kind="from RPC_URL_SOLANA")
    else:
        solana = SolanaRpcServer(slot=solana_slot_at(time.time()), request_log_size=100).start()
        on_stop("solana node", solana.stop)
        clock = SolanaClock(solana)
        clock.start()
        on_stop("solana clock", clock.stop)
        started.solana = solana
        started.nodes["solana"] = ChainNode(
            "solana", solana.url, local=True, kind="local: Solana JSON-RPC fake, mainnet genesis"
        )
    return started


def other_configured_nodes(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Chains other than Ethereum and Solana whose node the environment names: chain -> URL."""
    environ = dict(os.environ) if environ is None else environ
    return {
        name.removeprefix(RPC_URL_PREFIX).lower(): value
        for name, value in sorted(environ.items())
        if name.startswith(RPC_URL_PREFIX) and value and name not in ("RPC_URL_ETHEREUM", "RPC_URL_SOLANA")
    }


def pinned_anvil_version() -> str:
    """The anvil version local_stack/evm/package.json pins ("?" when it cannot be read)."""
    try:
        manifest = json.loads((EVM_DIR / "package.json").read_text())
    except (OSError, ValueError):
        return "?"
    return str(manifest.get("devDependencies", {}).get("@foundry-rs/anvil", "?"))


def _start_anvil() -> AnvilNode:
    executable = find_anvil()
    if not executable.exists():
        raise ChainNodeError(
            f"the local EVM node is not installed ({ANVIL.relative_to(EVM_DIR.parent.parent)} is missing): "
            "`make dev` installs it with npm, or set RPC_URL_ETHEREUM to a node of your own"
        )
    try:
        return AnvilNode(chain_id=ETHEREUM_CHAIN_ID, executable=executable).start()
    except (RuntimeError, TimeoutError, OSError) as error:
        raise ChainNodeError(
            f"the local EVM node (anvil) did not start: {error}; or set RPC_URL_ETHEREUM to a node"
        ) from error
