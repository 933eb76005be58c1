"""The OpenAPI document, generated from the routes: `python -m portfolio.api.openapi` prints it."""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from portfolio.api.errors import ErrorResponse
from portfolio.api.openapi_responses import ERROR_DESCRIPTIONS
from portfolio.api.resolver import build_resolver

TITLE = "Cross-chain portfolio API"
VERSION = "1.0.0"
_METHODS = ("get", "put", "post", "delete", "patch")
_BEARER = "bearerAuth"


def openapi_document() -> dict[str, Any]:
    """The document with the error shape this API really answers (Powertools assumes 422 for validation)."""
    app = build_resolver()
    document = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=(
                "Aggregated crypto holdings across chains. Amounts and USD figures are decimal strings; "
                'timestamps are ISO 8601 UTC. Every error is {"error": {"code", "message", "details"?}}.'
            ),
            security_schemes={_BEARER: HTTPBearer(bearerFormat="JWT")},
        )
    )
    error_ref = {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}
    for path, operations in document.get("paths", {}).items():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = operation.get("responses", {})
            # Validation errors are answered as 400; a 422 means an overdraft or a limit, on writes only.
            if method == "get":
                responses.pop("422", None)
            elif "422" in responses:
                responses["422"] = {
                    "description": ERROR_DESCRIPTIONS[HTTPStatus.UNPROCESSABLE_ENTITY],
                    "content": {"application/json": {"schema": error_ref}},
                }
            if "304" in responses:
                responses["304"].pop("content", None)
            if path != "/health":
                operation["security"] = [{_BEARER: []}]
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return document


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
