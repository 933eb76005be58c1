"""Token identity: DeFiLlama's `chain:address`, normalized once at the edge.

EVM addresses are lowercased; Solana (base58) keeps its case. A chain's native token is
addressed by the zero address on EVM chains and by the wrapped-SOL mint on Solana; for
pricing, natives map to DeFiLlama's `coingecko:<id>` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from portfolio.domain.errors import InvalidInputError

EVM_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SOLANA_NATIVE_MINT = "So11111111111111111111111111111111111111112"

_EVM_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BASE58_ADDRESS = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")


@dataclass(frozen=True, slots=True)
class Chain:
    slug: str
    is_evm: bool
    native_symbol: str
    native_coingecko_id: str
    chain_id: int | None = None  # EIP-155 id an EVM node must answer eth_chainId with


# DeFiLlama chain slugs of the chains this product supports.
CHAINS: dict[str, Chain] = {
    chain.slug: chain
    for chain in (
        Chain("ethereum", True, "ETH", "ethereum", 1),
        Chain("arbitrum", True, "ETH", "ethereum", 42161),
        Chain("optimism", True, "ETH", "ethereum", 10),
        Chain("base", True, "ETH", "ethereum", 8453),
        Chain("linea", True, "ETH", "ethereum", 59144),
        Chain("scroll", True, "ETH", "ethereum", 534352),
        Chain("era", True, "ETH", "ethereum", 324),
        Chain("blast", True, "ETH", "ethereum", 81457),
        Chain("bsc", True, "BNB", "binancecoin", 56),
        Chain("polygon", True, "POL", "polygon-ecosystem-token", 137),
        Chain("avax", True, "AVAX", "avalanche-2", 43114),
        Chain("fantom", True, "FTM", "fantom", 250),
        Chain("xdai", True, "XDAI", "xdai", 100),
        Chain("mantle", True, "MNT", "mantle", 5000),
        Chain("celo", True, "CELO", "celo", 42220),
        Chain("solana", False, "SOL", "solana"),
    )
}


class TokenId(NamedTuple):
    """A token on one chain, already normalized.

    A named tuple: immutable, ordered by chain then address, and hashed in C, which matters for a
    key of every position and every label lookup of every portfolio a refresh values.
    """

    chain: str
    address: str

    @property
    def key(self) -> str:
        """`chain:address`, the form DeFiLlama and this product use everywhere."""
        return f"{self.chain}:{self.address}"

    @property
    def is_native(self) -> bool:
        return self.address in (EVM_ZERO_ADDRESS, SOLANA_NATIVE_MINT)

    @property
    def price_coin_id(self) -> str:
        """The id to ask DeFiLlama for: natives by their coingecko id, the rest as `chain:address`."""
        if self.is_native:
            return f"coingecko:{CHAINS[self.chain].native_coingecko_id}"
        return self.key

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, key: str, *, field: str = "token") -> TokenId:
        """From `chain:address`."""
        chain, sep, address = key.partition(":")
        if not sep:
            raise InvalidInputError(f"{key[:80]!r} is not of the form chain:address", field=field)
        return normalize_token(chain, address, field=field)


def normalize_chain(chain: str, *, field: str = "chain") -> str:
    slug = chain.strip().lower()
    if slug not in CHAINS:
        supported = ", ".join(sorted(CHAINS))
        raise InvalidInputError(f"unsupported chain {chain[:40]!r}; supported: {supported}", field=field)
    return slug


def normalize_token(chain: str, address: str, *, field: str = "tokenAddress") -> TokenId:
    """Validate and normalize one token; raises InvalidInputError naming the field."""
    slug = normalize_chain(chain, field="chain" if field == "tokenAddress" else field)
    address = address.strip()
    if CHAINS[slug].is_evm:
        if not _EVM_ADDRESS.match(address):
            raise InvalidInputError(
                f"{address[:60]!r} is not an EVM address (0x followed by 40 hex digits)", field=field
            )
        return TokenId(slug, address.lower())
    if not _BASE58_ADDRESS.match(address):
        raise InvalidInputError(f"{address[:60]!r} is not a base58 address on {slug}", field=field)
    return TokenId(slug, address)


def native_token(chain: str) -> TokenId:
    slug = normalize_chain(chain)
    return TokenId(slug, EVM_ZERO_ADDRESS if CHAINS[slug].is_evm else SOLANA_NATIVE_MINT)
