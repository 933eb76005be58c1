"""Validation errors name the field a client must fix, in the client's own notation."""

from __future__ import annotations

from portfolio.api.validation_errors import field_path, invalid_request_from


def test_given_a_batch_item_error_when_naming_the_field_then_index_and_field_are_named() -> None:
    assert field_path(("body", "batch", "transactions", 3, "amount")) == "transactions[3].amount"


def test_given_a_single_transaction_error_when_naming_the_field_then_the_union_tag_is_hidden() -> None:
    assert field_path(("body", "single", "priceUsd")) == "priceUsd"


def test_given_a_query_parameter_error_when_naming_the_field_then_its_public_name_is_used() -> None:
    assert field_path(("query", "minValueUsd")) == "minValueUsd"


def test_given_a_domain_error_inside_an_item_when_mapping_then_the_domain_field_is_appended() -> None:
    error = {
        "type": "domain_invalid_input",
        "loc": ("body", "batch", "transactions", 1),
        "msg": "unsupported chain 'x'",
        "ctx": {"message": "unsupported chain 'x'", "field": "chain"},
    }

    mapped = invalid_request_from([error])

    assert mapped.details is not None and mapped.details["field"] == "transactions[1].chain"
    assert "unsupported chain" in mapped.message


def test_given_a_json_decode_error_when_mapping_then_the_body_is_named_invalid_json() -> None:
    mapped = invalid_request_from([{"type": "json_invalid", "loc": ("body", 1), "msg": "JSON decode error"}])

    assert mapped.details == {"field": "body"}
    assert "not valid JSON" in mapped.message
