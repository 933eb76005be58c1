"""What the OpenAPI document says of values the models keep as plain strings and the domain checks in
its validators: chain slugs, token and wallet addresses, amounts, and the rules across the fields of a
posted transaction.

Built from the constants the validators use (CHAINS, the decimal bounds, CHAIN_ID_PREFIX), so that a
client or a fuzzer reading the document sends what the API accepts. Where the API is more lenient
than a value's canonical form (a chain in capitals, an address with spaces around it), the document
gives the canonical form; where a rule is not a regular expression (an EIP-55 checksum, a base58
key of 32 bytes, a timestamp not in the future), its description says it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from portfolio.domain.money import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, MAX_STRING_LENGTH
from portfolio.domain.tokens import CHAINS
from portfolio.domain.transactions import CHAIN_ID_PREFIX, PriceSource, TransactionSource, TransactionType

JsonSchema = dict[str, Any]

CHAIN_SCHEMA_NAME = "Chain"
CHAIN_REF: JsonSchema = {"$ref": f"#/components/schemas/{CHAIN_SCHEMA_NAME}"}
TRANSACTION_INPUT_SCHEMA_NAME = "TransactionInput"

EVM_CHAINS = tuple(slug for slug, chain in CHAINS.items() if chain.is_evm)
BASE58_CHAINS = tuple(slug for slug, chain in CHAINS.items() if not chain.is_evm)

# The shapes portfolio.domain.tokens and portfolio.domain.wallets check.
EVM_ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
EVM_LOWERCASE_ADDRESS_PATTERN = r"^0x[0-9a-f]{40}$"
EVM_UPPERCASE_ADDRESS_PATTERN = r"^0x[0-9A-F]{40}$"
BASE58_ADDRESS_PATTERN = r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"

# Decimal strings within portfolio.domain.money's bounds: at most MAX_INTEGER_DIGITS digits before the
# point (leading zeros aside) and MAX_FRACTION_DIGITS after it.
_INTEGER = f"[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}}"
_FRACTION = f"[0-9]{{1,{MAX_FRACTION_DIGITS}}}"
POSITIVE_DECIMAL_PATTERN = rf"^0*(?:{_INTEGER}(?:\.{_FRACTION})?|0\.(?={_FRACTION}$)0*[1-9][0-9]*)$"
NON_NEGATIVE_DECIMAL_PATTERN = rf"^(?:0*{_INTEGER}|0+)(?:\.{_FRACTION})?$"


def chain_schema() -> JsonSchema:
    return {
        "type": "string",
        "enum": list(CHAINS),
        "title": CHAIN_SCHEMA_NAME,
        "description": (
            f"DeFiLlama slug of a supported chain. EVM chains: {', '.join(EVM_CHAINS)}; "
            f"base58 (Solana) chains: {', '.join(BASE58_CHAINS)}"
        ),
    }


def _pattern(pattern: str, title: str, description: str | None = None) -> JsonSchema:
    schema: JsonSchema = {"type": "string", "pattern": pattern, "title": title}
    if description:
        schema["description"] = description
    return schema


def wallet_address_forms() -> list[Any]:
    """A wallet address as it may be posted (portfolio.domain.wallets.parse_address)."""
    return [
        _pattern(EVM_LOWERCASE_ADDRESS_PATTERN, "EVM, lowercase"),
        _pattern(EVM_UPPERCASE_ADDRESS_PATTERN, "EVM, uppercase"),
        _pattern(EVM_ADDRESS_PATTERN, "EVM, mixed case", "Must be the address's EIP-55 checksum"),
        _pattern(BASE58_ADDRESS_PATTERN, "Solana", "Base58 that decodes to a 32-byte public key"),
    ]


def displayed_wallet_address_forms() -> list[Any]:
    """A wallet address as the API shows it: EIP-55 checksum form, or base58 as linked."""
    return [_pattern(EVM_ADDRESS_PATTERN, "EVM, EIP-55 checksum"), _pattern(BASE58_ADDRESS_PATTERN, "Solana")]


def wallet_link_rules(schema: JsonSchema) -> None:
    """The chains named must be of the address's family (portfolio.domain.wallets.chains_for)."""
    schema["if"] = {"properties": {"address": {"pattern": "^0x"}}, "required": ["address"]}
    schema["then"] = {"properties": {"chains": {"items": {"enum": list(EVM_CHAINS)}}}}
    schema["else"] = {"properties": {"chains": {"items": {"enum": list(BASE58_CHAINS)}}}}


def token_key_pattern() -> str:
    """`chain:address` of a supported chain, the address of the chain's family."""
    evm, base58 = "|".join(EVM_CHAINS), "|".join(BASE58_CHAINS)
    return rf"^(?:(?:{evm}):{EVM_ADDRESS_PATTERN[1:-1]}|(?:{base58}):{BASE58_ADDRESS_PATTERN[1:-1]})$"


def stored_token_address() -> JsonSchema:
    """A token address as stored and answered: EVM lowercased, base58 as sent."""
    return {
        "anyOf": [
            _pattern(EVM_LOWERCASE_ADDRESS_PATTERN, "EVM, lowercase"),
            _pattern(BASE58_ADDRESS_PATTERN, "Solana"),
        ],
        "description": "0x and 40 hex digits (lowercase) on an EVM chain, base58 on Solana",
    }


_TOKEN_ADDRESS_FIELDS = ("tokenAddress", "feeToken", "destinationTokenAddress")
_CHAIN_FIELDS = ("chain", "destinationChain")


