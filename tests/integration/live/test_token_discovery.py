"""The WebSocket authorizer with an issuer that publishes OpenID discovery (Okta, Entra ID, Auth0): its
keys are read at the document's jwks_uri, not at <issuer>/.well-known/jwks.json; RS256 and ES256 keys
verify tokens, and nothing else does. All served over local HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from portfolio import wiring
from portfolio.adapters.token_verifier import DISCOVERY_RETRY_S, JwtVerifier
from portfolio.services.ports import InvalidTokenError

from local_stack.functions import load_handler
from local_stack.lambda_context import LocalLambdaContext
from local_stack.loopback_server import Answer, QuietHandler, ScriptedServer, send_answer
from tests.integration.live.conftest import load_event

authorizer = load_handler("WebSocketAuthorizerFunction")
AUDIENCE = "app-client-id"
DISCOVERY = "/.well-known/openid-configuration"
KEYS_PATH = "/oauth2/v1/keys"  # where Okta publishes them
FALLBACK = "/.well-known/jwks.json"
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def public_jwk(kid: str, key: SigningKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        return {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}
    return {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


class DiscoveringIssuer(ScriptedServer[str]):
    """An identity provider: its discovery document, its keys at KEYS_PATH, and (set apart, to tell
    which was read) keys at jwks.json when `fallback_keys` has any."""

    thread_name = "issuer"

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, SigningKey] = {}
        self.fallback_keys: dict[str, SigningKey] = {}
        self.document: dict[str, Any] | None = None  # None: the issuer's own
        self.discovery_status = 200

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server._record(self.path)
                if self.path == DISCOVERY and server.discovery_status != 200:
                    send_answer(self, Answer(server.discovery_status, b"{}"))
                elif self.path == DISCOVERY:
                    document = server.document or {"issuer": server.url, "jwks_uri": f"{server.url}{KEYS_PATH}"}
                    send_answer(self, Answer(200, json.dumps(document).encode()))
                elif self.path == KEYS_PATH:
                    send_answer(self, Answer(200, server.key_set(server.keys)))
                elif self.path == FALLBACK and server.fallback_keys:
                    send_answer(self, Answer(200, server.key_set(server.fallback_keys)))
                else:
                    send_answer(self, Answer(404, b"{}"))

        return Handler

    @staticmethod
    def key_set(keys: dict[str, SigningKey]) -> bytes:
        return json.dumps({"keys": [public_jwk(kid, key) for kid, key in keys.items()]}).encode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def issuer(rsa_key, ec_key, monkeypatch) -> Iterator[DiscoveringIssuer]:
    """The authorizer's environment in a deployed stage, trusting this issuer."""
    with DiscoveringIssuer() as server:
        server.keys = {"rsa-1": rsa_key, "ec-1": ec_key}
        monkeypatch.delenv("LOCAL_JWT_SECRET", raising=False)
        for name, value in {"JWT_ISSUER": server.url, "JWT_AUDIENCE": AUDIENCE, "STAGE": "dev"}.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        yield server
    wiring.reset()


def token(issuer_url: str, key: Any, kid: str, algorithm: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "user-alice", "iss": issuer_url, "aud": AUDIENCE, "iat": now, "exp": now + 600, **overrides}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def authorize(token_value: str) -> dict[str, Any]:
    event = load_event("websocket-authorizer.json")
    event["queryStringParameters"]["token"] = token_value
    event["multiValueQueryStringParameters"]["token"] = [token_value]
    return authorizer(event, LocalLambdaContext("websocket-authorizer"))


def refused(token_value: str) -> str:
    with pytest.raises(Exception) as raised:
        authorize(token_value)
    return str(raised.value)


@pytest.mark.parametrize(("kid", "algorithm"), [("ec-1", "ES256"), ("rsa-1", "RS256")])
def test_given_an_issuer_with_discovery_when_a_token_connects_then_its_key_is_read_at_the_jwks_uri(
    issuer, rsa_key, ec_key, kid, algorithm
):
    key = ec_key if algorithm == "ES256" else rsa_key

    answers = [authorize(token(issuer.url, key, kid, algorithm)) for _ in range(3)]

    assert all(answer["context"] == {"userId": "user-alice"} for answer in answers)
    assert issuer.requests == [DISCOVERY, KEYS_PATH]  # once per container, jwks.json never asked


