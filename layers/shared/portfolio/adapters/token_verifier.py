"""Verifies a bearer token the way API Gateway's JWT authorizer does for the HTTP API.

- The signature: RS256 with the issuer's published keys (`<issuer>/.well-known/jwks.json`, Cognito's
  place for them), fetched once and kept by the container; a key id it does not know yet makes it
  fetch the set again (key rotation). Locally, HS256 with the local stack's own key instead, never
  both: a verifier that took either would let an HS256 token signed with the public key pass.
- `exp` (required) and `nbf`, with 30 seconds of leeway for clocks; `iss` must be the issuer.
- The audience: `aud` (a string or a list) or, for a Cognito access token, which carries none,
  `client_id`, must name the configured audience.
- `sub` must be present; whether it is a valid user id is the caller's rule.

Nothing here logs the token or its claims.
"""

from __future__ import annotations

from typing import Any

import jwt

from portfolio.services.ports import InvalidTokenError

CLOCK_LEEWAY_S = 30
JWKS_TIMEOUT_S = 3
# The published keys are kept this long; an unknown key id fetches them again at once.
JWKS_LIFESPAN_S = 3600
LOCAL_ALGORITHM = "HS256"
ISSUER_ALGORITHM = "RS256"


def jwks_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/jwks.json"


class JwtVerifier:
    def __init__(self, *, issuer: str, audience: str, local_secret: str | None = None) -> None:
        if not issuer or not audience:
            raise ValueError("the token verifier needs an issuer and an audience")
        self._issuer = issuer
        self._audience = audience
        self._local_secret = local_secret
        self._jwks = (
            None
            if local_secret is not None
            else jwt.PyJWKClient(jwks_url(issuer), cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=JWKS_TIMEOUT_S)
        )

    def __repr__(self) -> str:
        return f"JwtVerifier(issuer={self._issuer!r}, audience={self._audience!r}, local={self._jwks is None})"

    def subject(self, token: str) -> str:
        key, algorithm = self._key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuer,
                leeway=CLOCK_LEEWAY_S,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise InvalidTokenError(type(error).__name__) from None
        if not self._for_this_audience(claims):
            raise InvalidTokenError("InvalidAudience")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidTokenError("MissingSubject")
        return subject

    def _key(self, token: str) -> tuple[Any, str]:
        if self._jwks is None:
            assert self._local_secret is not None
            return self._local_secret, LOCAL_ALGORITHM
        try:
            return self._jwks.get_signing_key_from_jwt(token).key, ISSUER_ALGORITHM
        except jwt.PyJWKClientConnectionError as error:
            # The issuer's keys are out of reach: no token can be verified, which is not the caller's fault.
            raise KeysUnavailableError(str(error)) from None
        except jwt.PyJWTError as error:
            raise InvalidTokenError(type(error).__name__) from None

    def _for_this_audience(self, claims: dict[str, Any]) -> bool:
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        return self._audience in audiences or claims.get("client_id") == self._audience


class KeysUnavailableError(Exception):
    """The issuer's JWKS could not be fetched (network, timeout, a 5xx)."""
