"""Redis killed while portfolios are read through the API handler, then started again on the same port."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
from portfolio import wiring

from local_stack.embedded_redis import RedisServer
from local_stack.functions import load_handler
from local_stack.stream_poller import StreamPoller
from local_stack.template_resources import create_tables
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import buy, call_api, random_address, total_value
from tests.support.tcp_proxy import TcpProxy

READS_WHILE_DOWN = 20


def count_dynamodb_calls() -> list[str]:
    operations: list[str] = []
    wiring.dynamodb_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: operations.append(event_name.rsplit(".", 1)[-1])
    )
    return operations


def test_given_redis_is_killed_when_portfolios_are_read_then_dynamodb_serves_them_and_hits_resume_after_restart(
    function_env: FunctionEnv, own_redis: RedisServer, coins_api: Any, user_id: str, fault_figures: dict
) -> None:
    # Given: a portfolio recorded through the API, and its summary cached in our own Redis
    function_env(REDIS_URL=own_redis.url)
    token = random_address()
    coins_api.set_price(f"ethereum:{token}", "25")
    recorded = call_api(
        "POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("t-1", token, "4", price="20")
    )
    assert recorded.status == 201
    first_read = call_api("GET", f"/portfolios/{user_id}", sub=user_id)
    assert first_read.status == 200 and total_value(first_read.json) == 100
    cache = wiring.portfolio_cache()
    hits_before = cache.stats().hits
    assert call_api("GET", f"/portfolios/{user_id}", sub=user_id).raw_body == first_read.raw_body
    assert cache.stats().hits == hits_before + 1
    dynamodb_calls = count_dynamodb_calls()

    # When: the Redis process dies, and reads keep coming to the same (warm) handler
    own_redis.kill()
    reads_while_down = [call_api("GET", f"/portfolios/{user_id}", sub=user_id) for _ in range(READS_WHILE_DOWN)]

    # Then: every read answers 200 with the same portfolio, each from one DynamoDB read of its positions
    # (the price comes from the container's memory tier)
    assert [read.status for read in reads_while_down] == [200] * READS_WHILE_DOWN
    assert {total_value(read.json) for read in reads_while_down} == {total_value(first_read.json)}
    assert dynamodb_calls == ["GetItem"] * READS_WHILE_DOWN
    errors_while_down = cache.stats().errors
    assert errors_while_down >= READS_WHILE_DOWN

    # When: Redis comes back, empty, on the same port; the handler is not restarted (same wiring)
    own_redis.start()
    dynamodb_calls.clear()
    hits_before_restart = cache.stats().hits
    refill = call_api("GET", f"/portfolios/{user_id}", sub=user_id)
    after = [call_api("GET", f"/portfolios/{user_id}", sub=user_id) for _ in range(5)]

    # Then: the first read refills the cache, the next ones are hits again
    assert refill.status == 200 and total_value(refill.json) == 100
    assert [read.status for read in after] == [200] * 5
    assert dynamodb_calls == ["GetItem"]
    assert cache.stats().hits == hits_before_restart + 5
    assert cache.stats().errors == errors_while_down
    assert wiring.portfolio_cache() is cache
    fault_figures.update(
        reads_while_down=READS_WHILE_DOWN,
        dynamodb_reads_while_down=READS_WHILE_DOWN,
        cache_errors_while_down=errors_while_down,
        hits_after_restart=5,
    )


def test_given_redis_is_killed_when_a_transaction_is_posted_then_it_is_stored_and_the_next_read_shows_it(
    function_env: FunctionEnv, own_redis: RedisServer, coins_api: Any, user_id: str
) -> None:
    # Given: a cached portfolio
    function_env(REDIS_URL=own_redis.url)
    token = random_address()
    coins_api.set_price(f"ethereum:{token}", "25")
    path = f"/portfolios/{user_id}/transactions"
    assert call_api("POST", path, sub=user_id, body=buy("t-1", token, "4")).status == 201
    assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 100

    # When: Redis dies and a second buy is posted
    own_redis.kill()
    posted = call_api("POST", path, sub=user_id, body=buy("t-2", token, "1"))

    # Then: the write succeeds without the cache, and reads (with or without Redis) show it
    assert posted.status == 201
    assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 125
    own_redis.start()
    assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 125


def test_given_redis_is_unreachable_while_a_transaction_is_posted_when_it_is_reachable_again_then_reads_show_it(
    function_env: FunctionEnv,
    own_redis: RedisServer,
    coins_api: Any,
    user_id: str,
    dynamodb_client: Any,
    fault_figures: dict,
) -> None:
    # Given: a cached portfolio, the handlers reaching Redis through a link that can be cut, and a
    # table of its own whose stream is delivered to the cache invalidator as Lambda's mapping does
    table = f"portfolio-streamed-{uuid.uuid4().hex[:8]}"
    create_tables(dynamodb_client, {"PortfolioTable": table}, streams=True)
    with TcpProxy(target_port=own_redis.port) as link:
        settings = function_env(REDIS_URL=f"redis://127.0.0.1:{link.port}/0", TABLE_NAME=table)
        stream_arn = dynamodb_client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        streams = boto3.client(
            "dynamodbstreams", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region
        )
        stream = StreamPoller(streams, stream_arn, load_handler("CacheInvalidatorFunction"), region=settings.aws_region)
        token = random_address()
        coins_api.set_price(f"ethereum:{token}", "25")
        path = f"/portfolios/{user_id}/transactions"
        assert call_api("POST", path, sub=user_id, body=buy("t-1", token, "4")).status == 201
        assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 100
        stream.poll_once()

        # When: the link is cut (Redis keeps its data), a buy is posted, the stream's delivery of its
        # commit fails, and the link heals
        link.cut()
        assert call_api("POST", path, sub=user_id, body=buy("t-2", token, "1")).status == 201
        during = stream.poll_once()
        link.resume()
        after = stream.poll_once()

        # Then: the delivery is retried once Redis answers, and the read after the heal shows the buy
        assert during.failed >= 1
        assert after.failed == 0 and after.delivered >= 1
        assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 125
        fault_figures["stream records failed while cut"] = during.failed
        fault_figures["stream records delivered after the heal"] = after.delivered
