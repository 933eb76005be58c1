"""Live updates through the local stack, as a browser would use them: `python -m local_stack` in a
child process, a real WebSocket client (the websockets package) at ws://127.0.0.1:<port>/ws?token=...,
writes and refreshes over HTTP."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import jwt
import pytest
from portfolio.adapters.dynamodb.items import connections_partition_key
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local_stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from local_stack.jwt_auth import AUDIENCE, ISSUER, JwtAuthorizer, load_or_create_secret
from tests.e2e.stack_process import OFFLINE_QUIET, local_stack_process, wait_until_healthy

STARTUP_TIMEOUT_S = 120
ETH = "0x0000000000000000000000000000000000000000"
RECEIVE_TIMEOUT_S = 10
QUIET_S = 1.0


@dataclass
class LiveStack:
    url: str
    websocket_url: str
    log_path: Path
    authorizer: JwtAuthorizer
    secret: str

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connect(self, user_id: str) -> ClientConnection:
        return connect(f"{self.websocket_url}?token={self.authorizer.issue(user_id)}", open_timeout=10)

    def buy(self, user_id: str, amount: str = "1.5") -> httpx.Response:
        body = {
            "id": f"buy-{uuid.uuid4().hex[:8]}",
            "type": "buy",
            "chain": "ethereum",
            "tokenAddress": ETH,
            "amount": amount,
            "priceUsd": "3000",
            "timestamp": "2025-01-01T00:00:00Z",
        }
        headers = {"Authorization": f"Bearer {self.authorizer.issue(user_id)}"}
        response = httpx.post(f"{self.url}/portfolios/{user_id}/transactions", json=body, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        return response

    def summary(self, user_id: str) -> dict:
        headers = {"Authorization": f"Bearer {self.authorizer.issue(user_id)}"}
        return httpx.get(f"{self.url}/portfolios/{user_id}", headers=headers, timeout=30).json()

    def add_alert(self, user_id: str, rule: dict) -> dict:
        headers = {"Authorization": f"Bearer {self.authorizer.issue(user_id)}"}
        response = httpx.post(f"{self.url}/portfolios/{user_id}/alerts", json=rule, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    def refresh(self) -> None:
        response = httpx.post(f"{self.url}/_local/refresh?force=true", timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["messagesFailed"] == 0

    def dynamodb(self):
        """The stack's moto server and table, as its banner names them."""
        output = self.output()
        endpoint = re.search(r"AWS \(moto\)\s+(\S+)", output).group(1)
        table = re.search(r"tables: (\S+)", output).group(1).rstrip(",")
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        )
        return client, table

    def stored_connections(self, user_id: str) -> list[str]:
        client, table = self.dynamodb()
        items = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": connections_partition_key(user_id)}},
            ConsistentRead=True,
        )["Items"]
        return sorted(item["connectionId"]["S"] for item in items)


@pytest.fixture(scope="module")
def stack(live_updates_redis_url, tmp_path_factory) -> Iterator[LiveStack]:
    directory = tmp_path_factory.mktemp("live-stack")
    variables = {**OFFLINE_QUIET, "REDIS_URL": live_updates_redis_url}
    with local_stack_process(directory, variables) as (process, url, log_path, _environment):
        wait_until_healthy(process, url, lambda: log_path.read_text(errors="replace"), timeout_s=STARTUP_TIMEOUT_S)
        secret = load_or_create_secret(directory / "data")
        yield LiveStack(url, url.replace("http://", "ws://") + "/ws", log_path, JwtAuthorizer(secret), secret)


@pytest.fixture
def user_id() -> str:
    return f"live-{uuid.uuid4().hex[:10]}"


def receive(connection: ClientConnection, timeout_s: float = RECEIVE_TIMEOUT_S) -> dict:
    return json.loads(connection.recv(timeout=timeout_s))


def nothing_arrives(connection: ClientConnection, within_s: float = QUIET_S) -> bool:
    try:
        connection.recv(timeout=within_s)
    except TimeoutError:
        return True
    return False


def refused_with(stack: LiveStack, query: str) -> int:
    with pytest.raises(InvalidStatus) as refusal:
        connect(f"{stack.websocket_url}{query}", open_timeout=10)
    return refusal.value.response.status_code


def test_given_a_valid_token_when_connecting_then_the_socket_opens_and_ping_is_answered(stack, user_id):
    with stack.connect(user_id) as connection:
        connection.send(json.dumps({"action": "ping"}))

        assert receive(connection) == {"type": "pong"}


