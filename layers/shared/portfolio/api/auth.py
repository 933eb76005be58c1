"""Who is calling, from the claims API Gateway's JWT authorizer has already verified.

The token itself is never seen here: API Gateway validates it and hands over its claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portfolio.api.errors import Forbidden, Unauthorized
from portfolio.api.schemas import is_user_id


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    scopes: frozenset[str]

    def may_read(self, user_id: str, admin_scope: str) -> bool:
        return self.subject == user_id or admin_scope in self.scopes

    def may_write(self, user_id: str) -> bool:
        return self.subject == user_id


def caller_from_event(event: Mapping[str, Any]) -> Caller | None:
    """The verified caller of an HTTP API (payload 2.0) event, or None when the event carries no claims."""
    jwt = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}
    claims = jwt.get("claims") or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return None
    return Caller(subject=subject, scopes=_scopes(jwt.get("scopes"), claims.get("scope")))


def _scopes(listed: Any, claim: Any) -> frozenset[str]:
    scopes = {item for item in listed if isinstance(item, str)} if isinstance(listed, list) else set()
    if isinstance(claim, str):
        # HTTP API hands array claims over as "[a b]"; a plain OAuth scope claim is "a b".
        scopes.update(claim.strip("[]").split())
    return frozenset(scopes)


def authorize(caller: Caller | None, user_id: str, *, write: bool, admin_scope: str) -> Caller:
    """The caller, when it may act on this user's portfolio; else Unauthorized (no claims) or Forbidden.

    `user_id` is the one the route receives. A token whose `sub` is not a valid user id is refused
    whatever its scopes: no portfolio can be its own, and no comparison should have to be lenient.
    """
    if caller is None:
        raise Unauthorized("a bearer token is required")
    if not is_user_id(caller.subject):
        raise Forbidden("the token's subject is not a valid user id")
    allowed = caller.may_write(user_id) if write else caller.may_read(user_id, admin_scope)
    if not allowed:
        raise Forbidden("this token may not access this portfolio")
    return caller
