"""Turn pydantic / Powertools validation errors into one field path a client can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portfolio.api.errors import InvalidRequest
from portfolio.api.schemas import DOMAIN_ERROR_TYPE, SUBMISSION_TAGS

# Where a parameter came from; the client names it without this prefix.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_MAX_LISTED_ERRORS = 20


def field_path(loc: Sequence[Any], *, leaf: str | None = None) -> str:
    """("body", "batch", "transactions", 3, "amount") -> "transactions[3].amount"."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in SUBMISSION_TAGS:
            continue
        else:
            path = f"{path}.{part}" if path else str(part)
    if leaf:
        path = f"{path}.{leaf}" if path else leaf
    return path or "body"


def _described(error: dict[str, Any]) -> dict[str, str]:
    context = error.get("ctx") or {}
    if error.get("type") == DOMAIN_ERROR_TYPE:
        return {"field": field_path(error.get("loc", ()), leaf=context.get("field")), "message": context["message"]}
    message = str(error.get("msg") or error.get("type") or "invalid value")
    return {"field": field_path(error.get("loc", ())), "message": message.removeprefix("Value error, ")}


def invalid_request_from(errors: Sequence[dict[str, Any]]) -> InvalidRequest:
    """One 400 naming the first bad field; details list every problem found (bounded)."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return InvalidRequest("the request body is not valid JSON", field="body")
    described = [_described(error) for error in errors[:_MAX_LISTED_ERRORS]] or [
        {"field": "body", "message": "invalid request"}
    ]
    first = described[0]
    return InvalidRequest(
        f"{first['field']}: {first['message']}",
        field=first["field"],
        details={"errors": described},
    )