def test_given_no_token_or_a_bad_one_when_connecting_then_the_handshake_is_refused_401(stack, user_id):
    now = int(time.time())
    expired = jwt.encode(
        {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now - 7200, "exp": now - 3600},
        stack.secret,
        algorithm="HS256",
    )
    forged = JwtAuthorizer("another-secret-entirely-of-enough-length").issue(user_id)

    assert refused_with(stack, "") == 401
    assert refused_with(stack, "?token=") == 401
    assert refused_with(stack, "?token=not-a-jwt") == 401
    assert refused_with(stack, f"?token={expired}") == 401
    assert refused_with(stack, f"?token={forged}") == 401


def test_given_a_valid_token_whose_sub_is_no_user_id_then_the_handshake_is_refused_403(stack):
    assert refused_with(stack, f"?token={stack.authorizer.issue('not a user')}") == 403


def test_given_a_connected_user_when_they_write_then_they_receive_the_new_figures(stack, user_id):
    with stack.connect(user_id) as connection:
        stack.buy(user_id)

        update = receive(connection)

    summary = stack.summary(user_id)
    assert update == {
        "type": "portfolio.updated",
        "userId": user_id,
        "totalValueUsd": summary["totalValueUsd"],
        "totalPnlUsd": summary["totalPnlUsd"],
        "changeUsd": None,
        "pricesAsOf": summary["pricesAsOf"],
        "stalePriceCount": summary["stalePriceCount"],
    }


def test_given_two_writes_then_the_second_update_carries_the_change(stack, user_id):
    with stack.connect(user_id) as connection:
        stack.buy(user_id, "1")
        first = receive(connection)
        stack.buy(user_id, "1")
        second = receive(connection)

    assert second["changeUsd"] == first["totalValueUsd"]  # the same buy again doubles the value


def test_given_a_connected_user_when_a_refresh_values_them_then_they_receive_an_update(stack, user_id):
    stack.buy(user_id)  # before connecting: nothing is pushed, nothing remembered
    with stack.connect(user_id) as connection:
        stack.refresh()

        update = receive(connection)
        stack.refresh()  # the same prices again: the figures did not change

        assert nothing_arrives(connection)
    assert update["type"] == "portfolio.updated"
    assert update["userId"] == user_id
    assert update["totalValueUsd"] == stack.summary(user_id)["totalValueUsd"]


def test_given_two_users_connected_when_one_writes_then_the_other_receives_nothing(stack, user_id):
    other = f"{user_id}-b"
    with stack.connect(user_id) as mine, stack.connect(other) as theirs:
        stack.buy(other)

        assert receive(theirs)["userId"] == other
        assert nothing_arrives(mine)


def test_given_two_users_connected_when_a_refresh_values_both_then_each_receives_only_their_own(stack, user_id):
    other = f"{user_id}-b"
    stack.buy(user_id, "1")  # before connecting: nothing is pushed
    stack.buy(other, "2")
    with stack.connect(user_id) as mine, stack.connect(other) as theirs:
        stack.refresh()

        my_update, their_update = receive(mine), receive(theirs)

        assert nothing_arrives(mine)
        assert nothing_arrives(theirs, within_s=0.2)
    assert (my_update["userId"], my_update["totalValueUsd"]) == (user_id, stack.summary(user_id)["totalValueUsd"])
    assert (their_update["userId"], their_update["totalValueUsd"]) == (other, stack.summary(other)["totalValueUsd"])


def test_given_a_price_rule_that_holds_when_refreshed_twice_then_it_fires_once_over_the_socket(stack, user_id):
    rule = stack.add_alert(user_id, {"kind": "price", "asset": "ETH", "above": "1"})  # ETH is far above 1 USD
    with stack.connect(user_id) as connection:
        stack.refresh()

        fired = receive(connection)
        stack.refresh()  # still above: armed again only once it is not

        assert nothing_arrives(connection)
    assert fired["type"] == "alert.triggered"
    assert fired["alertId"] == rule["alertId"]
    assert fired["userId"] == user_id


def test_given_a_connection_dropped_without_a_goodbye_when_pushed_to_then_it_is_cleaned_up(stack, user_id):
    with stack.connect(user_id) as kept:
        dropped = stack.connect(user_id)
        kept.send(json.dumps({"action": "ping"}))
        receive(kept)
        assert len(stack.stored_connections(user_id)) == 2

        # The client vanishes (no close frame), and a write pushes to both connections at once.
        dropped.socket.shutdown(socket.SHUT_RDWR)
        stack.buy(user_id)

        assert receive(kept)["type"] == "portfolio.updated"
        deadline = time.monotonic() + RECEIVE_TIMEOUT_S
        while len(stack.stored_connections(user_id)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(stack.stored_connections(user_id)) == 1
        stack.buy(user_id)
        assert receive(kept)["type"] == "portfolio.updated"
    assert "raised" not in stack.output()
