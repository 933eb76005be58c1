"""create_queues builds the template's queues on any SQS endpoint, redrive included (moto's server here)."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from local_stack.template_resources import create_queues


@pytest.fixture
def sqs_client(moto_endpoint: str):
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def queue_names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"RefreshQueue": f"refresh-{suffix}", "RefreshDeadLetterQueue": f"refresh-dlq-{suffix}"}


def _attributes(sqs_client, url: str) -> dict[str, str]:
    return sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _receive_without_deleting(sqs_client, url: str) -> list[dict]:
    # VisibilityTimeout=0: the message is visible again at once, as if the consumer had failed.
    return sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"]


def test_given_the_template_when_queues_are_created_then_the_refresh_queue_redrives_to_its_dlq(sqs_client, queue_names):
    urls = create_queues(sqs_client, queue_names)

    queue = _attributes(sqs_client, urls["RefreshQueue"])
    dead_letters = _attributes(sqs_client, urls["RefreshDeadLetterQueue"])
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": dead_letters["QueueArn"],
        "maxReceiveCount": 3,
    }
    assert queue["VisibilityTimeout"] == "420"
    assert dead_letters["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_given_created_queues_when_a_message_fails_max_receive_count_times_then_it_lands_in_the_dlq(
    sqs_client, queue_names
):
    # Given the template's queues with a redrive after one receive
    urls = create_queues(sqs_client, queue_names, parameters={"MaxReceiveCount": 1})
    sqs_client.send_message(QueueUrl=urls["RefreshQueue"], MessageBody='{"userIds": ["user-alice"]}')

    # When a consumer receives it and never deletes it, then receives again
    _receive_without_deleting(sqs_client, urls["RefreshQueue"])
    again = sqs_client.receive_message(QueueUrl=urls["RefreshQueue"], MaxNumberOfMessages=1)

    # Then the refresh queue no longer hands it out and the dead-letter queue holds it
    assert again.get("Messages", []) == []
    (dead,) = sqs_client.receive_message(QueueUrl=urls["RefreshDeadLetterQueue"], MaxNumberOfMessages=1)["Messages"]
    assert dead["Body"] == '{"userIds": ["user-alice"]}'


def test_given_only_the_refresh_queue_named_when_creating_then_it_refuses_without_its_dlq(sqs_client):
    with pytest.raises(ValueError, match="RefreshDeadLetterQueue"):
        create_queues(sqs_client, {"RefreshQueue": f"refresh-{uuid.uuid4().hex[:8]}"})
