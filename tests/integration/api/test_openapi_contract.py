"""The published OpenAPI document is the one the routes generate, it declares what the API accepts,
and the handler honours it."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.api.openapi import openapi_document, render
from portfolio.api.openapi_fields import (
    BASE58_ADDRESS_PATTERN,
    EVM_ADDRESS_PATTERN,
    NON_NEGATIVE_DECIMAL_PATTERN,
    POSITIVE_DECIMAL_PATTERN,
)
from portfolio.api.schemas import (
    SETTINGS_EXAMPLES,
    TRANSACTION_EXAMPLES,
    WALLET_LINK_EXAMPLES,
    SettingsUpdate,
    TransactionSubmission,
    WalletLink,
)
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.money import parse_decimal
from portfolio.domain.tokens import CHAINS, normalize_token
from portfolio.domain.wallets import chains_for, parse_address
from portfolio.settings import Settings
from pydantic import TypeAdapter

from local_stack.functions import load_handler
from tests.integration.api.conftest import Call
from tests.support.lambda_wsgi import LambdaWsgiApp
from tests.support.openapi_cases import operations_of, send_generated

PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
DOCUMENT = openapi_document()
CHAIN_REF = {"$ref": "#/components/schemas/Chain"}
STATUS_CODE_CONFORMANCE = schemathesis.checks.status_code_conformance
CHECKS = [
    schemathesis.checks.not_a_server_error,
    STATUS_CODE_CONFORMANCE,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


def test_given_the_routes_when_generating_the_document_then_docs_openapi_json_is_up_to_date() -> None:
    assert PUBLISHED.read_text() == render(), "run `make openapi` and commit docs/openapi.json"


def test_given_the_document_when_reading_it_then_every_portfolio_route_requires_a_bearer_token() -> None:
    document = json.loads(PUBLISHED.read_text())

    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert ("security" in operation) is (path != "/health"), path


def test_given_a_route_behind_the_authorizer_when_reading_its_401_then_it_is_the_gateways_message_shape() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if "security" not in operation:
                continue
            unauthorized = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert unauthorized == {"$ref": "#/components/schemas/GatewayError"}, (method, path)
    assert DOCUMENT["components"]["schemas"]["GatewayError"]["required"] == ["message"]


def _chain_fields() -> list[tuple[str, Any]]:
    """Every declared property or parameter named chain or destinationChain, and lists of chains."""
    found = []
    for name, component in DOCUMENT["components"]["schemas"].items():
        for field, schema in component.get("properties", {}).items():
            refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(schema)))
            if field in ("chain", "destinationChain") or (field == "chains" and refs <= {CHAIN_REF["$ref"]}):
                found.append((f"{name}.{field}", schema))
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "chain":
                    found.append((f"{method} {path} ?chain", parameter["schema"]))
    return found


def test_given_the_document_when_reading_any_chain_field_then_it_is_the_enum_of_the_supported_chains() -> None:
    assert DOCUMENT["components"]["schemas"]["Chain"]["enum"] == list(CHAINS)

    fields = _chain_fields()

    assert len(fields) >= 10
    for where, schema in fields:
        assert CHAIN_REF["$ref"] in json.dumps(schema), where
        assert '"type": "string"' not in json.dumps(schema), where


_EVM_CHAIN = "ethereum"
_BASE58_CHAIN = next(slug for slug, chain in CHAINS.items() if not chain.is_evm)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(address=st.from_regex(EVM_ADDRESS_PATTERN, fullmatch=True))
def test_given_a_token_address_of_the_declared_evm_form_when_validated_then_it_is_taken(address: str) -> None:
    assert normalize_token(_EVM_CHAIN, address).address == address.lower()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(address=st.from_regex(BASE58_ADDRESS_PATTERN, fullmatch=True))
def test_given_a_token_address_of_the_declared_base58_form_when_validated_then_it_is_taken(address: str) -> None:
    assert normalize_token(_BASE58_CHAIN, address).address == address


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    address=st.one_of(
        st.from_regex(r"\A0x[0-9a-fA-F]{0,39}\Z"),
        st.from_regex(r"\A0x[0-9a-fA-F]{41,45}\Z"),
        st.from_regex(r"\A0x[0-9a-fA-F]{39}[g-zG-Z]\Z"),
        st.from_regex(r"\A[1-9A-HJ-NP-Za-km-z]{0,31}\Z"),
        st.from_regex(r"\A[1-9A-HJ-NP-Za-km-z]{45,50}\Z"),
        st.from_regex(r"\A[1-9A-HJ-NP-Za-km-z]{32,44}[0OIl]\Z"),
    )
)
def test_given_a_token_address_outside_the_declared_forms_when_validated_then_it_is_refused(address: str) -> None:
    assert not re.fullmatch(EVM_ADDRESS_PATTERN, address) and not re.fullmatch(BASE58_ADDRESS_PATTERN, address)
    chain = _EVM_CHAIN if address.startswith("0x") else _BASE58_CHAIN

    with pytest.raises(InvalidInputError):
        normalize_token(chain, address)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(text=st.from_regex(POSITIVE_DECIMAL_PATTERN, fullmatch=True).filter(lambda text: len(text) <= 80))
def test_given_an_amount_of_the_declared_positive_form_when_parsed_then_it_is_taken_and_above_zero(text: str) -> None:
    assert parse_decimal(text) > 0


@settings(max_examples=80, deadline=None, derandomize=True)
@given(text=st.from_regex(NON_NEGATIVE_DECIMAL_PATTERN, fullmatch=True).filter(lambda text: len(text) <= 80))
def test_given_a_price_of_the_declared_form_when_parsed_then_it_is_taken_and_not_negative(text: str) -> None:
    assert parse_decimal(text) >= Decimal(0)


@pytest.mark.parametrize(
    "text", ["0", "000", "0.000", "-1", "1" * 31, "0." + "0" * 36 + "1", "1." + "0" * 37, "1e3", " 1", ""]
)
def test_given_an_amount_the_api_refuses_or_not_positive_when_matched_then_the_declared_form_refuses_it(
    text: str,
) -> None:
    assert re.fullmatch(POSITIVE_DECIMAL_PATTERN, text) is None


def test_given_the_request_examples_of_the_document_when_validated_then_the_api_takes_each_of_them() -> None:
    submissions = TypeAdapter(TransactionSubmission)
    for example in TRANSACTION_EXAMPLES.values():
        submissions.validate_python(example["value"])
    for example in SETTINGS_EXAMPLES.values():
        SettingsUpdate.model_validate(example["value"])
    for example in WALLET_LINK_EXAMPLES.values():
        link = WalletLink.model_validate(example["value"])
        family, _address = parse_address(link.address)
        chains_for(family, link.chains, configured=())


schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture
def wsgi_app(call: Call, no_rate_limits: Settings) -> LambdaWsgiApp:
    # Generated cases repeat a few user ids many times over: with the per-user limits most would be 429s.
    return LambdaWsgiApp(load_handler("ApiFunction"))


@pytest.mark.parametrize("operation", operations_of(schema), ids=lambda operation: operation.label)
def test_given_generated_requests_when_sent_then_no_5xx_and_every_answer_has_its_documented_shape(
    operation: Any, wsgi_app: LambdaWsgiApp
) -> None:
    def send(case: Any) -> None:
        response = case.call(app=wsgi_app)

        # Generated userIds here include ones no route matches (404); the status codes are checked over
        # HTTP, with the token's own userId, by tests/e2e/test_openapi_against_local_stack.py.
        case.validate_response(response, checks=[check for check in CHECKS if check is not STATUS_CODE_CONFORMANCE])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)

    send_generated(operation, send, max_examples=30)
