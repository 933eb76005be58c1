"""Linked wallets: which addresses a user syncs from which chains, and how each chain's last sync went.

An address is validated once, at the edge, by its family:
- EVM: `0x` and 40 hex digits. All-lowercase (or all-uppercase) is taken as it is; mixed case is an
  EIP-55 checksum and must be right, since a wrong one means a typo. Stored lowercase.
- Solana: base58 that decodes to a 32-byte public key. Stored as given (base58 is case-sensitive).

A wallet's id is derived from its address, so linking the same address twice finds the same wallet.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import Field

from portfolio.domain.errors import InvalidInputError
from portfolio.domain.tokens import CHAINS, TokenId
from portfolio.domain.transactions import WALLET_ID_PATTERN
from portfolio.wire_format import CamelModel

MAX_WALLETS_PER_USER = 20

_EVM_SHAPE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_VALUES = {character: value for value, character in enumerate(_BASE58_ALPHABET)}
SOLANA_KEY_BYTES = 32


class AddressFamily(StrEnum):
    EVM = "evm"
    SOLANA = "solana"


class SyncStatus(StrEnum):
    PENDING = "pending"  # linked, not synced yet
    OK = "ok"
    ERROR = "error"


def evm_checksum(address: str) -> str:
    """The EIP-55 form of a 0x address: each hex letter upper case where the Keccak-256 hash of the
    lowercase address has a nibble of 8 or more at that position."""
    from Crypto.Hash import keccak  # only mixed-case addresses need it: kept off the cold start

    lower = address.lower().removeprefix("0x")
    digest = keccak.new(digest_bits=256, data=lower.encode()).hexdigest()
    return "0x" + "".join(
        character.upper() if character.isalpha() and int(digest[index], 16) >= 8 else character
        for index, character in enumerate(lower)
    )


def base58_decode(text: str) -> bytes:
    """Bytes of a base58 string (Bitcoin alphabet); leading '1's are leading zero bytes."""
    number = 0
    for character in text:
        value = _BASE58_VALUES.get(character)
        if value is None:
            raise ValueError(f"{character!r} is not a base58 digit")
        number = number * 58 + value
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def parse_address(address: str, *, field: str = "address") -> tuple[AddressFamily, str]:
    """The family and the stored form of a wallet address; raises InvalidInputError saying what is wrong."""
    text = address.strip()
    if text.startswith(("0x", "0X")):
        if not _EVM_SHAPE.match(text):
            digits = len(text) - 2
            if not re.fullmatch(r"[0-9a-fA-F]*", text[2:]):
                raise InvalidInputError(
                    f"{text[:60]!r} is not hex: an EVM address is 0x and 40 hex digits", field=field
                )
            raise InvalidInputError(f"an EVM address is 0x and 40 hex digits; {text[:60]!r} has {digits}", field=field)
        hex_part = text[2:]
        mixed_case = hex_part != hex_part.lower() and hex_part != hex_part.upper()
        if mixed_case and text != evm_checksum(text):
            raise InvalidInputError(
                f"{text} has a wrong EIP-55 checksum (mixed case must match it; all lowercase skips the check)",
                field=field,
            )
        return AddressFamily.EVM, text.lower()
    try:
        key = base58_decode(text)
    except ValueError as error:
        raise InvalidInputError(
            f"{text[:60]!r} is neither an EVM address (0x...) nor a base58 Solana address: {error}", field=field
        ) from None
    if not text or len(key) != SOLANA_KEY_BYTES:
        raise InvalidInputError(
            f"a Solana address decodes to {SOLANA_KEY_BYTES} bytes; {text[:60]!r} decodes to {len(key)}", field=field
        )
    return AddressFamily.SOLANA, text


def family_of_chain(chain: str) -> AddressFamily:
    return AddressFamily.EVM if CHAINS[chain].is_evm else AddressFamily.SOLANA


def wallet_id_for(family: AddressFamily, address: str) -> str:
    """Stable per address: the same address always gets the same id."""
    return "w" + hashlib.sha256(f"{family.value}:{address}".encode()).hexdigest()[:16]


def chains_for(
    family: AddressFamily, requested: Sequence[str] | None, configured: Iterable[str], *, field: str = "chains"
) -> list[str]:
    """The chains to sync: those asked for (each known and of the address's family), else every
    configured chain of the family. Raises InvalidInputError naming the item at fault."""
    if requested is None:
        chosen = sorted(chain for chain in configured if chain in CHAINS and family_of_chain(chain) is family)
        if not chosen:
            raise InvalidInputError(
                f"no {family.value} chain has a node configured, so there is nothing to sync this address on",
                field=field,
            )
        return chosen
    if not requested:
        raise InvalidInputError("name at least one chain, or leave chains out for every configured one", field=field)
    chosen = []
    for index, name in enumerate(requested):
        slug = name.strip().lower()
        if slug not in CHAINS:
            supported = ", ".join(sorted(CHAINS))
            raise InvalidInputError(f"unknown chain {name[:40]!r}; supported: {supported}", field=f"{field}[{index}]")
        if family_of_chain(slug) is not family:
            raise InvalidInputError(
                f"{slug} is not a {family.value} chain, so this address cannot be on it", field=f"{field}[{index}]"
            )
        if slug not in chosen:
            chosen.append(slug)
    return chosen


class ChainSync(CamelModel):
    """One chain of one wallet: how its last sync went, and where the next one resumes.

    `scanned_to` (the last block whose Transfer logs were read) and `tokens` (token contracts found
    in those logs, with what the chain said of their decimals, None until it answered, and symbol)
    are kept for the next sync.
    """

    chain: str
    status: SyncStatus = SyncStatus.PENDING
    block_number: int | None = None
    last_synced_at: datetime | None = None
    error: str | None = None
    scanned_to: int | None = None
    tokens: dict[str, int | None] = Field(default_factory=dict, description="discovered token -> decimals")
    symbols: dict[str, str] = Field(default_factory=dict)


class Wallet(CamelModel):
    wallet_id: str = Field(pattern=WALLET_ID_PATTERN)
    address: str
    family: AddressFamily
    label: str | None = None
    chains: list[ChainSync]
    linked_at: datetime

    def chain(self, slug: str) -> ChainSync | None:
        return next((sync for sync in self.chains if sync.chain == slug), None)

    def with_chain(self, sync: ChainSync) -> Self:
        return self.model_copy(update={"chains": [sync if each.chain == sync.chain else each for each in self.chains]})


def contract_symbols(wallets: Sequence[Wallet]) -> dict[TokenId, str]:
    """The symbols token contracts answered wallet sync, by token."""
    return {
        TokenId(sync.chain, address): symbol
        for wallet in wallets
        for sync in wallet.chains
        for address, symbol in sync.symbols.items()
    }


def find_wallet(wallets: Sequence[Wallet], wallet_id: str) -> Wallet | None:
    return next((wallet for wallet in wallets if wallet.wallet_id == wallet_id), None)
