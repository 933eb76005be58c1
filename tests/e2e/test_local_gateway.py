"""The local gateway decides like API Gateway: 404, 401, 413 and 500 before or around the function."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jwt
import pytest

from local_stack.api_routes import api_routes
from local_stack.gateway import MAX_REQUEST_BYTES, Gateway, GatewayServer
from local_stack.http_events import IncomingRequest
from local_stack.jwt_auth import ADMIN_SCOPE, AUDIENCE, ISSUER, JwtAuthorizer, load_or_create_secret
from local_stack.lambda_context import LocalLambdaContext

SECRET = "a-test-signing-key-that-is-long-enough-for-hs256"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


class RecordingHandler:
    """A stand-in API function: remembers each event and answers 200 with the caller's subject."""

    def __init__(self, raises: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self._raises = raises

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self._raises:
            raise RuntimeError("the function crashed")
        claims = event["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims", {})
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(claims)}


def _gateway(handler: RecordingHandler, authorizer: JwtAuthorizer | None = None) -> Gateway:
    return Gateway(handler, api_routes(), authorizer or JwtAuthorizer(SECRET), lambda: LocalLambdaContext("api"))


def _get(path: str, authorization: str | None = None) -> IncomingRequest:
    headers = [("Authorization", authorization)] if authorization is not None else []
    return IncomingRequest("GET", path, headers=headers)


def test_a_valid_token_reaches_the_function_with_its_claims_as_strings():
    # Given a token for alice with the admin scope
    handler = RecordingHandler()
    token = JwtAuthorizer(SECRET).issue("alice", scopes=[ADMIN_SCOPE])

    # When alice reads her portfolio with it
    response = _gateway(handler).dispatch(_get("/portfolios/alice", f"Bearer {token}"))

    # Then the function ran once and saw the verified claims, as strings, and the scopes
    assert response.status == 200
    assert len(handler.events) == 1
    authorizer = handler.events[0]["requestContext"]["authorizer"]["jwt"]
    assert authorizer["claims"]["sub"] == "alice"
    assert authorizer["claims"]["iss"] == ISSUER
    assert authorizer["claims"]["exp"].isdigit()
    assert authorizer["scopes"] == [ADMIN_SCOPE]


def _forged(claims_override: dict[str, Any], secret: str = SECRET) -> str:
    now = 1_700_000_000
    claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": 4_000_000_000, **claims_override}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer not-a-jwt",
        f"Bearer {_forged({}, secret='another-key-of-sufficient-length-for-hs256')}",
        f"Bearer {_forged({'exp': 1_700_000_100})}",  # expired long ago
        f"Bearer {_forged({'iss': 'https://someone-else.example'})}",
        f"Bearer {_forged({'aud': 'another-api'})}",
        f"Bearer {_forged({'sub': None})}",
    ],
    ids=[
        "missing",
        "empty",
        "no-token",
        "basic",
        "garbage",
        "bad-signature",
        "expired",
        "wrong-issuer",
        "wrong-audience",
        "no-subject",
    ],
)
def test_a_request_without_a_valid_token_gets_401_and_never_reaches_the_function(authorization):
    handler = RecordingHandler()

    response = _gateway(handler).dispatch(_get("/portfolios/alice", authorization))

    assert response.status == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert handler.events == []


def test_a_token_without_the_bearer_prefix_is_accepted_as_api_gateway_does():
    handler = RecordingHandler()
    token = JwtAuthorizer(SECRET).issue("alice")

    response = _gateway(handler).dispatch(_get("/portfolios/alice", token))

    assert response.status == 200


def test_health_needs_no_token():
    handler = RecordingHandler()

    response = _gateway(handler).dispatch(_get("/health"))

    assert response.status == 200
    assert handler.events[0]["routeKey"] == "GET /health"


def test_an_unknown_route_is_404_before_any_token_check():
    handler = RecordingHandler()

    response = _gateway(handler).dispatch(_get("/admin/users"))

    assert response.status == 404
    assert json.loads(response.body) == {"message": "Not Found"}
    assert handler.events == []