def refine_answered_fields(schema: JsonSchema) -> None:
    """Chain and token address properties of a schema the API answers with, declared precisely (in place)."""
    properties: dict[str, JsonSchema] = schema.get("properties", {})
    for name, refined in (
        *((name, CHAIN_REF) for name in _CHAIN_FIELDS),
        *((name, stored_token_address()) for name in _TOKEN_ADDRESS_FIELDS),
    ):
        if name in properties:
            properties[name] = _keeping_null_and_notes(properties[name], refined)


def _keeping_null_and_notes(current: JsonSchema, refined: JsonSchema) -> JsonSchema:
    """`refined` in place of `current`'s string form, with current's null alternative, title and description."""
    nullable = any(option.get("type") == "null" for option in current.get("anyOf", []))
    result: JsonSchema = {"anyOf": [refined, {"type": "null"}]} if nullable else dict(refined)
    for note in ("title", "description", "default"):
        if note in current:
            result[note] = current[note]
    return result


def _decimal(pattern: str, description: str) -> JsonSchema:
    return {
        "type": "string",
        "pattern": pattern,
        "maxLength": MAX_STRING_LENGTH,
        "examples": ["1.25"],
        "description": description,
    }


def _nullable(schema: JsonSchema) -> JsonSchema:
    return {"anyOf": [schema, {"type": "null"}]}


def transaction_input_schema(stored: JsonSchema) -> JsonSchema:
    """A transaction as it may be posted, from the generated schema of the stored one (portfolio.domain
    .transactions.Transaction and portfolio.api.schemas' submission checks)."""
    schema = copy.deepcopy(stored)
    schema["title"] = TRANSACTION_INPUT_SCHEMA_NAME
    schema["description"] = (
        "One transaction as posted. The timestamp carries a time zone and is not in the future; a bridge "
        "moves the asset to another chain or token; a fee paid in the token that arrives is less than the "
        "amount; walletId names a wallet linked to this portfolio."
    )
    properties: dict[str, JsonSchema] = schema["properties"]
    properties["id"] = {
        **properties["id"],
        "not": {"pattern": f"^{re.escape(CHAIN_ID_PREFIX)}"},
        "description": f"{properties['id'].get('description', '')}; ids starting with {CHAIN_ID_PREFIX!r} "
        "are kept for wallet sync",
    }
    properties["chain"] = CHAIN_REF
    properties["destinationChain"] = {**_nullable(CHAIN_REF), "description": "bridge only"}
    for name in _TOKEN_ADDRESS_FIELDS:
        # The form follows the chain's family: see allOf.
        string: JsonSchema = {"type": "string", "maxLength": 100}
        properties[name] = string if name == "tokenAddress" else _nullable(string)
        if "description" in stored["properties"][name]:
            properties[name]["description"] = stored["properties"][name]["description"]
    properties["amount"] = _decimal(POSITIVE_DECIMAL_PATTERN, "Greater than 0")
    properties["feeAmount"] = {
        **_nullable(_decimal(POSITIVE_DECIMAL_PATTERN, "Greater than 0")),
        "description": stored["properties"]["feeAmount"].get("description", ""),
    }
    for name in ("priceUsd", "feeUsd"):
        properties[name] = {
            **_nullable(_decimal(NON_NEGATIVE_DECIMAL_PATTERN, "Not negative")),
            "description": stored["properties"][name].get("description", ""),
        }
    properties["source"] = {
        "type": "string",
        "const": TransactionSource.USER.value,
        "default": TransactionSource.USER.value,
        "description": "Only wallet sync records transactions of source chain",
    }
    schema["allOf"] = [
        _address_family("chain", ("tokenAddress", "feeToken")),
        _address_family("destinationChain", ("destinationTokenAddress",)),
        _bridge_destination(),
        _fee_pair(),
        _priced_by_market(),
    ]
    return schema


def _address_family(chain_field: str, address_fields: tuple[str, ...]) -> JsonSchema:
    """Addresses on a base58 chain are base58; on any other (EVM) chain, 0x and 40 hex digits."""

    def forms(pattern: str) -> JsonSchema:
        return {"properties": {name: {"pattern": pattern} for name in address_fields}}

    return {
        "if": {"properties": {chain_field: {"enum": list(BASE58_CHAINS)}}, "required": [chain_field]},
        "then": forms(BASE58_ADDRESS_PATTERN),
        "else": forms(EVM_ADDRESS_PATTERN),
    }


def _bridge_destination() -> JsonSchema:
    """A bridge names where the asset goes; no other type may."""
    destination = ("destinationChain", "destinationTokenAddress")
    return {
        "if": {"properties": {"type": {"const": TransactionType.BRIDGE.value}}, "required": ["type"]},
        "then": {"required": list(destination), "properties": {name: {"type": "string"} for name in destination}},
        "else": {"properties": {name: {"type": "null"} for name in destination}},
    }


def _fee_pair() -> JsonSchema:
    """feeToken and feeAmount go together."""
    pair = ("feeToken", "feeAmount")
    return {
        "anyOf": [
            {"properties": {name: {"type": "null"} for name in pair}},
            {"required": list(pair), "properties": {name: {"type": "string"} for name in pair}},
        ]
    }


def _priced_by_market() -> JsonSchema:
    """A record sent back as it was listed (priceSource market) carries the priceUsd it was listed with."""
    return {
        "if": {"properties": {"priceSource": {"const": PriceSource.MARKET.value}}, "required": ["priceSource"]},
        "then": {"required": ["priceUsd"], "properties": {"priceUsd": {"type": "string"}}},
    }
