"""Wallet addresses and chains, validated at the edge: what is accepted, and what each refusal says."""

from __future__ import annotations

import pytest
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.wallets import (
    AddressFamily,
    base58_decode,
    chains_for,
    evm_checksum,
    parse_address,
    wallet_id_for,
)

# EIP-55's own examples.
CHECKSUMMED = (
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)
SOLANA_WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


@pytest.mark.parametrize("address", CHECKSUMMED)
def test_given_an_eip55_address_when_parsed_then_it_is_accepted_and_stored_lowercase(address: str) -> None:
    assert evm_checksum(address.lower()) == address
    assert parse_address(address) == (AddressFamily.EVM, address.lower())


def test_given_an_all_lowercase_evm_address_when_parsed_then_no_checksum_is_asked_for() -> None:
    assert parse_address(CHECKSUMMED[0].lower()) == (AddressFamily.EVM, CHECKSUMMED[0].lower())


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "checksum"),  # one letter's case flipped
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", "has 39"),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00", "has 42"),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "not hex"),
        ("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWW0", "base58"),  # 0 is not a base58 digit
        ("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDs", "decodes to 22"),
        ("", "decodes to 0"),
    ],
)
def test_given_a_malformed_address_when_parsed_then_the_error_names_the_field_and_says_what_is_wrong(
    address: str, says: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_address(address)

    assert refused.value.field == "address"
    assert says in refused.value.message


def test_given_a_solana_address_when_parsed_then_it_is_a_32_byte_key_kept_as_given() -> None:
    assert parse_address(SOLANA_WALLET) == (AddressFamily.SOLANA, SOLANA_WALLET)
    assert len(base58_decode(SOLANA_WALLET)) == 32
    assert base58_decode("11") == b"\x00\x00"


def test_given_one_address_when_linked_twice_then_its_wallet_id_is_the_same() -> None:
    assert wallet_id_for(AddressFamily.EVM, "0xabc") == wallet_id_for(AddressFamily.EVM, "0xabc")
    assert wallet_id_for(AddressFamily.EVM, "0xabc") != wallet_id_for(AddressFamily.EVM, "0xabd")


def test_given_no_chains_named_when_linking_then_every_configured_chain_of_the_family_is_synced() -> None:
    configured = ["solana", "ethereum", "base"]

    assert chains_for(AddressFamily.EVM, None, configured) == ["base", "ethereum"]
    assert chains_for(AddressFamily.SOLANA, None, configured) == ["solana"]


@pytest.mark.parametrize(
    ("family", "chains", "field", "says"),
    [
        (AddressFamily.EVM, ["ethereum", "dogechain"], "chains[1]", "unknown chain"),
        (AddressFamily.EVM, ["solana"], "chains[0]", "not a evm chain"),
        (AddressFamily.SOLANA, ["arbitrum"], "chains[0]", "not a solana chain"),
        (AddressFamily.EVM, [], "chains", "at least one"),
    ],
)
def test_given_chains_that_cannot_hold_the_address_when_linking_then_the_item_at_fault_is_named(
    family: AddressFamily, chains: list[str], field: str, says: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        chains_for(family, chains, ["ethereum", "solana"])

    assert refused.value.field == field
    assert says in refused.value.message


def test_given_no_node_of_the_family_when_linking_without_chains_then_it_says_nothing_can_be_synced() -> None:
    with pytest.raises(InvalidInputError, match="no solana chain has a node"):
        chains_for(AddressFamily.SOLANA, None, ["ethereum"])