def test_a_crashing_function_is_a_500_with_api_gateways_message():
    handler = RecordingHandler(raises=True)

    response = _gateway(handler).dispatch(_get("/health"))

    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}


def test_a_body_over_10_mb_is_refused_with_413_without_being_read():
    # Given the gateway listening on loopback
    handler = RecordingHandler()
    server = GatewayServer(("127.0.0.1", 0), _gateway(handler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # When a client announces a body one byte over the limit and sends none of it
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("POST", "/portfolios/alice/transactions")
        connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))
        connection.putheader("Content-Type", "application/json")
        connection.endheaders()
        response = connection.getresponse()

        # Then it hears 413 at once, and the function never ran
        assert response.status == 413
        assert json.loads(response.read()) == {"message": "Request Entity Too Large"}
        assert handler.events == []
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def listening_gateway():
    """The gateway on a loopback port, in front of a recording stand-in function."""
    handler = RecordingHandler()
    server = GatewayServer(("127.0.0.1", 0), _gateway(handler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("method", "path", "allowed"), [("TRACE", "/health", "GET"), ("CONNECT", "/nowhere", "")])
def test_a_method_no_route_can_declare_is_a_json_405_in_the_apis_error_shape(listening_gateway, method, path, allowed):
    # Given the gateway listening on loopback
    server, handler = listening_gateway
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        # When a client sends a method no HTTP API route can declare
        connection.request(method, path)
        response = connection.getresponse()

        # Then it hears a JSON 405 like the API's own, naming what the path does take; the function never ran
        assert response.status == 405
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Allow") == allowed
        assert json.loads(response.read()) == {
            "error": {"code": "method_not_allowed", "message": f"{method} is not allowed here"}
        }
        assert handler.events == []

        # And the connection still serves the next request
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_a_request_http_server_refuses_to_parse_is_answered_in_json_not_an_html_page(listening_gateway):
    # Given the gateway listening on loopback
    server, handler = listening_gateway

    # When a client sends more header lines than http.server reads
    headers = b"".join(b"X-Filler-%d: x\r\n" % number for number in range(101))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
        answer = client.makefile("rb").read()

    # Then the refusal is API Gateway's JSON, the connection is closed and the function never ran
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ")
    assert b"Content-Type: application/json" in head
    assert b"Connection: close" in head
    assert json.loads(body) == {"message": "Request Header Fields Too Large"}
    assert handler.events == []


def test_the_signing_key_is_created_once_readable_by_its_owner_only_and_reused(tmp_path):
    first = load_or_create_secret(tmp_path)
    second = load_or_create_secret(tmp_path)

    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600


def test_a_configured_secret_wins_over_the_stored_one(tmp_path):
    load_or_create_secret(tmp_path)

    assert load_or_create_secret(tmp_path, "configured-secret") == "configured-secret"


def _token_command(tmp_path: Path, *arguments: str) -> str:
    environment = {**os.environ, "LOCAL_DATA_DIR": str(tmp_path)}
    environment.pop("LOCAL_JWT_SECRET", None)
    completed = subprocess.run(
        [sys.executable, "-m", "local_stack.token", *arguments],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.strip()


def test_the_token_command_prints_a_token_the_gateway_accepts_for_that_user_only(tmp_path):
    # Given a token printed by `python -m local_stack.token bob --admin`
    token = _token_command(tmp_path, "bob", "--admin")

    # When the gateway (same data dir, same key) checks it
    caller = JwtAuthorizer(load_or_create_secret(tmp_path)).authorize(f"Bearer {token}")

    # Then it is bob's, with the admin scope
    assert caller is not None
    assert caller.claims["sub"] == "bob"
    assert caller.scopes == [ADMIN_SCOPE]
    # And a gateway with another key refuses it
    assert JwtAuthorizer("some-other-key-entirely-of-enough-length").authorize(f"Bearer {token}") is None