def test_given_the_ec_keys_public_half_used_as_an_hs256_secret_then_401(issuer, ec_key):
    # The classic confusion: anyone holds the public key; a verifier taking HS256 would accept this
    public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}
    claims = {"sub": "user-alice", "iss": issuer.url, "aud": AUDIENCE, "exp": int(time.time()) + 600}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    assert refused(f"{signing_input}.{b64(signature)}") == "Unauthorized"


def test_given_a_token_naming_another_algorithm_than_its_key_then_401(issuer, rsa_key):
    # An RS256 signature claiming the EC key's id: the key decides the algorithm, not the header
    assert refused(token(issuer.url, rsa_key, "ec-1", "RS256")) == "Unauthorized"


def test_given_a_key_for_an_algorithm_other_than_rs256_or_es256_then_401(issuer):
    p384 = ec.generate_private_key(ec.SECP384R1())
    issuer.keys = {**issuer.keys, "ec-384": p384}

    assert refused(token(issuer.url, p384, "ec-384", "ES384")) == "Unauthorized"


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"issuer": "https://someone-else.example", "jwks_uri": "{url}/oauth2/v1/keys"}, id="other-issuer"),
        pytest.param({"issuer": "{url}", "jwks_uri": "file:///etc/keys.json"}, id="not-http"),
        pytest.param({"issuer": "{url}"}, id="no-jwks-uri"),
    ],
)
def test_given_a_discovery_document_that_does_not_fit_then_the_keys_are_read_from_jwks_json(issuer, rsa_key, document):
    issuer.document = {name: value.format(url=issuer.url) for name, value in document.items()}
    issuer.fallback_keys = {"rsa-1": rsa_key}

    answer = authorize(token(issuer.url, rsa_key, "rsa-1", "RS256"))

    assert answer["context"] == {"userId": "user-alice"}
    assert issuer.requests == [DISCOVERY, FALLBACK]


def test_given_discovery_failing_then_jwks_json_serves_and_discovery_is_tried_again_later(issuer, ec_key):
    clock = [1000.0]
    verifier = JwtVerifier(issuer=issuer.url, audience=AUDIENCE, clock=lambda: clock[0])
    issuer.discovery_status = 503
    issuer.fallback_keys = {"ec-1": ec_key}
    signed = token(issuer.url, ec_key, "ec-1", "ES256")

    assert verifier.subject(signed) == "user-alice"
    assert issuer.requests == [DISCOVERY, FALLBACK]

    # When the discovery document is back and the retry delay has passed, its jwks_uri is used
    issuer.discovery_status = 200
    issuer.fallback_keys = {}
    issuer.reset_counters()
    clock[0] += DISCOVERY_RETRY_S + 1

    assert verifier.subject(signed) == "user-alice"
    assert issuer.requests == [DISCOVERY, KEYS_PATH]


def test_given_the_verifier_then_hs256_and_none_are_never_accepted_with_the_issuers_keys(issuer, ec_key):
    verifier = JwtVerifier(issuer=issuer.url, audience=AUDIENCE)
    unsigned = token(issuer.url, None, "ec-1", "none")

    with pytest.raises(InvalidTokenError):
        verifier.subject(unsigned)
    with pytest.raises(InvalidTokenError):
        verifier.subject(token(issuer.url, "a-guessable-secret-of-enough-length!!", "ec-1", "HS256"))


def test_given_an_hs256_key_published_by_the_issuer_then_its_tokens_are_refused(issuer):
    secret = "a-shared-secret-that-leaked-out-of-somewhere"

    class OctetIssuer(DiscoveringIssuer):
        @staticmethod
        def key_set(keys: dict[str, SigningKey]) -> bytes:
            octet = json.loads(jwt.algorithms.HMACAlgorithm.to_jwk(secret.encode()))
            return json.dumps({"keys": [{**octet, "kid": "oct-1", "use": "sig"}]}).encode()

    with OctetIssuer() as octets:
        verifier = JwtVerifier(issuer=octets.url, audience=AUDIENCE)
        with pytest.raises(InvalidTokenError, match="UnsupportedKeyAlgorithm"):
            verifier.subject(token(octets.url, secret, "oct-1", "HS256"))
