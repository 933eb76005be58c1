"""What Lambda's DynamoDB stream event source mapping does, for a table on this machine.

Read each shard of the table's stream from where the poller started (StartingPosition LATEST),
keep the records the mapping's filter lets through (its FilterCriteria, read from template.yaml so
the two never differ), and hand them to the handler in the event shape Lambda uses. With
ReportBatchItemFailures, a record the handler names (and every later one of its shard) is delivered
again on the next poll, up to `max_attempts` times; then it is given up, as Lambda hands it to the
failure destination.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_stack.lambda_context import LocalLambdaContext
from local_stack.template_resources import load_template, resources_of_type

Handler = Callable[[dict[str, Any], Any], Any]
RecordFilter = Callable[[dict[str, Any]], bool]
CACHE_INVALIDATOR_FUNCTION = "CacheInvalidatorFunction"


@dataclass
class StreamPollResult:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0


@dataclass
class _Shard:
    iterator: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)  # delivered, failed: to deliver again
    attempts: int = 0


class StreamPoller:
    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        handler: Handler,
        *,
        region: str,
        max_attempts: int = 100,
        context_factory: Callable[[], Any] | None = None,
        record_filter: RecordFilter | None = None,
    ) -> None:
        """`record_filter`: which records reach the handler; the cache invalidator's FilterCriteria by default."""
        self._streams = streams_client
        self._passes_filter = record_filter or template_stream_filter(CACHE_INVALIDATOR_FUNCTION)
        self._arn = stream_arn
        self._handler = handler
        self._region = region
        self._max_attempts = max_attempts
        self._context_factory = context_factory or (lambda: LocalLambdaContext("cache-invalidator"))
        self._lock = threading.Lock()
        self._shards: dict[str, _Shard] = {}
        self._discover()

    def _discover(self) -> None:
        description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
        for shard in description["Shards"]:
            if shard["ShardId"] not in self._shards:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
                )["ShardIterator"]
                self._shards[shard["ShardId"]] = _Shard(iterator)

    def poll_once(self) -> StreamPollResult:
        """One delivery per shard of what is new (after what failed last time)."""
        result = StreamPollResult()
        with self._lock:
            self._discover()
            for shard in self._shards.values():
                self._deliver(shard, result)
        return result

    def _deliver(self, shard: _Shard, result: StreamPollResult) -> None:
        if shard.iterator is not None:
            answer = self._streams.get_records(ShardIterator=shard.iterator)
            shard.iterator = answer.get("NextShardIterator")
            shard.pending += [
                self._lambda_record(record) for record in answer["Records"] if self._passes_filter(record)
            ]
        if not shard.pending:
            return
        batch, shard.pending = shard.pending, []
        response = self._handler({"Records": batch}, self._context_factory()) or {}
        failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        result.delivered += len(batch)
        if not failed:
            shard.attempts = 0
            return
        first = min(index for index, record in enumerate(batch) if record["dynamodb"]["SequenceNumber"] in failed)
        result.failed += len(batch) - first
        shard.attempts += 1
        if shard.attempts >= self._max_attempts:
            result.given_up += len(batch) - first
            shard.attempts = 0
            return
        shard.pending = batch[first:]

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        stream = dict(record["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            stream["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            **record,
            "eventVersion": "1.1",
            "awsRegion": self._region,
            "dynamodb": stream,
            "eventSourceARN": self._arn,
        }


def template_stream_filter(function: str, template: dict[str, Any] | None = None) -> RecordFilter:
    """The FilterCriteria of the function's DynamoDB event in the template: a record passes when it
    matches any of its patterns; every record passes when there are none."""
    template = template or load_template()
    events = resources_of_type(template, "AWS::Serverless::Function")[function].get("Events", {})
    streams = [event["Properties"] for event in events.values() if event.get("Type") == "DynamoDB"]
    if len(streams) != 1:
        raise ValueError(f"{function} has {len(streams)} DynamoDB events in the template, not one")
    filters = (streams[0].get("FilterCriteria") or {}).get("Filters") or []
    patterns = [json.loads(entry["Pattern"]) for entry in filters]
    return lambda record: not patterns or any(matches_pattern(pattern, record) for pattern in patterns)


def matches_pattern(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Lambda's event filtering: every field of the pattern must match; a field's list matches when
    one of its entries does (a value equal to the record's, or a `prefix` / `exists` rule)."""
    for name, wanted in pattern.items():
        present = name in record
        value = record.get(name)
        if isinstance(wanted, Mapping):
            if not isinstance(value, Mapping) or not matches_pattern(wanted, value):
                return False
        elif isinstance(wanted, Sequence) and not isinstance(wanted, str):
            if not any(_matches_rule(rule, present, value) for rule in wanted):
                return False
        else:
            raise ValueError(f"a filter pattern field holds an object or a list, not {wanted!r}")
    return True


def _matches_rule(rule: Any, present: bool, value: Any) -> bool:
    if not isinstance(rule, Mapping):
        return present and value == rule
    if set(rule) == {"prefix"}:
        return present and isinstance(value, str) and value.startswith(rule["prefix"])
    if set(rule) == {"exists"}:
        return present is bool(rule["exists"])
    # Better refused than read as "anything passes": the local filter must be the deployed one.
    raise ValueError(f"filter rule {rule!r} is not supported locally")
