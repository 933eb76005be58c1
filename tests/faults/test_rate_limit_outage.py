"""Per-user rate limits while Redis is down: requests go through (fail open), and limits return with Redis."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from portfolio.adapters.rate_limiter import PAUSE_AFTER_FAILURE_S
from portfolio.observability import logger

from local_stack.embedded_redis import RedisServer
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import buy, call_api, random_address
from tests.support.tcp_proxy import TcpProxy

# Two writes at once, then one every 100 s: a third write in a row is refused while Redis answers.
LIMITS = {
    "USER_WRITE_RATE_PER_S": "0.01",
    "USER_WRITE_BURST": "2",
    "USER_READ_RATE_PER_S": "0.01",
    "USER_READ_BURST": "2",
}
WRITES_WHILE_DOWN = 6


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    service_logger = logging.getLogger(logger.name)
    service_logger.addHandler(handler)
    yield buffer
    service_logger.removeHandler(handler)


def post(user_id: str, transaction_id: str, token: str) -> int:
    path = f"/portfolios/{user_id}/transactions"
    return call_api("POST", path, sub=user_id, body=buy(transaction_id, token, "1")).status


def test_given_redis_is_killed_when_a_user_writes_past_its_limit_then_every_write_passes_until_redis_returns(
    function_env: FunctionEnv,
    own_redis: RedisServer,
    coins_api: Any,
    user_id: str,
    captured_logs: io.StringIO,
    fault_figures: dict,
) -> None:
    # Given: a user who spent its burst of writes while Redis answers
    function_env(REDIS_URL=own_redis.url, **LIMITS)
    token = random_address()
    coins_api.set_price(f"ethereum:{token}", "10")
    assert [post(user_id, f"t-{n}", token) for n in range(3)] == [201, 201, 429]

    # When: the Redis process dies, and the same user keeps writing and reading
    own_redis.kill()
    writes = [post(user_id, f"down-{n}", token) for n in range(WRITES_WHILE_DOWN)]
    reads = [call_api("GET", f"/portfolios/{user_id}", sub=user_id).status for _ in range(4)]

    # Then: nothing is refused (the limit fails open; the route throttles stay the bound), and the
    # warning names the failure, never the caller
    assert writes == [201] * WRITES_WHILE_DOWN
    assert reads == [200] * 4
    logged = captured_logs.getvalue()
    assert "rate limit not checked" in logged
    assert user_id not in "\n".join(line for line in logged.splitlines() if "rate limit" in line)

    # When: Redis comes back (empty, on the same port) and the pause after a failure has passed
    own_redis.start()
    time.sleep(PAUSE_AFTER_FAILURE_S + 0.1)

    # Then: the limit is checked again, from a full bucket
    assert [post(user_id, f"back-{n}", token) for n in range(3)] == [201, 201, 429]
    fault_figures.update(writes_while_down=WRITES_WHILE_DOWN, refused_while_down=0)


def test_given_a_black_holed_link_to_redis_when_a_user_reads_then_reads_answer_and_the_limit_is_asked_once_a_second(
    function_env: FunctionEnv,
    own_redis: RedisServer,
    coins_api: Any,
    user_id: str,
    captured_logs: io.StringIO,
    fault_figures: dict,
) -> None:
    with TcpProxy(target_port=own_redis.port) as link:
        # Given: a handler reaching Redis through a link that can be black-holed, with short timeouts
        function_env(
            REDIS_URL=f"redis://127.0.0.1:{link.port}/0",
            REDIS_SOCKET_TIMEOUT_MS="100",
            REDIS_CONNECT_TIMEOUT_MS="100",
            **LIMITS,
        )
        token = random_address()
        coins_api.set_price(f"ethereum:{token}", "10")
        assert post(user_id, "t-1", token) == 201

        # When: Redis stops answering (connections accepted, nothing comes back), and reads keep coming
        link.stall()
        started = time.monotonic()
        reads = [call_api("GET", f"/portfolios/{user_id}", sub=user_id).status for _ in range(5)]
        elapsed_s = time.monotonic() - started

        # Then: every read answers, past a read burst of 2; the limit waited for Redis once per
        # pause, not once per read
        assert reads == [200] * 5
        timeouts = captured_logs.getvalue().count("rate limit not checked")
        assert 1 <= timeouts <= 1 + elapsed_s / PAUSE_AFTER_FAILURE_S
        fault_figures.update(reads_while_stalled=5, limit_timeouts=timeouts, seconds_for_5_reads=round(elapsed_s, 2))
        link.resume()
