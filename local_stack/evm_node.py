"""A local EVM node for wallet sync: the project's pinned anvil (local_stack/evm, `make` installs it) on a
free loopback port, and the few chain-changing steps tests and `make dev` need, over plain JSON-RPC.

    with AnvilNode(chain_id=1) as node:
        token = node.deploy_token("Demo USD", "DUSD", 6)
        node.mint(token, wallet, 250 * 10**6)
        node.set_native_balance(wallet, 3 * 10**18)
        ...  # point an EvmChainReader at node.url

The node mines a block per transaction (no block time) unless `block_time_s` is given, and charges no
gas: the base fee is zero and every transaction sent from here pays a gas price of zero, so a native
balance changes by exactly what a test moves. anvil's dev accounts are unlocked; any other sender is
impersonated for the one transaction. `kill()` takes the node down hard and `restart()` brings a fresh
chain (same chain id, empty state) back on the same port, as a crashed node coming back would.

ABI encoding is hand-written and minimal: the token's constructor (string, string, uint8) and the two
calls the helpers make. DemoToken.json beside the Solidity source holds the compiled contract
(local_stack/evm/build_contracts.py rebuilds it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from local_stack.ports import free_port

EVM_DIR = Path(__file__).resolve().parent / "evm"
ANVIL = EVM_DIR / "node_modules" / ".bin" / "anvil"
DEMO_TOKEN_PATH = EVM_DIR / "DemoToken.json"

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0

# Function selectors: the first 4 bytes of keccak256 of the signature.
TRANSFER_SELECTOR = "a9059cbb"  # transfer(address,uint256)
MINT_SELECTOR = "40c10f19"  # mint(address,uint256)
# The event topic every ERC-20 (and ERC-721) transfer is logged under.
TRANSFER_TOPIC = (
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"  # Transfer(address,address,uint256)
)

_WORD_BYTES = 32


class AnvilRpcError(Exception):
    """The node answered a call with an error object (or not at all)."""

    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error


def find_anvil() -> Path:
    """The anvil binary npm installed for this platform; else npm's launcher (a node script that runs it)."""
    natives = sorted((EVM_DIR / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))
    return natives[0] if len(natives) == 1 else ANVIL


def load_demo_token() -> dict[str, Any]:
    """DemoToken's compiled form: {"abi": [...], "bytecode": "0x..."}."""
    compiled: dict[str, Any] = json.loads(DEMO_TOKEN_PATH.read_text())
    if not str(compiled.get("bytecode", "")).startswith("0x") or not isinstance(compiled.get("abi"), list):
        raise ValueError(f"{DEMO_TOKEN_PATH.name} is not a compiled contract (abi and 0x bytecode)")
    return compiled


# ABI encoding -----------------------------------------------------------------------------------------


def encode_uint(value: int) -> str:
    """One 32-byte word, hex without 0x."""
    if not 0 <= value < 2 ** (8 * _WORD_BYTES):
        raise ValueError(f"{value} does not fit a uint256")
    return f"{value:064x}"


def encode_address(address: str) -> str:
    """An address left-padded to one word, hex without 0x."""
    digits = address.lower().removeprefix("0x")
    if len(digits) != 40:
        raise ValueError(f"{address!r} is not an EVM address")
    return digits.rjust(2 * _WORD_BYTES, "0")


