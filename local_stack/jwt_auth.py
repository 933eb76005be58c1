"""API Gateway's JWT authorizer, played locally with an HS256 key that never leaves this machine.

In AWS the HTTP API checks the token (signature, expiry, issuer, audience) before the function
runs and hands it the claims as strings. A request that fails any check gets 401 and never
reaches the function; this module makes the same decision.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

ISSUER = "https://local-stack.cross-chain-portfolio.invalid"
AUDIENCE = "cross-chain-portfolio"
ALGORITHM = "HS256"
ADMIN_SCOPE = "portfolio/admin"
DEFAULT_TOKEN_TTL_S = 12 * 3600
SECRET_FILE_NAME = "jwt-secret"  # noqa: S105 - a file name, not a secret
# API Gateway allows for small clock differences between the token issuer and itself.
CLOCK_LEEWAY_S = 30


def load_or_create_secret(data_dir: Path, configured: str | None = None) -> str:
    """The configured secret, else the one kept in `data_dir` (created on first use, readable by its owner only)."""
    if configured:
        return configured
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once agree on whichever file was written first.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secret)
    return secret


@dataclass(frozen=True)
class AuthorizedCaller:
    """What the authorizer puts under requestContext.authorizer.jwt."""

    claims: dict[str, str]
    scopes: list[str]


def _claim_as_gateway_sends_it(value: Any) -> str:
    # API Gateway passes every claim as a string; lists become "[a b]".
    if isinstance(value, list):
        return "[" + " ".join(str(item) for item in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class JwtAuthorizer:
    """Issues tokens for local users and checks bearer tokens the way the HTTP API's authorizer does."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._clock = clock

    def __repr__(self) -> str:
        return f"JwtAuthorizer(issuer={self._issuer!r}, audience={self._audience!r})"

    def issue(self, subject: str, *, scopes: Sequence[str] = (), ttl_s: int = DEFAULT_TOKEN_TTL_S) -> str:
        claims = token_claims(
            subject, scopes=scopes, issuer=self._issuer, audience=self._audience, now=int(self._clock()), ttl_s=ttl_s
        )
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def authorize(self, authorization_header: str | None) -> AuthorizedCaller | None:
        """The caller behind an Authorization header, or None for anything API Gateway would answer 401."""
        token = _bearer_token(authorization_header)
        if token is None:
            return None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_LEEWAY_S,
                options={"require": ["sub", "exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return caller_from_claims(claims)


def token_claims(
    subject: str,
    *,
    scopes: Sequence[str] = (),
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    now: int,
    ttl_s: int = DEFAULT_TOKEN_TTL_S,
) -> dict[str, Any]:
    """The claims of a token issued here."""
    claims: dict[str, Any] = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_s,
        "jti": secrets.token_hex(8),
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    return claims


def caller_from_claims(claims: Mapping[str, Any]) -> AuthorizedCaller:
    """What API Gateway passes the function for a verified token with these claims."""
    return AuthorizedCaller(
        claims={name: _claim_as_gateway_sends_it(value) for name, value in claims.items()},
        scopes=str(claims.get("scope", "")).split(),
    )


def authorized_caller(subject: str, scopes: Sequence[str] = ()) -> AuthorizedCaller:
    """What the authorizer passes on for a valid token of `subject` with these scopes, issued now."""
    return caller_from_claims(token_claims(subject, scopes=scopes, now=int(time.time())))


def _bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    # The HTTP API accepts the token with or without the "Bearer " prefix.
    if not token:
        return scheme or None
    return token.strip() if scheme.lower() == "bearer" else None
