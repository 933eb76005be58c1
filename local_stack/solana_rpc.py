"""A Solana node's JSON-RPC on loopback: balances and SPL token accounts, answered in the node's own format.

JSON-RPC 2.0 over `POST /`, one call or a batch (a JSON array in, a JSON array of answers out, each
with its call's id). The methods wallet sync needs, with the result shapes of Solana's RPC docs:

    getBalance(pubkey, {commitment?, minContextSlot?})
        -> {"context": {"apiVersion": "2.2.14", "slot": 300000000}, "value": 1500000000}
    getTokenAccountsByOwner(pubkey, {"programId": ...} | {"mint": ...}, {"encoding": "jsonParsed", ...})
        -> {"context": {...}, "value": [{"pubkey": "...", "account": {"data": {"program": "spl-token",
            "parsed": {"info": {"isNative": false, "mint": "...", "owner": "...", "state": "initialized",
            "tokenAmount": {"amount": "123", "decimals": 6, "uiAmount": 0.000123,
            "uiAmountString": "0.000123"}}, "type": "account"}, "space": 165}, "executable": false,
            "lamports": 2039280, "owner": "Tokenkeg...", "rentEpoch": 18446744073709551615, "space": 165}}]}
    getSlot, getBlockTime(slot), getHealth, getGenesisHash, getVersion

Errors are the node's error objects: -32601 for an unknown method, -32602 for bad parameters (a
pubkey that is not base58 answers "Invalid param: Invalid", one that does not decode to 32 bytes
"Invalid param: WrongSize"), -32700 for a body that is not JSON, -32004 / -32009 from getBlockTime
for a slot not produced yet or skipped. Only the `jsonParsed` encoding of token accounts is served;
any other answers -32602. Every commitment level sees the same, current state.

The ledger is in memory: a current slot (`advance`), lamports per owner (`set_lamports`) and token
accounts (`add_token_account`, `set_token_amount`, `close_token_account`). Block times run from a
fixed genesis time at 0.4 s a slot. Wrapped-SOL accounts (mint So111...112) are native token
accounts: `isNative` true, a rent-exempt reserve, lamports = reserve + amount. Token-2022 accounts
carry the immutable-owner extension an associated token account gets (170 bytes).

It can be told to misbehave: answer 429 with Retry-After or 5xx (`fail_next`, `fail_always`), close
the connection unanswered (`drop_next`), send a body that is not JSON (`malformed_next`), answer one
method with an error object (`error_for`) or with a result of the wrong shape (`result_for`),
answer slowly (`delay_s`), answer batches in reverse order (`reverse_batches`). It counts requests
and the calls of each.

    with SolanaRpcServer() as node:
        wallet = pubkey_from_seed("alice")
        node.set_lamports(wallet, 1_500_000_000)
        node.add_token_account(wallet, USDC_MINT, 25_000_000, 6)
        reader = SolanaChainReader(JsonRpcClient(httpx.Client(), node.url, retry=policy))
        snapshot = reader.read([BalanceRequest(wallet)], known_decimals={})
        assert node.request_count == 2
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any

from local_stack.loopback_server import Answer, QuietHandler, ScriptedServer, decimal_json, send_answer

SPL_TOKEN_PROGRAM_ID = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105 - a public program id, not a secret
TOKEN_2022_PROGRAM_ID = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105 - a public program id, not a secret
NATIVE_MINT = "So11111111111111111111111111111111111111112"
MAINNET_GENESIS_HASH = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dxa5aP"
DEVNET_GENESIS_HASH = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG"
# Mainnet-beta's first block, 2020-03-16T14:29:00Z: block times count 0.4 s a slot from here.
GENESIS_UNIX_TIME = 1_584_368_940
SOLANA_CORE_VERSION = "2.2.14"
FEATURE_SET = 3_294_202_862
# What the jsonParsed encoding names each token program.
PROGRAMS = {"spl-token": SPL_TOKEN_PROGRAM_ID, "spl-token-2022": TOKEN_2022_PROGRAM_ID}
# A token account's size and its rent-exempt minimum: (bytes + 128) * 3480 lamports/byte-year * 2 years.
TOKEN_ACCOUNT_SPACE = {"spl-token": 165, "spl-token-2022": 170}
RENT_EPOCH_EXEMPT = 18_446_744_073_709_551_615
U64_MAX = 2**64 - 1

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(_BASE58_ALPHABET)}
# The longest base58 text of 32 bytes; longer input is refused before decoding, as the node does.
_MAX_PUBKEY_TEXT = 44
_COMMITMENTS = frozenset({"processed", "confirmed", "finalized"})


# -- base58 ----------------------------------------------------------------------------------------


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58: each leading zero byte is a '1', the rest is the number in base 58."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[remainder])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """The bytes of a base58 text; ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"{char!r} is not a base58 digit")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def pubkey_from_seed(seed: str) -> str:
    """A valid, stable 32-byte pubkey for a name: base58 of sha256(seed)."""
    return b58encode(hashlib.sha256(seed.encode()).digest())


