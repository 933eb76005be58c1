"""Verifies a bearer token the way API Gateway's JWT authorizer does for the HTTP API.

- Where the issuer's keys are: the `jwks_uri` of its OpenID discovery document
  (`<issuer>/.well-known/openid-configuration`, which Cognito, Okta, Entra ID and Auth0 all publish;
  the document must name the same issuer). When the document cannot be read (the issuer publishes
  none, a timeout, a document that does not fit), `<issuer>/.well-known/jwks.json` instead, and
  discovery is tried again DISCOVERY_RETRY_S later. A discovered address is kept a day.
- The signature: RS256 or ES256, whichever the key named by the token's `kid` is for (its `alg`, or
  its type: RSA for RS256, EC P-256 for ES256); a token whose header names another algorithm than
  its key's fails. The keys are fetched once and kept by the container; a key id it does not know
  yet makes it fetch the set again (key rotation). Never HS* with the issuer's keys, never `none`.
- Locally, HS256 with the local stack's own key instead, never both: a verifier that took either
  would let an HS256 token signed with a public key pass. The settings refuse that key outside
  STAGE=local (Settings.check_local_jwt_secret).
- `exp` (required) and `nbf`, with 30 seconds of leeway for clocks; `iss` must be the issuer.
- The audience: `aud` (a string or a list) or, for a Cognito access token, which carries none,
  `client_id`, must name the configured audience.
- `sub` must be present; whether it is a valid user id is the caller's rule.

Nothing here logs the token or its claims.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from portfolio.observability import logger
from portfolio.services.ports import InvalidTokenError

CLOCK_LEEWAY_S = 30
JWKS_TIMEOUT_S = 3
# The published keys are kept this long; an unknown key id fetches them again at once.
JWKS_LIFESPAN_S = 3600
# A discovered jwks_uri is kept this long; after a failed discovery, it is tried again this soon.
DISCOVERY_LIFESPAN_S = 24 * 3600
DISCOVERY_RETRY_S = 300
LOCAL_ALGORITHM = "HS256"
ISSUER_ALGORITHMS = frozenset({"RS256", "ES256"})


def discovery_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def jwks_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/jwks.json"


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        local_secret: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("the token verifier needs an issuer and an audience")
        self._issuer = issuer
        self._audience = audience
        self._local_secret = local_secret
        self._keys = None if local_secret is not None else IssuerKeys(issuer, clock=clock)

    def __repr__(self) -> str:
        return f"JwtVerifier(issuer={self._issuer!r}, audience={self._audience!r}, local={self._keys is None})"

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
        if self._keys is None:
            assert self._local_secret is not None
            return self._local_secret, LOCAL_ALGORITHM
        try:
            signing_key = self._keys.client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            # The issuer's keys are out of reach: no token can be verified, which is not the caller's fault.
            raise KeysUnavailableError(str(error)) from None
        except jwt.PyJWTError as error:
            raise InvalidTokenError(type(error).__name__) from None
        if signing_key.algorithm_name not in ISSUER_ALGORITHMS:
            raise InvalidTokenError("UnsupportedKeyAlgorithm")
        return signing_key.key, signing_key.algorithm_name

    def _for_this_audience(self, claims: dict[str, Any]) -> bool:
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        return self._audience in audiences or claims.get("client_id") == self._audience


class IssuerKeys:
    """The issuer's published keys, at the address its discovery document names (else jwks.json)."""

    def __init__(self, issuer: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._issuer = issuer
        self._clock = clock
        self._jwks: jwt.PyJWKClient | None = None
        self._discover_after = 0.0

    def client(self) -> jwt.PyJWKClient:
        now = self._clock()
        if self._jwks is not None and now < self._discover_after:
            return self._jwks
        discovered = self._discovered_jwks_uri()
        self._discover_after = now + (DISCOVERY_RETRY_S if discovered is None else DISCOVERY_LIFESPAN_S)
        uri = discovered or jwks_url(self._issuer)
        if self._jwks is None or self._jwks.uri != uri:
            self._jwks = jwt.PyJWKClient(uri, cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=JWKS_TIMEOUT_S)
        return self._jwks

    def _discovered_jwks_uri(self) -> str | None:
        try:
            response = httpx.get(discovery_url(self._issuer), timeout=JWKS_TIMEOUT_S)
            document = response.json() if response.status_code == httpx.codes.OK else None
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("issuer discovery failed; keys read from jwks.json", extra={"error": type(error).__name__})
            return None
        if not isinstance(document, dict):
            logger.info("issuer publishes no discovery document; keys read from jwks.json")
            return None
        uri = document.get("jwks_uri")
        if str(document.get("issuer", "")).rstrip("/") != self._issuer.rstrip("/") or not self._trusted(uri):
            logger.warning("issuer discovery document does not fit the issuer; keys read from jwks.json")
            return None
        assert isinstance(uri, str)
        return uri

    def _trusted(self, uri: object) -> bool:
        """An https address (http only for an http issuer: a test's local one)."""
        if not isinstance(uri, str):
            return False
        scheme = urlsplit(uri).scheme
        return bool(urlsplit(uri).netloc) and scheme in {"https", urlsplit(self._issuer).scheme}


class KeysUnavailableError(Exception):
    """The issuer's JWKS could not be fetched (network, timeout, a 5xx)."""
