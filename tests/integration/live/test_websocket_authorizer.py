"""The WebSocket authorizer (functions/websocket_authorizer) as API Gateway invokes it on $connect, with
RS256 tokens and the issuer's keys served over HTTP at <issuer>/.well-known/jwks.json (an issuer with
no discovery document: test_token_discovery.py covers one that has)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from portfolio import wiring
from portfolio.settings import UnsafeSettingsError

from local_stack.functions import load_handler
from local_stack.lambda_context import LocalLambdaContext
from local_stack.loopback_server import Answer, QuietHandler, ScriptedServer, send_answer
from local_stack.ports import free_port
from tests.integration.live.conftest import load_event

authorizer = load_handler("WebSocketAuthorizerFunction")
AUDIENCE = "app-client-id"
KEY_ID = "key-1"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/$connect"


class IssuerKeys(ScriptedServer[str]):
    """An identity provider's published keys: GET /.well-known/jwks.json."""

    thread_name = "jwks"

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey]) -> None:
        super().__init__()
        self.keys = keys

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server._record(self.path)
                if self.path != "/.well-known/jwks.json":
                    send_answer(self, Answer(404, b"{}"))
                    return
                keys = []
                for kid, key in server.keys.items():
                    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                    keys.append({**public, "kid": kid, "alg": "RS256", "use": "sig"})
                send_answer(self, Answer(200, json.dumps({"keys": keys}).encode()))

        return Handler


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer_keys(signing_key) -> Iterator[IssuerKeys]:
    with IssuerKeys({KEY_ID: signing_key}) as server:
        yield server


@pytest.fixture
def authorizer_environment(monkeypatch) -> Iterator[Callable[..., None]]:
    """What the template sets on the authorizer (it reads no table and no Redis); the container's
    singletons rebuilt from it."""

    def configure(**variables: str) -> None:
        monkeypatch.delenv("LOCAL_JWT_SECRET", raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        wiring.reset()

    yield configure
    wiring.reset()


@pytest.fixture
def issuer(issuer_keys, authorizer_environment) -> str:
    authorizer_environment(JWT_ISSUER=issuer_keys.url, JWT_AUDIENCE=AUDIENCE, STAGE="dev")
    return issuer_keys.url


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-alice", "iss": issuer, "aud": AUDIENCE, "iat": now, "exp": now + 600, **overrides}


@pytest.fixture
def token(signing_key) -> Callable[..., str]:
    def sign(payload: dict[str, Any], *, key: Any = None, kid: str = KEY_ID, algorithm: str = "RS256") -> str:
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key or signing_key, algorithm=algorithm, headers={"kid": kid})

    return sign


def authorize(token_value: str | None) -> dict[str, Any]:
    event = load_event("websocket-authorizer.json")
    if token_value is None:
        event["queryStringParameters"] = {}
        event["multiValueQueryStringParameters"] = {}
    else:
        event["queryStringParameters"]["token"] = token_value
        event["multiValueQueryStringParameters"]["token"] = [token_value]
    return authorizer(event, LocalLambdaContext("websocket-authorizer"))


def refused(token_value: str | None) -> str:
    with pytest.raises(Exception) as raised:
        authorize(token_value)
    return str(raised.value)


def test_given_a_valid_token_then_the_connection_is_allowed_for_its_sub(issuer, token):
    answer = authorize(token(claims(issuer)))

    assert answer["principalId"] == "user-alice"
    assert answer["context"] == {"userId": "user-alice"}
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}


def test_given_a_cognito_access_token_with_client_id_and_no_aud_then_it_is_allowed(issuer, token):
    answer = authorize(token(claims(issuer, aud=None, client_id=AUDIENCE, token_use="access")))

    assert answer["context"] == {"userId": "user-alice"}


def test_given_an_audience_list_naming_the_client_then_it_is_allowed(issuer, token):
    assert authorize(token(claims(issuer, aud=["other", AUDIENCE])))["context"]["userId"] == "user-alice"


