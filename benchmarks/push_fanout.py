"""One live update to 100 WebSocket connections of one user, against the same 100 posts one after another.

    .venv/bin/python -m benchmarks.push_fanout

In this process: the local stack's WebSocket API and management API (`local_stack/websocket_api.py`
behind the gateway's HTTP server), 100 real WebSocket clients (the websockets package) connected to
it, and the connections recorded in the registry as `$connect` records them (moto's server in a child
process for DynamoDB, a redis-server for the index). The subject is `LiveUpdatePublisher.send` as the
functions wire it: the user's connections looked up (one SRANDMEMBER, one Query of 100 items) and one
`POST @connections/{id}` each through boto3's management API client, `LIVE_UPDATE_CONCURRENCY` (16)
at a time. The baseline posts the same message to the same 100 connections one after another
through the same client, without the lookup. Both sides alternate round by round; the headline is
the median of the subject's calls, the ratio the median of the rounds' ratios. Every client is
checked to have received every message; `lookup_ms_p50` is the lookup alone.

Everything shares this process and its two cores here: the management API's server threads, the
clients' threads and the posting threads take turns on one interpreter, so posting concurrently
gains nothing over a loop. In AWS each post waits on the network (a round trip to API Gateway of
milliseconds), which the concurrency overlaps: the ratio here is the overhead of the concurrency,
not its gain.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import threading
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

from benchmarks.timing import compare, time_calls
from local_stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, MotoProcess, local_client
from local_stack.embedded_redis import RedisServer
from local_stack.gateway import Gateway, GatewayServer
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.template_resources import create_tables
from local_stack.websocket_api import WEBSOCKET_PATH, LocalWebSocketApi, WebSocketConfig

CONNECTIONS = 100
CONCURRENCY = 16
USER_ID = "bench-user"
TABLE = "bench-portfolio"
MESSAGE = {
    "type": "portfolio.updated",
    "userId": USER_ID,
    "totalValueUsd": "123456.78",
    "totalPnlUsd": "2345.67",
    "changeUsd": "-12.4",
    "pricesAsOf": "2025-01-15T10:05:00Z",
    "stalePriceCount": 0,
}


def _serve() -> tuple[GatewayServer, LocalWebSocketApi]:
    """The gateway with a WebSocket API that opens any connection (no authorizer, no $connect route)."""
    websocket = LocalWebSocketApi(
        WebSocketConfig(routes={}, selection_key="action", authorizer_function=None, token_parameter=None),
        {},
        stage="local",
        region="us-east-1",
    )
    gateway = Gateway(
        lambda _event, _context: {"statusCode": 404},
        (),
        JwtAuthorizer("an-unused-key-of-the-benchmark-gateway"),
        lambda: None,
        websocket=websocket,
    )
    server = GatewayServer(("127.0.0.1", 0), gateway)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, websocket


def _connect_clients(port: int, websocket: LocalWebSocketApi) -> list[ClientConnection]:
    clients = [connect(f"ws://127.0.0.1:{port}{WEBSOCKET_PATH}", max_queue=None) for _ in range(CONNECTIONS)]
    deadline = time.monotonic() + 30
    while len(websocket.open_connections()) < CONNECTIONS and time.monotonic() < deadline:
        time.sleep(0.01)
    return clients


def _received(client: ClientConnection) -> int:
    count = 0
    with contextlib.suppress(TimeoutError):
        while True:
            client.recv(timeout=0.5 if count == 0 else 0.05)
            count += 1
    return count


def run(repetitions: int = 7, calls_per_repetition: int = 3) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY_ID)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_ACCESS_KEY)
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CrossChainPortfolio")
    from portfolio.adapters.connection_registry import DynamoConnectionRegistry
    from portfolio.adapters.management_api import ManagementApiPusher, make_management_client
    from portfolio.adapters.redis_connection import make_redis_client
    from portfolio.observability import metrics
    from portfolio.services.live_updates import LiveUpdatePublisher
    from portfolio.settings import Settings

    redis_server = RedisServer().start()
    moto = MotoProcess().start()
    server, websocket = _serve()
    clients: list[ClientConnection] = []
    try:
        dynamodb = local_client("dynamodb", moto.endpoint)
        create_tables(dynamodb, {"PortfolioTable": TABLE})
        registry = DynamoConnectionRegistry(
            dynamodb,
            TABLE,
            make_redis_client(Settings(REDIS_URL=redis_server.url)),
            region="us-east-1",
            max_connections=CONNECTIONS,
        )
        clients = _connect_clients(server.port, websocket)
        for connection_id in websocket.open_connections():
            registry.add(USER_ID, connection_id)
        client = make_management_client(
            f"http://127.0.0.1:{server.port}{WEBSOCKET_PATH}", "us-east-1", timeout_s=5, max_connections=CONCURRENCY
        )
        pusher = ManagementApiPusher(client)
        publisher = LiveUpdatePublisher(registry, pusher, budget_s=30, max_concurrency=CONCURRENCY)
        data = json.dumps(MESSAGE, separators=(",", ":")).encode()
        connection_ids = registry.connections_of(USER_ID)
        sent = 0

        def fanout() -> object:
            nonlocal sent
            outcome = publisher.send(USER_ID, MESSAGE)
            if outcome.delivered != CONNECTIONS:
                raise RuntimeError(f"the update reached {outcome} of {CONNECTIONS} connections")
            sent += 1
            return outcome

        def one_after_another() -> object:
            nonlocal sent
            for connection_id in connection_ids:
                pusher.post(connection_id, data)
            sent += 1
            return None

        # The publisher's metrics would flush as EMF lines to stdout; keep them out of the report.
        with contextlib.redirect_stdout(io.StringIO()):
            timed = compare(fanout, one_after_another, repetitions=repetitions, calls=calls_per_repetition, warmup=1)
        metrics.clear_metrics()
        lookups = time_calls(lambda: registry.connections_of(USER_ID), 21)
        received = [_received(connection) for connection in clients]
        if set(received) != {sent}:
            raise RuntimeError(f"clients received {sorted(set(received))} messages, {sent} were sent")
    finally:
        for connection in clients:
            connection.close()
        websocket.close_all()
        server.shutdown()
        server.server_close()
        moto.stop()
        redis_server.stop()

    return {
        "benchmark": "push_fanout",
        "connections": CONNECTIONS,
        "concurrency": CONCURRENCY,
        "fanout_ms_p50": round(statistics.median(timed.subject) / 1e6, 2),
        "sequential_ms_p50": round(statistics.median(timed.baseline) / 1e6, 2),
        "ratio_to_sequential": timed.ratio,
        "per_connection_ms": round(statistics.median(timed.subject) / 1e6 / CONNECTIONS, 3),
        "lookup_ms_p50": round(statistics.median(lookups) / 1e6, 2),
        "messages_per_client": sent,
        "repetitions": repetitions,
        "calls_per_repetition": calls_per_repetition,
    }


def main() -> None:
    result = run()
    print(
        f"one update to {result['connections']} connections: {result['fanout_ms_p50']} ms "
        f"({result['concurrency']} at a time, lookup included); the same posts one after another: "
        f"{result['sequential_ms_p50']} ms; ratio {result['ratio_to_sequential']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
