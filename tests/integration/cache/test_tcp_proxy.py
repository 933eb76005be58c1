"""The fault-injection proxy itself: each mode does to a real Redis client what its name says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with TcpProxy(target_port=port) as running:
        yield running


def _client(proxy: TcpProxy) -> redis.Redis:
    # No retries: each call shows exactly what the network did to it.
    return redis.Redis(port=proxy.port, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


def test_given_refuse_when_clients_connect_then_live_connections_work_and_new_ones_fail(proxy: TcpProxy) -> None:
    # Given
    live = _client(proxy)
    assert live.ping()

    # When
    proxy.refuse()

    # Then
    assert live.ping()
    with pytest.raises(redis.ConnectionError):
        _client(proxy).ping()


def test_given_cut_when_clients_talk_then_everything_fails_until_resume(proxy: TcpProxy) -> None:
    # Given
    live = _client(proxy)
    assert live.ping()

    # When
    proxy.cut()

    # Then
    with pytest.raises(redis.ConnectionError):
        live.ping()
    with pytest.raises(redis.ConnectionError):
        _client(proxy).ping()
    assert proxy.live_connections == 0

    # When / Then
    proxy.resume()
    assert live.ping()


def test_given_stall_when_a_client_sends_a_command_then_it_times_out(proxy: TcpProxy) -> None:
    # Given
    proxy.stall()

    # When / Then
    with pytest.raises(redis.TimeoutError):
        _client(proxy).ping()
