"""What the local stack stands up besides the API: offline prices, a Redis, AWS on moto, the SQS poller."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import boto3
import httpx
import pytest
import redis
from portfolio.adapters.coins_api import make_coins_api
from portfolio.domain.prices import PriceSource
from portfolio.domain.tokens import normalize_token
from portfolio.settings import Settings

from local_stack.aws import MotoStack
from local_stack.coins_api import CoinsApiServer, load_recorded_prices
from local_stack.embedded_redis import RedisKind, start_redis
from local_stack.sqs_poller import SqsPoller
from local_stack.template_resources import create_queues

TOKEN_REGISTRY = Path(__file__).resolve().parents[2] / "layers/shared/portfolio/domain/token_registry.json"
FROZEN_NOW = 1_736_944_205


def test_the_recorded_set_prices_every_token_of_the_registry():
    # Given the token registry and the recorded prices
    recorded = load_recorded_prices()
    registry = json.loads(TOKEN_REGISTRY.read_text())["tokens"]

    # When each registry token is turned into the id the price service asks DeFiLlama for
    unpriced = [
        f"{entry['chain']}:{entry['symbol']}"
        for entry in registry
        if normalize_token(entry["chain"], entry["address"]).price_coin_id not in recorded
    ]

    # Then the offline mode prices all of them
    assert unpriced == []


@pytest.fixture
def offline_prices():
    server = CoinsApiServer(clock=lambda: FROZEN_NOW).start()
    yield server
    server.stop()


def test_the_offline_server_answers_the_projects_coins_client_like_defillama(offline_prices):
    # Given the project's own coins API client pointed at the offline server
    client = make_coins_api(Settings(PRICES_API_URL=offline_prices.url, PRICE_MAX_ATTEMPTS=1))
    weth = "ethereum:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    unknown = "ethereum:0x000000000000000000000000000000000000dead"

    # When it asks for a native, a token and a coin the set does not hold
    result = client.fetch_current(["coingecko:ethereum", weth, unknown])
    client.close()

    # Then the known ones come back exact, stamped now, and the unknown one is simply absent
    assert result.ok
    assert set(result.quotes) == {"coingecko:ethereum", weth}
    assert result.quotes["coingecko:ethereum"].price == Decimal("3350.42")
    assert result.quotes[weth].price == Decimal("3349.87")
    assert result.quotes[weth].decimals == 18
    assert result.quotes[weth].symbol == "WETH"
    assert result.quotes[weth].source is PriceSource.FRESH
    assert int(result.quotes[weth].timestamp.timestamp()) == FROZEN_NOW


def test_prices_with_many_digits_are_served_digit_for_digit(offline_prices):
    client = make_coins_api(Settings(PRICES_API_URL=offline_prices.url, PRICE_MAX_ATTEMPTS=1))
    pepe = "ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933"

    result = client.fetch_current([pepe])
    client.close()

    assert result.quotes[pepe].price == Decimal("0.00001834")


def test_paths_it_does_not_serve_are_404(offline_prices):
    response = httpx.get(f"{offline_prices.url}/percentage/coingecko:ethereum")

    assert response.status_code == 404


def test_a_configured_redis_is_used_as_it_is(redis_url):
    local = start_redis(redis_url)

    assert local.kind is RedisKind.CONFIGURED
    assert local.url == redis_url
    assert not local.embedded
    local.stop()  # stopping leaves someone else's Redis alone
    assert redis.Redis.from_url(redis_url, socket_timeout=1).ping()


@pytest.mark.parametrize(
    ("find_executable", "kind"),
    [
        (None, RedisKind.REDIS_SERVER),  # the installed binary
        (lambda: None, RedisKind.FAKEREDIS),  # no binary: fakeredis' TCP server
    ],
    ids=["redis-server", "fakeredis"],
)
def test_without_redis_url_an_embedded_redis_serves_until_stopped(find_executable, kind):
    # Given no REDIS_URL
    local = start_redis(None, **({"find_executable": find_executable} if find_executable else {}))
    client = redis.Redis.from_url(local.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        # Then an embedded Redis of the expected kind answers real commands
        assert local.kind is kind
        assert local.embedded
        client.set("local-stack-check", "1")
        assert client.get("local-stack-check") == b"1"
    finally:
        local.stop()

    # And after stop nothing listens there any more
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_moto_gets_the_templates_tables_queues_and_event_bus():
    # Given the AWS part of the local stack
    moto = MotoStack(region="us-east-1", stage=f"t{uuid.uuid4().hex[:6]}")
    aws = moto.start()
    try:
        dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")

        # Then the portfolio table has the template's indexes
        table = dynamodb.describe_table(TableName=aws.table_names["PortfolioTable"])["Table"]
        assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {"UsersByShard"}
        assert {index["IndexName"] for index in table["LocalSecondaryIndexes"]} == {"TransactionsByTime"}
        # And the refresh queue sends what fails too often to its dead-letter queue
        attributes = sqs.get_queue_attributes(QueueUrl=aws.queue_urls["RefreshQueue"], AttributeNames=["All"])
        dead_letter_arn = sqs.get_queue_attributes(
            QueueUrl=aws.queue_urls["RefreshDeadLetterQueue"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        assert json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"] == dead_letter_arn
        # And fired alerts have the template's bus to go to, named for the stage
        bus = aws.event_bus_names["AlertEventBus"]
        assert bus.endswith("-AlertEventBus")
        assert aws.client("events").describe_event_bus(Name=bus)["Name"] == bus
    finally:
        moto.stop()


@pytest.fixture
def refresh_queue_url(moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    urls = create_queues(sqs, {"RefreshQueue": f"refresh-{suffix}", "RefreshDeadLetterQueue": f"refresh-dlq-{suffix}"})
    return sqs, urls["RefreshQueue"]


def _visible_and_in_flight(sqs, queue_url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_poller_deletes_what_succeeded_and_keeps_what_the_handler_reported_failed(refresh_queue_url):
    # Given three messages and a handler that fails the one saying "bad"
    sqs, queue_url = refresh_queue_url
    for body in ("good-1", "bad", "good-2"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    seen_events = []

    def handler(event, context):
        seen_events.append(event)
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]} for record in event["Records"] if record["body"] == "bad"
            ]
        }

    # When the poller drains the queue
    results = SqsPoller(sqs, queue_url, handler).drain()

    # Then the handler saw Lambda's SQS records
    records = [record for event in seen_events for record in event["Records"]]
    assert sorted(record["body"] for record in records) == ["bad", "good-1", "good-2"]
    record = records[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(queue_url.rsplit("/", 1)[-1])
    assert record["awsRegion"] == "us-east-1"
    assert {"messageId", "receiptHandle", "md5OfBody", "messageAttributes"} <= set(record)
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in record["attributes"]
    # And only the failed one is left, invisible until its visibility timeout ends
    assert sum(len(result.deleted) for result in results) == 2
    assert sum(len(result.failed) for result in results) == 1
    assert _visible_and_in_flight(sqs, queue_url) == (0, 1)


def test_when_the_handler_raises_nothing_is_deleted(refresh_queue_url):
    sqs, queue_url = refresh_queue_url
    sqs.send_message(QueueUrl=queue_url, MessageBody="any")

    def crashing_handler(event, context):
        raise RuntimeError("updater crashed")

    result = SqsPoller(sqs, queue_url, crashing_handler).poll_once()

    assert isinstance(result.handler_error, RuntimeError)
    assert result.deleted == []
    assert _visible_and_in_flight(sqs, queue_url) == (0, 1)
