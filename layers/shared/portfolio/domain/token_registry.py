"""The shipped registry of well-known tokens: symbol, decimals, canonical asset and category.

token_registry.json lists each token once per chain. Tokens that are the same asset on another
chain (USDC on Ethereum, Arbitrum and Base; bridged USDC.e; ETH and WETH) share one canonical
asset id, which is what the cross-chain asset breakdown groups by. Wrapped natives (WETH, WBNB,
WPOL, WAVAX) are filed under their native asset with category `native`: they are redeemable
one for one. WBTC and its bridged forms have category `other`.

Tokens the registry does not know are described from what else is known: the category a
transaction set, the symbol of the price quote, else a shortened address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from portfolio.domain.tokens import TokenId, normalize_token
from portfolio.domain.transactions import Category

_DATA_FILE = "token_registry.json"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token: TokenId
    symbol: str
    decimals: int
    asset: str
    category: Category


@dataclass(frozen=True, slots=True)
class TokenLabel:
    """How a holding is shown: registry data where known, fallbacks otherwise."""

    symbol: str
    asset: str
    category: Category


@dataclass(frozen=True, slots=True)
class _Registry:
    tokens: dict[TokenId, TokenInfo]
    asset_symbols: dict[str, str]


@cache
def _registry() -> _Registry:
    raw = json.loads(resources.files(__package__).joinpath(_DATA_FILE).read_text(encoding="utf-8"))
    tokens: dict[TokenId, TokenInfo] = {}
    for entry in raw["tokens"]:
        token = normalize_token(entry["chain"], entry["address"])
        if token in tokens:
            raise ValueError(f"{_DATA_FILE} lists {token} twice")
        tokens[token] = TokenInfo(
            token=token,
            symbol=entry["symbol"],
            decimals=int(entry["decimals"]),
            asset=entry["asset"],
            category=Category(entry["category"]),
        )
    asset_symbols = {asset: details["symbol"] for asset, details in raw["assets"].items()}
    missing = {info.asset for info in tokens.values()} - asset_symbols.keys()
    if missing:
        raise ValueError(f"{_DATA_FILE} has tokens of undeclared assets: {sorted(missing)}")
    return _Registry(tokens=tokens, asset_symbols=asset_symbols)


def lookup(token: TokenId) -> TokenInfo | None:
    """The registry's entry for a normalized token, or None."""
    return _registry().tokens.get(token)


def known_tokens() -> tuple[TokenInfo, ...]:
    return tuple(_registry().tokens.values())


def asset_symbol(asset: str) -> str | None:
    """The display symbol of a canonical asset id ("usdc" -> "USDC"), or None when not in the registry."""
    return _registry().asset_symbols.get(asset)


def short_address(address: str) -> str:
    """`0xa0b8...eb48`: enough to tell tokens apart on screen."""
    return address if len(address) <= 12 else f"{address[:6]}...{address[-4:]}"


def describe(
    token: TokenId,
    *,
    quote_symbol: str | None = None,
    contract_symbol: str | None = None,
    category_override: Category | None = None,
) -> TokenLabel:
    """Symbol, asset and category of a holding (see labelled)."""
    return labelled(token, quote_symbol, contract_symbol, category_override)


@lru_cache(maxsize=65_536)
def labelled(
    token: TokenId, quote_symbol: str | None, contract_symbol: str | None, category_override: Category | None
) -> TokenLabel:
    """Symbol, asset and category of a holding; positional, as valuation asks for every holding of
    every portfolio it values (a cache keyed by keywords costs twice as much to look up).

    The registry's symbol and asset win; a transaction's category override wins over the
    registry's category. An unknown token takes the quote's symbol and the lowercased symbol as its
    asset. Without a quote, the symbol its contract answered (wallet sync) is shown, but only
    shown: anyone can deploy a token called "USDC", so its asset stays the full `chain:address`,
    as for a token with no symbol at all (shown by its shortened address); two unnamed tokens never
    merge. An unknown token's category is `other`.
    """
    info = lookup(token)
    if info is not None:
        return TokenLabel(symbol=info.symbol, asset=info.asset, category=category_override or info.category)
    symbol = quote_symbol.strip() if quote_symbol else ""
    if symbol:
        return TokenLabel(symbol=symbol, asset=symbol.lower(), category=category_override or Category.OTHER)
    shown = contract_symbol.strip() if contract_symbol else ""
    return TokenLabel(
        symbol=shown or short_address(token.address), asset=token.key, category=category_override or Category.OTHER
    )