def test_given_no_token_then_401(issuer):
    assert refused(None) == "Unauthorized"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"exp": int(time.time()) - 120}, id="expired"),
        pytest.param({"nbf": int(time.time()) + 600}, id="not-yet-valid"),
        pytest.param({"iss": "https://someone-else.example"}, id="other-issuer"),
        pytest.param({"aud": "another-client"}, id="other-audience"),
        pytest.param({"aud": None, "client_id": "another-client"}, id="other-client-id"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"sub": None}, id="no-subject"),
    ],
)
def test_given_a_token_failing_a_check_then_401(issuer, token, change):
    assert refused(token(claims(issuer, **change))) == "Unauthorized"


def test_given_a_token_signed_by_another_key_then_401(issuer, token):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    assert refused(token(claims(issuer), key=stranger)) == "Unauthorized"
    assert refused(token(claims(issuer), key=stranger, kid="unknown-key")) == "Unauthorized"


def test_given_an_hs256_token_signed_with_a_guessable_secret_then_401(issuer, token):
    assert (
        refused(token(claims(issuer), key="the-public-key-or-any-secret-of-some-length", algorithm="HS256"))
        == "Unauthorized"
    )


def test_given_an_unsigned_token_then_401(issuer):
    unsigned = jwt.encode(claims(issuer), None, algorithm="none", headers={"kid": KEY_ID})

    assert refused(unsigned) == "Unauthorized"


def test_given_garbage_then_401(issuer):
    assert refused("not-a-jwt") == "Unauthorized"


def test_given_a_valid_token_whose_sub_is_no_user_id_then_the_policy_denies(issuer, token):
    answer = authorize(token(claims(issuer, sub="alice smith/../bob")))

    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "context" not in answer


def test_given_several_connections_then_the_keys_are_fetched_once_per_container(issuer, issuer_keys, token):
    for _ in range(3):
        authorize(token(claims(issuer)))

    # Discovery is asked first; without a document, the keys are read from jwks.json
    assert issuer_keys.requests == ["/.well-known/openid-configuration", "/.well-known/jwks.json"]


def test_given_the_issuer_unreachable_then_the_authorizer_fails_rather_than_refusing(authorizer_environment, token):
    unreachable = f"http://127.0.0.1:{free_port()}"
    authorizer_environment(JWT_ISSUER=unreachable, JWT_AUDIENCE=AUDIENCE)

    assert refused(token(claims(unreachable))) != "Unauthorized"


def test_given_the_token_then_it_never_reaches_the_logs(issuer, token, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    valid, expired = token(claims(issuer)), token(claims(issuer, exp=int(time.time()) - 120))

    authorize(valid)
    refused(expired)

    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    for value in (valid, expired):
        assert value not in logged
        assert value.split(".")[2] not in logged


def test_given_the_local_key_outside_the_local_stage_then_the_authorizer_refuses_to_start(
    authorizer_environment, token
):
    authorizer_environment(
        JWT_ISSUER="https://issuer.example", JWT_AUDIENCE=AUDIENCE, STAGE="prod", LOCAL_JWT_SECRET="a-shared-secret"
    )

    with pytest.raises(UnsafeSettingsError):
        authorize(token(claims("https://issuer.example")))


def test_given_the_local_stage_and_key_then_local_hs256_tokens_are_verified_with_the_same_rules(authorizer_environment):
    secret = "local-secret-of-enough-length-for-hs256"
    issuer = "https://local.example"
    authorizer_environment(JWT_ISSUER=issuer, JWT_AUDIENCE=AUDIENCE, STAGE="local", LOCAL_JWT_SECRET=secret)

    valid = jwt.encode(claims(issuer), secret, algorithm="HS256")
    expired = jwt.encode(claims(issuer, exp=int(time.time()) - 120), secret, algorithm="HS256")

    assert authorize(valid)["context"] == {"userId": "user-alice"}
    assert refused(expired) == "Unauthorized"
