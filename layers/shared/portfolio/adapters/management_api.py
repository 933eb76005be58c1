"""API Gateway's management API for WebSocket connections (`POST @connections/{id}`), with short
timeouts and a single attempt: a push that fails is not worth holding a write or a refresh for,
and the next update brings the figures anyway.

The endpoint is the stage's callback URL (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`;
the local stack emulates it). A closed connection answers 410 GoneException.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from portfolio.services.ports import ConnectionGoneError

# The slowest a healthy management API answers is tens of milliseconds; this is the ceiling.
CONNECT_TIMEOUT_S = 1.0


def make_management_client(endpoint_url: str, region: str, *, timeout_s: float, max_connections: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "apigatewaymanagementapi",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=min(CONNECT_TIMEOUT_S, timeout_s),
            read_timeout=timeout_s,
            retries={"mode": "standard", "total_max_attempts": 1},
            max_pool_connections=max_connections,
            tcp_keepalive=True,
        ),
    )


class ManagementApiPusher:
    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, connection_id: str, data: bytes) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.response.get("Error", {}).get("Code") == "GoneException" or status == 410:
                raise ConnectionGoneError(connection_id) from None
            raise
