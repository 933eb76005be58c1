"""The OpenAPI document, generated from the routes: `python -m portfolio.api.openapi` prints it.

Powertools builds it from the routes and models; this module then states what they cannot: the
errors as this API answers them (400 for validation, never Powertools' 422 shape), the bearer token
on every portfolio route, the chain slugs and address forms the domain's validators accept
(openapi_fields), and a posted transaction apart from a stored one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from portfolio.api import openapi_fields
from portfolio.api.resolver import build_resolver

TITLE = "Cross-chain portfolio API"
VERSION = "1.0.0"
_METHODS = ("get", "put", "post", "delete", "patch")
_BEARER = "bearerAuth"
_PUBLIC_PATHS = frozenset({"/health"})
_REF_PREFIX = "#/components/schemas/"
_STORED_TRANSACTION = "Transaction"
_NO_BODY = frozenset({"204", "304"})
# Powertools' own validation-error models: this API answers validation errors as 400 in its error shape.
_POWERTOOLS_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def openapi_document() -> dict[str, Any]:
    app = build_resolver()
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=(
                "Aggregated crypto holdings across chains. Amounts and USD figures are decimal strings; "
                'timestamps are ISO 8601 UTC. The function\'s errors are {"error": {"code", "message", '
                '"details"?}}; API Gateway\'s own answers (a missing or invalid token: 401, its throttling: '
                '429, a function that failed: 500) are {"message": "..."}.'
            ),
            security_schemes={_BEARER: HTTPBearer(bearerFormat="JWT")},
        )
    )
    for path, _method, operation in _operations(document):
        _declare_answers(operation)
        for parameter in operation.get("parameters", []):
            _without_null(parameter)
        if path not in _PUBLIC_PATHS:
            operation["security"] = [{_BEARER: []}]
    _declare_fields(document)
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document.get("paths", {}).items():
        for method in _METHODS:
            if method in operations:
                yield path, method, operations[method]


def _declare_answers(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    validation = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if validation.get("$ref") == f"{_REF_PREFIX}HTTPValidationError":
        # Powertools adds it to every route; a route that can answer 422 declares its own.
        del responses["422"]
    for status, response in responses.items():
        if status in _NO_BODY:
            # Powertools gives every answer declared without content the route's return model.
            response.pop("content", None)
        for media in response.get("content", {}).values():
            if media.get("schema", {}).get("title") == "Return":  # Powertools' name for a union it built
                del media["schema"]["title"]
    operation["responses"] = dict(sorted(responses.items()))


def _without_null(parameter: dict[str, Any]) -> None:
    """An optional query parameter is left out, never null: its schema without Powertools' null alternative."""
    schema: dict[str, Any] = parameter.get("schema", {})
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if "anyOf" in schema and len(options) == 1:
        del schema["anyOf"]
        parameter["schema"] = {**options[0], **schema}


def _declare_fields(document: dict[str, Any]) -> None:
    schemas: dict[str, Any] = document["components"]["schemas"]
    for name in _POWERTOOLS_SCHEMAS:
        schemas.pop(name, None)
    chain = openapi_fields.chain_schema()
    # Models written here declare the enum inline (pydantic knows no component it does not generate).
    _replace_schemas(document, chain, openapi_fields.CHAIN_REF)
    schemas[openapi_fields.CHAIN_SCHEMA_NAME] = chain
    posted = openapi_fields.transaction_input_schema(schemas[_STORED_TRANSACTION])
    for schema in schemas.values():
        openapi_fields.refine_answered_fields(schema)
    schemas[openapi_fields.TRANSACTION_INPUT_SCHEMA_NAME] = posted
    # What is posted is a TransactionInput; what is answered, the stored Transaction.
    posted_ref = {"$ref": f"{_REF_PREFIX}{openapi_fields.TRANSACTION_INPUT_SCHEMA_NAME}"}
    stored_ref = {"$ref": f"{_REF_PREFIX}{_STORED_TRANSACTION}"}
    for request in _request_schemas(document):
        _replace_schemas(request, stored_ref, posted_ref)
    document["components"]["schemas"] = dict(sorted(schemas.items()))


def _request_schemas(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The request bodies (their media type objects), and the components only request bodies refer to."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    bodies = [
        media
        for _path, _method, operation in _operations(document)
        for media in operation.get("requestBody", {}).get("content", {}).values()
    ]
    answers = [operation.get("responses", {}) for _path, _method, operation in _operations(document)] + [
        parameter for _p, _m, operation in _operations(document) for parameter in operation.get("parameters", [])
    ]
    answered = _reachable(answers, schemas)
    yield from bodies
    for name in sorted(_reachable(bodies, schemas) - answered):
        yield schemas[name]


def _reachable(roots: list[Any], schemas: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    pending = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                name = ref.removeprefix(_REF_PREFIX)
                if name not in found and name in schemas:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _replace_schemas(node: Any, schema: dict[str, Any], replacement: dict[str, Any]) -> None:
    """Every schema equal to `schema` within `node` becomes `replacement`, keeping notes of its own (a
    parameter's description)."""
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _replaced(value, schema, replacement)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            node[index] = _replaced(item, schema, replacement)


def _replaced(value: Any, schema: dict[str, Any], replacement: dict[str, Any]) -> Any:
    if isinstance(value, dict) and _without_notes(value) == _without_notes(schema):
        own = {note: value[note] for note in _NOTES if note in value and value[note] != schema.get(note)}
        return {**replacement, **own}
    _replace_schemas(value, schema, replacement)
    return value


_NOTES = ("title", "description", "default", "examples")


def _without_notes(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in schema.items() if key not in _NOTES}


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
