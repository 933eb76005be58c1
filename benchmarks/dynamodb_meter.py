"""What the benchmarks count of DynamoDB: a meter on one client.

The benchmarks run moto in a child process (local_stack.aws.MotoProcess), so the CPU it spends
answering is not charged to the process being measured (time.process_time counts every thread).

`DynamoDbMeter` hooks one boto3 client's events and counts, per operation:
- requests, from `before-parameter-build` (once per API call, before any retry);
- write units as items written: PutItem, UpdateItem and DeleteItem 1 each, BatchWriteItem its items,
  TransactWriteItems 2 per item (a transactional write costs twice). Items are assumed to be at most
  1 KB, so this is the floor of what DynamoDB bills;
- read units from the items each read returned, sized by DynamoDB's rules (attribute names plus
  values): GetItem and BatchGetItem ceil(size / 4 KB) per item, Query ceil(total size / 4 KB) per
  call; half of that for an eventually consistent read.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

READ_UNIT_BYTES = 4096
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
_CONSISTENT = "bench_consistent_read"


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value as DynamoDB sizes it (a parsed boto3 low-level value)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in inner)
    if kind == "NS":
        return sum(_number_size(member) for member in inner)
    if kind == "BS":
        return sum(len(member) for member in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(member) for member in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(member) for name, member in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def _read_units(size: int, consistent: bool) -> Decimal:
    units = Decimal(max(1, math.ceil(size / READ_UNIT_BYTES)))
    return units if consistent else units / 2


def _written_items(operation: str, params: Mapping[str, Any]) -> int:
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values())
    if operation == "TransactWriteItems":
        return 2 * len(params.get("TransactItems", []))
    return 1 if operation in WRITE_OPERATIONS else 0


class DynamoDbMeter:
    """Requests, write units and read units of one client, by operation (thread-safe)."""

    def __init__(self, client: Any) -> None:
        self.requests: Counter[str] = Counter()
        self.write_units: Counter[str] = Counter()
        self.read_units: dict[str, Decimal] = {}
        self.items_read = 0
        self._lock = threading.Lock()
        self._client = client
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def detach(self) -> None:
        """Stop counting (the counts so far stay readable)."""
        self._client.meta.events.unregister("before-parameter-build.dynamodb", self._before)
        self._client.meta.events.unregister("after-call.dynamodb", self._after)

    def _before(self, params: Mapping[str, Any], model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        operation = model.name
        if context is not None:
            if operation == "BatchGetItem":
                context[_CONSISTENT] = any(
                    request.get("ConsistentRead", False) for request in params.get("RequestItems", {}).values()
                )
            else:
                context[_CONSISTENT] = bool(params.get("ConsistentRead", False))
        with self._lock:
            self.requests[operation] += 1
            written = _written_items(operation, params)
            if written:
                self.write_units[operation] += written

    def _after(self, model: Any, parsed: Mapping[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        operation = model.name
        consistent = bool((context or {}).get(_CONSISTENT, False))
        if operation == "GetItem":
            items = [parsed["Item"]] if "Item" in parsed else []
            units = sum((_read_units(item_size(item), consistent) for item in items), Decimal(0))
        elif operation == "BatchGetItem":
            items = [item for found in parsed.get("Responses", {}).values() for item in found]
            units = sum((_read_units(item_size(item), consistent) for item in items), Decimal(0))
        elif operation == "Query":
            items = list(parsed.get("Items", []))
            units = _read_units(sum(item_size(item) for item in items), consistent)
        else:
            return
        with self._lock:
            self.read_units[operation] = self.read_units.get(operation, Decimal(0)) + units
            self.items_read += len(items)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.write_units.clear()
            self.read_units.clear()
            self.items_read = 0

    @property
    def total_requests(self) -> int:
        return self.requests.total()

    @property
    def total_write_units(self) -> int:
        return self.write_units.total()

    @property
    def total_read_units(self) -> Decimal:
        return sum(self.read_units.values(), Decimal(0))

    def snapshot(self) -> dict[str, Any]:
        """The counts so far, as JSON-ready numbers."""
        with self._lock:
            return {
                "requests_by_operation": dict(sorted(self.requests.items())),
                "write_units_by_operation": dict(sorted(self.write_units.items())),
                "read_units_by_operation": {name: float(units) for name, units in sorted(self.read_units.items())},
                "items_read": self.items_read,
            }