def pubkey_problem(text: object) -> str | None:
    """None for a valid pubkey; otherwise the node's name for what is wrong ("Invalid" or "WrongSize")."""
    if not isinstance(text, str):
        return "Invalid"
    if len(text) > _MAX_PUBKEY_TEXT:
        return "WrongSize"
    try:
        decoded = b58decode(text)
    except ValueError:
        return "Invalid"
    return None if len(decoded) == 32 else "WrongSize"


def ui_amount_string(amount: int, decimals: int) -> str:
    """The amount in whole tokens, trailing zeros trimmed, as the node writes `uiAmountString`."""
    text = format(Decimal(amount).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- the ledger ------------------------------------------------------------------------------------


@dataclass
class TokenAccount:
    pubkey: str
    owner: str
    mint: str
    program: str  # "spl-token" or "spl-token-2022"
    amount: int
    decimals: int

    @property
    def space(self) -> int:
        return TOKEN_ACCOUNT_SPACE[self.program]

    @property
    def rent_exempt_lamports(self) -> int:
        return (self.space + 128) * 3480 * 2

    @property
    def is_native(self) -> bool:
        return self.mint == NATIVE_MINT


@dataclass(frozen=True)
class ReceivedRequest:
    methods: tuple[str, ...]  # the calls' methods, in the order sent (empty when the body was not JSON-RPC)
    batch: bool
    status: int | None  # None when the connection was dropped


@dataclass(frozen=True)
class _Override:
    param: str | None  # only calls whose first parameter is this; None: every call of the method
    error: tuple[int, str] | None = None
    result: Any = None


class _CallError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid_params(message: str) -> _CallError:
    return _CallError(-32602, message)


class SolanaRpcServer(ScriptedServer[ReceivedRequest]):
    """Start with `start()` (port 0: the OS picks a free one) or as a context manager; `url` is its endpoint."""

    thread_name = "solana-rpc"

    def __init__(
        self,
        *,
        slot: int = 300_000_000,
        genesis_hash: str = MAINNET_GENESIS_HASH,
        port: int = 0,
        request_log_size: int | None = None,
    ) -> None:
        self.genesis_hash = genesis_hash
        self.reverse_batches = False
        self._slot = slot
        super().__init__(port=port, request_log_size=request_log_size)
        self._lamports: dict[str, int] = {}
        self._accounts: dict[str, TokenAccount] = {}
        self._mints: dict[str, tuple[int, str]] = {NATIVE_MINT: (9, "spl-token")}  # mint -> (decimals, program)
        self._account_counter = 0
        self._skipped_slots: dict[int, bool] = {}  # slot -> answer null (True) or an error (False)
        self._overrides: dict[str, list[_Override]] = {}

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # -- the ledger ------------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        with self._lock:
            return self._slot

    def advance(self, slots: int = 1) -> int:
        """Moves the chain on by `slots`; returns the new current slot."""
        if slots < 0:
            raise ValueError("slots only move forward")
        with self._lock:
            self._slot += slots
            return self._slot

    @staticmethod
    def block_time_of(slot: int) -> int:
        """Unix seconds of a slot's block: the genesis time plus 0.4 s a slot, in whole seconds."""
        return GENESIS_UNIX_TIME + slot * 2 // 5

    def skip_slot(self, slot: int, *, answer_null: bool = False) -> None:
        """getBlockTime of this slot answers -32009 (skipped), or null with `answer_null`."""
        with self._lock:
            self._skipped_slots[slot] = answer_null

    def set_lamports(self, owner: str, lamports: int) -> None:
        _require_pubkey(owner)
        if not 0 <= lamports <= U64_MAX:
            raise ValueError("lamports are a u64")
        with self._lock:
            self._lamports[owner] = lamports

    def add_token_account(
        self, owner: str, mint: str, amount_base_units: int, decimals: int, program: str = "spl-token"
    ) -> str:
        """Opens a token account of `owner` for `mint` holding `amount_base_units`; returns its pubkey.

        A mint keeps the decimals and program of its first account: a later account that disagrees
        is refused, as a mint has one of each on chain.
        """
        _require_pubkey(owner)
        _require_pubkey(mint)
        if program not in PROGRAMS:
            raise ValueError(f"program must be one of {sorted(PROGRAMS)}")
        if not 0 <= amount_base_units <= U64_MAX or not 0 <= decimals <= 255:
            raise ValueError("the amount is a u64 and decimals a u8")
        with self._lock:
            known = self._mints.setdefault(mint, (decimals, program))
            if known != (decimals, program):
                raise ValueError(f"mint {mint} has {known[0]} decimals under {known[1]}")
            self._account_counter += 1
            pubkey = b58encode(hashlib.sha256(f"token-account:{self._account_counter}".encode()).digest())
            self._accounts[pubkey] = TokenAccount(pubkey, owner, mint, program, amount_base_units, decimals)
            return pubkey

    def set_token_amount(self, pubkey: str, amount: int) -> None:
        if not 0 <= amount <= U64_MAX:
            raise ValueError("the amount is a u64")
        with self._lock:
            self._accounts[pubkey].amount = amount

    def close_token_account(self, pubkey: str) -> None:
        with self._lock:
            del self._accounts[pubkey]

    # -- misbehaviour ----------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500, retry_after: str | int | None = None) -> None:
        """The next `count` requests get this HTTP status (and a Retry-After header when given)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": status, "message": "unavailable"}, "id": None})
        self._script(Answer(status, body.encode(), headers), count)

    def fail_always(self, status: int = 503, *, retry_after: str | int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._answer_always(Answer(status, b'{"jsonrpc":"2.0","error":{"code":503,"message":"unavailable"}}', headers))

    def malformed_next(self, count: int = 1) -> None:
        """The next `count` requests get a 200 whose body is not JSON."""
        self._script(Answer(200, b'[{"jsonrpc":"2.0","result":{"context":'), count)

    def error_for(self, method: str, code: int, message: str, *, param: str | None = None) -> None:
        """Calls of `method` (only those whose first parameter is `param`, when given) answer this error object."""
        with self._lock:
            self._overrides.setdefault(method, []).append(_Override(param, error=(code, message)))

    def result_for(self, method: str, result: Any, *, param: str | None = None) -> None:
        """Calls of `method` (only those whose first parameter is `param`, when given) answer this result as is."""
        with self._lock:
            self._overrides.setdefault(method, []).append(_Override(param, result=result))

    def heal(self) -> None:
        """Back to answering every request correctly and promptly."""
        super().heal()
        with self._lock:
            self._overrides.clear()
            self._skipped_slots.clear()
            self.reverse_batches = False

    # -- counters --------------------------------------------------------------------------------

    @property
    def calls_per_request(self) -> list[int]:
        return [len(request.methods) for request in self.requests]

    # -- answering -------------------------------------------------------------------------------

    def _answer(self, body: bytes, content_type: str) -> Answer:
        try:
            document: Any = json.loads(body)
        except ValueError:
            document = None
            parsed = False
        else:
            parsed = True
        batch = isinstance(document, list)
        entries = document if batch else [document]
        methods = tuple(
            entry["method"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("method"), str)
        )
        with self._lock:
            answer = self._choose_answer(parsed, document, content_type)
            self._record(ReceivedRequest(methods, batch, None if answer.drop_connection else answer.status))
        return answer

    def _choose_answer(self, parsed: bool, document: Any, content_type: str) -> Answer:
        scripted = self._scripted_answer()
        if scripted is not None:
            return scripted
        if content_type.split(";")[0].strip().lower() != "application/json":
            return Answer(415, b"Supported Content-Types: application/json", {"Content-Type": "text/plain"})
        if not parsed:
            return _json_answer(_error_entry(None, -32700, "Parse error"))
        if isinstance(document, list):
            if not document:
                return _json_answer(_error_entry(None, -32600, "Invalid request"))
            answers = [answer for entry in document if (answer := self._answer_call(entry)) is not None]
            if self.reverse_batches:
                answers.reverse()
            return _json_answer(answers)
        single = self._answer_call(document)
        return _json_answer(single) if single is not None else Answer(200, b"")

    def _answer_call(self, entry: Any) -> dict[str, Any] | None:
        """One call's answer; None for a notification (a call without an id gets none)."""
        if not isinstance(entry, dict) or entry.get("jsonrpc") != "2.0" or not isinstance(entry.get("method"), str):
            return _error_entry(None, -32600, "Invalid request")
        if "id" not in entry:
            return None
        call_id = entry["id"]
        params = entry.get("params", [])
        if not isinstance(params, list):
            return _error_entry(call_id, -32602, "Invalid params: expected an array of parameters")
        method = entry["method"]
        for override in reversed(self._overrides.get(method, [])):
            if override.param is None or (params and params[0] == override.param):
                if override.error is not None:
                    return _error_entry(call_id, *override.error)
                return {"jsonrpc": "2.0", "result": override.result, "id": call_id}
        handler = self._methods.get(method)
        if handler is None:
            return _error_entry(call_id, -32601, "Method not found")
        try:
            result = handler(self, params)
        except _CallError as error:
            return _error_entry(call_id, error.code, error.message)
        return {"jsonrpc": "2.0", "result": result, "id": call_id}

    def _context(self) -> dict[str, Any]:
        return {"apiVersion": SOLANA_CORE_VERSION, "slot": self._slot}

    def _read_config(self, params: list[Any], index: int) -> dict[str, Any]:
        config = params[index] if len(params) > index else None
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise _invalid_params("Invalid params: the configuration must be an object")
        commitment = config.get("commitment", "finalized")
        if commitment not in _COMMITMENTS:
            raise _invalid_params(
                f"Invalid params: unknown variant `{commitment}`, expected one of {sorted(_COMMITMENTS)}"
            )
        min_slot = config.get("minContextSlot")
        if min_slot is not None and (not _is_u64(min_slot) or min_slot > self._slot):
            raise _CallError(-32016, "Minimum context slot has not been reached")
        return config

    def _get_balance(self, params: list[Any]) -> dict[str, Any]:
        owner = _pubkey_param(params, 0)
        self._read_config(params, 1)
        return {"context": self._context(), "value": self._lamports.get(owner, 0)}

    def _get_token_accounts_by_owner(self, params: list[Any]) -> dict[str, Any]:
        owner = _pubkey_param(params, 0)
        selector = params[1] if len(params) > 1 else None
        if not isinstance(selector, dict) or len(selector) != 1 or not {"mint", "programId"} & selector.keys():
            raise _invalid_params('Invalid params: expected a filter object holding "mint" or "programId"')
        config = self._read_config(params, 2)
        encoding = config.get("encoding", "binary")
        if encoding != "jsonParsed":
            raise _invalid_params(f"Invalid params: encoding {encoding!r} is not served here; ask for jsonParsed")
        if "mint" in selector:
            mint = _pubkey_value(selector["mint"])
            if mint not in self._mints:
                raise _invalid_params("Invalid param: could not find mint")
            selected = [account for account in self._accounts.values() if account.mint == mint]
        else:
            program_id = _pubkey_value(selector["programId"])
            names = [name for name, program in PROGRAMS.items() if program == program_id]
            if not names:
                raise _invalid_params("Invalid param: unrecognized Token program id")
            selected = [account for account in self._accounts.values() if account.program == names[0]]
        return {
            "context": self._context(),
            "value": [_parsed_account(account) for account in selected if account.owner == owner],
        }

    def _get_slot(self, params: list[Any]) -> int:
        self._read_config(params, 0)
        return self._slot

    def _get_block_time(self, params: list[Any]) -> int | None:
        if not params or not _is_u64(params[0]):
            raise _invalid_params("Invalid params: expected a slot number (u64)")
        slot = params[0]
        if slot > self._slot:
            raise _CallError(-32004, f"Block not available for slot {slot}")
        if slot in self._skipped_slots:
            if self._skipped_slots[slot]:
                return None
            raise _CallError(-32009, f"Slot {slot} was skipped, or missing in long-term storage")
        return self.block_time_of(slot)

    def _get_health(self, _params: list[Any]) -> str:
        return "ok"

    def _get_genesis_hash(self, _params: list[Any]) -> str:
        return self.genesis_hash

    def _get_version(self, _params: list[Any]) -> dict[str, Any]:
        return {"feature-set": FEATURE_SET, "solana-core": SOLANA_CORE_VERSION}

    _methods = {
        "getBalance": _get_balance,
        "getTokenAccountsByOwner": _get_token_accounts_by_owner,
        "getSlot": _get_slot,
        "getBlockTime": _get_block_time,
        "getHealth": _get_health,
        "getGenesisHash": _get_genesis_hash,
        "getVersion": _get_version,
    }


def _is_u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U64_MAX


def _require_pubkey(text: str) -> None:
    if pubkey_problem(text) is not None:
        raise ValueError(f"{text!r} is not a base58 pubkey of 32 bytes")


def _pubkey_value(value: Any) -> str:
    problem = pubkey_problem(value)
    if problem is not None:
        raise _invalid_params(f"Invalid param: {problem}")
    return str(value)


def _pubkey_param(params: list[Any], index: int) -> str:
    if len(params) <= index:
        raise _invalid_params(f"Invalid params: invalid length {len(params)}, expected a pubkey at position {index}")
    return _pubkey_value(params[index])


def _token_amount(amount: int, decimals: int) -> dict[str, Any]:
    text = ui_amount_string(amount, decimals)
    # uiAmount is an f64 on the node; written here as a number literal with the same digits, ".0" when whole.
    ui_amount = Decimal(text) if "." in text else Decimal(f"{text}.0")
    return {"amount": str(amount), "decimals": decimals, "uiAmount": ui_amount, "uiAmountString": text}


def _parsed_account(account: TokenAccount) -> dict[str, Any]:
    info: dict[str, Any] = {"isNative": account.is_native, "mint": account.mint, "owner": account.owner}
    if account.is_native:
        info["rentExemptReserve"] = _token_amount(account.rent_exempt_lamports, 9)
    info["state"] = "initialized"
    info["tokenAmount"] = _token_amount(account.amount, account.decimals)
    if account.program == "spl-token-2022":
        info["extensions"] = [{"extension": "immutableOwner"}]
    lamports = account.rent_exempt_lamports + (account.amount if account.is_native else 0)
    return {
        "pubkey": account.pubkey,
        "account": {
            "data": {
                "program": account.program,
                "parsed": {"info": info, "type": "account"},
                "space": account.space,
            },
            "executable": False,
            "lamports": lamports,
            "owner": PROGRAMS[account.program],
            "rentEpoch": RENT_EPOCH_EXEMPT,
            "space": account.space,
        },
    }


def _error_entry(call_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": call_id}


def _json_answer(document: Any) -> Answer:
    return Answer(200, decimal_json(document).encode())


def _handler_for(node: SolanaRpcServer) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            answer = node._answer(body, self.headers.get("Content-Type", ""))
            send_answer(self, answer, delay_s=node.delay_s)

        def do_GET(self) -> None:
            # The node's own liveness probe; JSON-RPC is POST only.
            if self.path.split("?")[0] == "/health":
                send_answer(self, Answer(200, b"ok", {"Content-Type": "text/plain"}))
            else:
                send_answer(self, Answer(405, b"Used HTTP Method is not allowed. POST or OPTIONS is required"))

    return Handler