def _encode_string_tail(text: str) -> str:
    data = text.encode()
    padded = data.hex().ljust(-(-len(data) // _WORD_BYTES) * 2 * _WORD_BYTES, "0")
    return encode_uint(len(data)) + padded


def encode_constructor_args(name: str, symbol: str, decimals: int) -> str:
    """(string, string, uint8): two offsets and the uint8 in the head, then each string's length and bytes."""
    if not 0 <= decimals <= 255:
        raise ValueError("decimals must fit a uint8")
    name_tail = _encode_string_tail(name)
    head_size = 3 * _WORD_BYTES
    name_offset = head_size
    symbol_offset = head_size + len(name_tail) // 2
    return (
        encode_uint(name_offset)
        + encode_uint(symbol_offset)
        + encode_uint(decimals)
        + name_tail
        + _encode_string_tail(symbol)
    )


def _call_data(selector: str, to: str, amount: int) -> str:
    return "0x" + selector + encode_address(to) + encode_uint(amount)


def _http_client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(10.0, connect=1.0))


# The node ---------------------------------------------------------------------------------------------


class AnvilNode:
    """The pinned anvil on 127.0.0.1:`port` (a free one unless given); start with `start()` or `with`."""

    def __init__(
        self,
        *,
        chain_id: int = 1,
        port: int | None = None,
        block_time_s: float | None = None,
        executable: Path | str | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.port = port if port is not None else free_port()
        self.block_time_s = block_time_s
        self.executable = Path(executable) if executable is not None else find_anvil()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._http = _http_client()
        self._accounts: list[str] | None = None
        self._next_id = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------

    def arguments(self) -> list[str]:
        arguments = [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--block-base-fee-per-gas",
            "0",
            "--quiet",
        ]
        if self.block_time_s is not None:
            arguments += ["--block-time", str(self.block_time_s)]
        return arguments

    def start(self) -> AnvilNode:
        if not self.executable.exists():
            raise RuntimeError(f"{self.executable} is missing: run `make {ANVIL.relative_to(EVM_DIR.parent.parent)}`")
        # Connections pooled before a kill() went down with the node.
        self._http.close()
        self._http = _http_client()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while the node runs, closed when it ends
        self._process = subprocess.Popen(  # noqa: S603 - the pinned anvil on a fixed argument list, no shell
            [str(self.executable), *self.arguments()],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            # Its own process group: when started through npm's launcher, both processes stop together.
            start_new_session=True,
        )
        try:
            self._wait_until_answering()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"anvil exited with {self._process.returncode}: {self._stderr_tail()}")
            try:
                answered = int(self.rpc("eth_chainId", []), 16)
            except (httpx.TransportError, AnvilRpcError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"anvil did not answer on port {self.port} in {STARTUP_TIMEOUT_S}s") from None
                time.sleep(0.05)
                continue
            if answered != self.chain_id:
                raise RuntimeError(f"port {self.port} answers chain id {answered}, not {self.chain_id}: another node?")
            return

    def _stderr_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-500:].decode(errors="replace").strip()

    def kill(self) -> None:
        """Take the node down hard (SIGKILL), as a crash would; `restart()` brings it back."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Stop it for good (SIGTERM, SIGKILL if it lingers)."""
        self._end(signal.SIGTERM)
        self._http.close()

    def restart(self) -> AnvilNode:
        """A fresh chain on the same port and chain id (the state before is gone)."""
        self.kill()
        self._accounts = None
        return self.start()

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, how)
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=STOP_TIMEOUT_S)
                except ProcessLookupError:
                    pass
            else:
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- JSON-RPC --------------------------------------------------------------------------------

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """One call; its error object raises AnvilRpcError."""
        self._next_id += 1
        response = self._http.post(
            self.url, json={"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or []}
        )
        response.raise_for_status()
        answer = response.json()
        if "error" in answer:
            raise AnvilRpcError(method, answer["error"])
        return answer.get("result")

    @property
    def accounts(self) -> list[str]:
        """anvil's unlocked dev accounts, lowercase; the first deploys and owns the tokens."""
        if self._accounts is None:
            self._accounts = [account.lower() for account in self.rpc("eth_accounts")]
        return list(self._accounts)

    @property
    def deployer(self) -> str:
        return self.accounts[0]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def snapshot(self) -> str:
        """An id to `revert` to: the chain as it is now (anvil forgets it once reverted to)."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        if self.rpc("evm_revert", [snapshot_id]) is not True:
            raise AnvilRpcError("evm_revert", f"no snapshot {snapshot_id}")

    # -- transactions ----------------------------------------------------------------------------

    def send_transaction(
        self, sender: str, *, to: str | None = None, data: str = "0x", value: int = 0
    ) -> dict[str, Any]:
        """Send, mined at once; the receipt. A sender that is not a dev account is impersonated for it.
        A reverted transaction raises AnvilRpcError."""
        sender = sender.lower()
        transaction: dict[str, Any] = {"from": sender, "data": data, "value": hex(value), "gasPrice": "0x0"}
        if to is not None:
            transaction["to"] = to.lower()
        impersonate = sender not in self.accounts
        if impersonate:
            self.rpc("anvil_impersonateAccount", [sender])
        try:
            tx_hash = self.rpc("eth_sendTransaction", [transaction])
        finally:
            if impersonate:
                self.rpc("anvil_stopImpersonatingAccount", [sender])
        receipt = self._receipt(tx_hash)
        if int(receipt.get("status", "0x0"), 16) != 1:
            raise AnvilRpcError("eth_sendTransaction", f"transaction {tx_hash} reverted")
        return receipt

    def _receipt(self, tx_hash: str) -> dict[str, Any]:
        # Mined with the transaction unless a block time is set: then wait for its block.
        deadline = time.monotonic() + max(10.0, 3 * (self.block_time_s or 0))
        while (receipt := self.rpc("eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"transaction {tx_hash} was not mined")
            time.sleep(0.02)
        return dict(receipt)

    def deploy_token(self, name: str, symbol: str, decimals: int) -> str:
        """Deploys a DemoToken from the first dev account (its owner, who alone may mint); its address, lowercase."""
        code = load_demo_token()["bytecode"] + encode_constructor_args(name, symbol, decimals)
        receipt = self.send_transaction(self.deployer, data=code)
        return str(receipt["contractAddress"]).lower()

    def mint(self, token: str, to: str, amount: int) -> dict[str, Any]:
        """`amount` base units of a DemoToken to `to` (a Transfer from the zero address)."""
        return self.send_transaction(self.deployer, to=token, data=_call_data(MINT_SELECTOR, to, amount))

    def transfer(self, token: str, from_account: str, to: str, amount: int) -> dict[str, Any]:
        """An ERC-20 transfer of `amount` base units sent by `from_account` (any address)."""
        return self.send_transaction(from_account, to=token, data=_call_data(TRANSFER_SELECTOR, to, amount))

    def set_native_balance(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", [address.lower(), hex(wei)])

    def native_balance(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", [address.lower(), "latest"]), 16)

    def send_native(self, from_account: str, to: str, wei: int) -> dict[str, Any]:
        """Moves exactly `wei` (no gas is charged)."""
        return self.send_transaction(from_account, to=to, value=wei)

    def set_code(self, address: str, code: str) -> None:
        """Puts runtime bytecode at an address (a contract that misbehaves, for instance)."""
        self.rpc("anvil_setCode", [address.lower(), code])
