"""SendMessageBatch against moto's SQS: every message arrives, rejected entries are retried, never dropped."""

from __future__ import annotations

import json

import boto3
import pytest
from portfolio.adapters.refresh_queue import QueueEntry, RefreshQueue, SendFailedError

from tests.integration.refresh.flaky_sqs import flaky_sqs
from tests.integration.refresh.sqs_helpers import receive_all


def entries(count: int, *, marked: set[int] = frozenset()) -> list[QueueEntry]:
    return [
        QueueEntry(id=f"m{index}", body=json.dumps({"n": index, "tag": "reject-me" if index in marked else ""}))
        for index in range(count)
    ]


def proxied_client(url: str):
    return boto3.client("sqs", endpoint_url=url, region_name="us-east-1")


def no_sleep(_seconds: float) -> None:
    pass


@pytest.mark.parametrize("concurrency", [1, 4])
def test_given_35_entries_when_sent_then_all_arrive_in_4_calls(sqs_client, refresh_queues, concurrency):
    queue = RefreshQueue(sqs_client, refresh_queues.url, concurrency=concurrency)

    stats = queue.send_all(entries(35))

    assert (stats.messages, stats.calls, stats.retried_entries) == (35, 4, 0)
    assert sorted(json.loads(message["Body"])["n"] for message in receive_all(sqs_client, refresh_queues.url)) == list(
        range(35)
    )


def test_given_sqs_rejects_some_entries_twice_when_sent_then_they_are_retried_and_all_arrive_once(
    sqs_client, refresh_queues, moto_endpoint
):
    with flaky_sqs(moto_endpoint) as proxy:
        proxy.reject("reject-me", times=2, code="ThrottlingException")
        queue = RefreshQueue(proxied_client(proxy.url), refresh_queues.url, concurrency=1, sleep=no_sleep)

        stats = queue.send_all(entries(25, marked={3, 17, 24}))

    arrived = sorted(json.loads(message["Body"])["n"] for message in receive_all(sqs_client, refresh_queues.url))
    assert arrived == list(range(25))
    # 3 batches; the batches holding 3, 17 and 24 each need two more calls for their rejected entry.
    assert (stats.calls, stats.retried_entries) == (3 + 2 * 3, 2 * 3)


def test_given_sqs_keeps_rejecting_an_entry_when_sent_then_the_run_fails_naming_it(
    sqs_client, refresh_queues, moto_endpoint
):
    with flaky_sqs(moto_endpoint) as proxy:
        proxy.reject("reject-me", times=-1)
        queue = RefreshQueue(
            proxied_client(proxy.url), refresh_queues.url, concurrency=2, max_attempts=3, sleep=no_sleep
        )

        with pytest.raises(SendFailedError) as raised:
            queue.send_all(entries(30, marked={12}))

    assert [failure.id for failure in raised.value.failures] == ["m12"]
    assert proxy.rules[0].seen["m12"] == 3
