"""The shipped token registry: well-known tokens by chain, and how unknown tokens are described."""

from __future__ import annotations

from collections import Counter
from importlib import resources

import pytest
from portfolio.domain.token_registry import asset_symbol, describe, known_tokens, lookup, short_address
from portfolio.domain.tokens import SOLANA_NATIVE_MINT, TokenId, native_token, normalize_token
from portfolio.domain.transactions import Category

from tests.unit.domain.builders import UNLISTED_TOKEN

CHAINS = ("ethereum", "arbitrum", "optimism", "base", "bsc", "polygon", "avax", "solana")


def test_the_registry_file_ships_inside_the_package() -> None:
    assert resources.files("portfolio.domain").joinpath("token_registry.json").is_file()


def test_every_entry_is_a_normalized_token_listed_once() -> None:
    tokens = [info.token for info in known_tokens()]
    assert len(tokens) == len(set(tokens))
    for token in tokens:
        assert normalize_token(token.chain, token.address) == token


@pytest.mark.parametrize("chain", CHAINS)
def test_given_a_supported_chain_then_its_native_token_and_usdc_and_usdt_are_known(chain: str) -> None:
    native = lookup(native_token(chain))
    assert native is not None
    assert native.category is Category.NATIVE
    assets_here = Counter(info.asset for info in known_tokens() if info.token.chain == chain)
    assert assets_here["usdc"] >= 1
    assert assets_here["usdt"] >= 1


def test_given_mixed_case_input_then_lookup_finds_the_token_once_normalized() -> None:
    info = lookup(normalize_token("ethereum", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"))

    assert info is not None
    assert (info.symbol, info.decimals, info.asset, info.category) == ("USDC", 6, "usdc", Category.STABLECOIN)


@pytest.mark.parametrize(
    ("chain", "address", "symbol", "decimals", "asset", "category"),
    [
        ("bsc", "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d", "USDC", 18, "usdc", Category.STABLECOIN),
        ("arbitrum", "0xff970a61a04b1ca14834a43f5de4533ebddb5cc8", "USDC.e", 6, "usdc", Category.STABLECOIN),
        ("ethereum", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", "WETH", 18, "eth", Category.NATIVE),
        ("ethereum", "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599", "WBTC", 8, "wbtc", Category.OTHER),
        ("ethereum", "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0", "wstETH", 18, "wsteth", Category.LST),
        ("optimism", "0x4200000000000000000000000000000000000042", "OP", 18, "op", Category.DEFI),
        ("solana", SOLANA_NATIVE_MINT, "SOL", 9, "sol", Category.NATIVE),
        ("solana", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", "BONK", 5, "bonk", Category.MEME),
        ("solana", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", "JUP", 6, "jup", Category.DEFI),
    ],
)
def test_given_well_known_tokens_then_their_details_are_right(
    chain: str, address: str, symbol: str, decimals: int, asset: str, category: Category
) -> None:
    info = lookup(TokenId(chain, address))
    assert info is not None
    assert (info.symbol, info.decimals, info.asset, info.category) == (symbol, decimals, asset, category)


def test_given_a_solana_mint_then_its_case_matters() -> None:
    assert lookup(TokenId("solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")) is not None
    assert lookup(TokenId("solana", "epjfwdd5aufqssqem2qn1xzybapc8g4wegGkzwytdt1v")) is None


def test_every_asset_of_the_registry_has_a_display_symbol() -> None:
    assert all(asset_symbol(info.asset) for info in known_tokens())
    assert asset_symbol("usdc") == "USDC"
    assert asset_symbol("no-such-asset") is None


def test_given_an_unlisted_token_then_it_is_described_from_the_quote_symbol_or_its_address() -> None:
    token = TokenId("ethereum", UNLISTED_TOKEN)

    named = describe(token, quote_symbol="FOO")
    unnamed = describe(token)

    assert (named.symbol, named.asset, named.category) == ("FOO", "foo", Category.OTHER)
    assert (unnamed.symbol, unnamed.asset, unnamed.category) == ("0x1111...1111", token.key, Category.OTHER)


def test_given_a_category_override_then_it_wins_over_the_registry_and_the_default() -> None:
    usdc = TokenId("ethereum", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")

    assert describe(usdc, category_override=Category.DEFI).category is Category.DEFI
    assert describe(usdc, quote_symbol="SOMETHING-ELSE").symbol == "USDC"  # the registry's name wins
    assert describe(TokenId("ethereum", UNLISTED_TOKEN), category_override=Category.MEME).category is Category.MEME


def test_short_addresses_keep_both_ends() -> None:
    assert short_address("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v") == "EPjFWd...Dt1v"
    assert short_address("short") == "short"
