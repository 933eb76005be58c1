"""Tests drive the refresh queue with the local stack's poller: Lambda's SQS event source mapping."""

from local_stack.sqs_poller import PollResult, SqsPoller

__all__ = ["PollResult", "SqsPoller"]
