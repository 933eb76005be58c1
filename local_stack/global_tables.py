"""What DynamoDB global tables do between replicas, for tables of one name in several regions of moto's server.

moto keeps each region's tables apart (the region comes from the request's signature) but does not
replicate between them; `GlobalTableReplicator` does, the way global tables in multi-region
eventual consistency (the default mode) behave:

- Every write to one replica (put, update, delete, a transaction's items) is applied to every
  other replica, item by item. Items written in one transaction are not replicated together: another
  region may see some of them before the others (`hold` delays chosen items to show it).
- Concurrent writes of one item in two regions are settled by last writer wins: DynamoDB keeps a
  private last-write timestamp on each item (the legacy 2017.11.29 version showed it as
  `aws:rep:updatetime`), and every replica ends with the write of the latest one. Here the timestamp
  is the stream record's ApproximateCreationDateTime, ties broken by region name, then by the order of
  the writing region's stream. A replica that took a write which lost gets the winning one back.
- A replicated write is an ordinary write in the receiving region: it appears on that replica's
  stream, which is what drives that region's cache invalidator.
- The replicator never replicates its own writes again. Each replica's stream is read in order; an
  image the replicator put into that replica (remembered until it comes back on that stream) is
  taken for the replicated write it is, anything else for a write made in that region.

The replicator adds no attribute to the items: the current version of global tables does not
either, so the application reads exactly what it would read in AWS.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_stack.aws import local_client

Keys = dict[str, Any]
Image = dict[str, Any] | None  # None: the item is absent (deleted, or never written)
KeyFilter = Callable[[Keys], bool]


@dataclass(frozen=True)
class Replica:
    """One region's table of the global table, and the clients that reach it and its stream."""

    region: str
    table_name: str
    dynamodb: Any
    streams: Any

    @classmethod
    def on(cls, endpoint: str, region: str, table_name: str) -> Replica:
        """The table `table_name` of `region` on the server at `endpoint` (moto's)."""
        return cls(
            region=region,
            table_name=table_name,
            dynamodb=local_client("dynamodb", endpoint, region),
            streams=local_client("dynamodbstreams", endpoint, region),
        )

    def stream_arn(self) -> str:
        table = self.dynamodb.describe_table(TableName=self.table_name)["Table"]
        arn = table.get("LatestStreamArn")
        if not arn:
            raise ValueError(f"{self.table_name} in {self.region} has no stream: global tables replicate through it")
        return str(arn)


@dataclass
class ReplicationResult:
    """What one pass did, over every replica's stream."""

    local_writes: int = 0  # writes made in a region (not by replication), read from its stream
    applied: int = 0  # writes the replicator made to replicas
    superseded: int = 0  # local writes that lost to a later write of the same item elsewhere
    held: int = 0  # applies waiting for release()

    def add(self, other: ReplicationResult) -> None:
        self.local_writes += other.local_writes
        self.applied += other.applied
        self.superseded += other.superseded
        self.held = other.held


@dataclass(frozen=True, order=True)
class _Stamp:
    """Last writer wins: the latest write time; ties by region, then by the order of that region's stream."""

    time: float
    region: str
    sequence: int


@dataclass(frozen=True)
class _Write:
    stamp: _Stamp
    image: Image


@dataclass
class _Shard:
    iterator: str | None


@dataclass
class _StreamReader:
    """Every shard of one replica's stream, read in order from its start (or from now)."""

    replica: Replica
    from_start: bool
    arn: str = ""
    shards: dict[str, _Shard] = field(default_factory=dict)

    def read(self, max_calls_per_shard: int = 20) -> list[dict[str, Any]]:
        if not self.arn:
            self.arn = self.replica.stream_arn()
        self._discover()
        records: list[dict[str, Any]] = []
        for shard in self.shards.values():
            for _ in range(max_calls_per_shard):
                if shard.iterator is None:
                    break
                answer = self.replica.streams.get_records(ShardIterator=shard.iterator)
                shard.iterator = answer.get("NextShardIterator")
                records += answer["Records"]
                if not answer["Records"]:
                    break
        return records

    def _discover(self) -> None:
        description = self.replica.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]
        for shard in description["Shards"]:
            if shard["ShardId"] in self.shards:
                continue
            iterator = self.replica.streams.get_shard_iterator(
                StreamArn=self.arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON" if self.from_start else "LATEST",
            )["ShardIterator"]
            self.shards[shard["ShardId"]] = _Shard(iterator)


class GlobalTableReplicator:
    """Replicates the writes of each replica to the others; `replicate_once` is one pass over every stream.

    `from_start` (the default) replicates what the tables hold already, from the start of their
    streams: a new replica of a global table gets the table's items. Thread-safe: one pass at a time.
    """

    def __init__(self, replicas: Sequence[Replica], *, from_start: bool = True) -> None:
        regions = [replica.region for replica in replicas]
        if len(replicas) < 2 or len(set(regions)) != len(regions):
            raise ValueError(f"a global table has replicas in two or more distinct regions, not {regions}")
        self._replicas = {replica.region: replica for replica in replicas}
        self._readers = [_StreamReader(replica, from_start) for replica in replicas]
        self._lock = threading.Lock()
        self._winners: dict[str, _Write] = {}  # item -> the write every replica must end with
        self._keys: dict[str, Keys] = {}  # item -> its key attributes
        self._contents: dict[tuple[str, str], Image] = {}  # (region, item) -> the image its stream last showed
        self._in_flight: dict[tuple[str, str], deque[Image]] = {}  # applied, not yet back on that stream
        self._held: set[tuple[str, str]] = set()  # (region, item) due an apply, waiting for release()
        self._failed: set[tuple[str, str]] = set()  # (region, item) whose apply failed: tried again next pass
        self._hold: KeyFilter | None = None

    @property
    def regions(self) -> list[str]:
        return list(self._replicas)

    def replicate_once(self) -> ReplicationResult:
        """Read what is new on every replica's stream and bring the other replicas up to it."""
        with self._lock:
            result = ReplicationResult()
            failed, self._failed = self._failed, set()
            for region, item in sorted(failed):
                self._converge(region, item, result)
            for reader in self._readers:
                for record in reader.read():
                    self._observe(reader.replica.region, record, result)
            result.held = len(self._held)
            return result

    def hold(self, keys: KeyFilter) -> None:
        """From now on, the items whose keys `keys` accepts reach no other replica until `release()`:
        a write replicated later than the writes made with it (global tables promise no order)."""
        with self._lock:
            self._hold = keys

    def release(self) -> ReplicationResult:
        """Stop holding; the held items reach the other replicas now."""
        with self._lock:
            self._hold = None
            result = ReplicationResult()
            held, self._held = self._held, set()
            for region, item in sorted(held):
                self._converge(region, item, result)
            return result

    def converged(self) -> bool:
        """Every replica shows every item's winning write on its stream, and nothing is held or in flight."""
        with self._lock:
            if self._held or self._failed or any(self._in_flight.values()):
                return False
            return all(
                self._contents.get((region, item)) == write.image
                for item, write in self._winners.items()
                for region in self._replicas
            )

    # Internals

    def _observe(self, region: str, record: dict[str, Any], result: ReplicationResult) -> None:
        stream = record["dynamodb"]
        keys: Keys = stream["Keys"]
        item = _item_id(keys)
        self._keys[item] = keys
        image: Image = None if record["eventName"] == "REMOVE" else stream["NewImage"]
        in_flight = self._in_flight.get((region, item))
        if in_flight and in_flight[0] == image:
            in_flight.popleft()  # the replicator's own write, back on this replica's stream
        else:
            result.local_writes += 1
            write = _Write(_Stamp(_epoch_seconds(stream), region, int(stream["SequenceNumber"])), image)
            current = self._winners.get(item)
            if current is None or write.stamp > current.stamp:
                self._winners[item] = write
            else:
                result.superseded += 1
        self._contents[(region, item)] = image
        for other in self._replicas:
            self._converge(other, item, result)

    def _converge(self, region: str, item: str, result: ReplicationResult) -> None:
        """Put the winning write into `region` unless its stream shows it already or an apply is on its way
        (when that apply comes back, this is checked again)."""
        winner = self._winners.get(item)
        if winner is None or self._contents.get((region, item)) == winner.image:
            return
        if self._in_flight.get((region, item)):
            return
        if self._hold is not None and self._hold(self._keys[item]):
            self._held.add((region, item))
            return
        if self._apply(region, item, winner.image):
            result.applied += 1
        else:
            self._failed.add((region, item))

    def _apply(self, region: str, item: str, image: Image) -> bool:
        replica = self._replicas[region]
        in_flight = self._in_flight.setdefault((region, item), deque())
        in_flight.append(image)
        try:
            if image is None:
                replica.dynamodb.delete_item(TableName=replica.table_name, Key=self._keys[item])
            else:
                replica.dynamodb.put_item(TableName=replica.table_name, Item=image)
        except (BotoCoreError, ClientError):
            # Whether it landed is unknown: if it did, its record comes back as a write of that region
            # with this image, which changes nothing.
            in_flight.pop()
            return False
        return True


class ReplicatorThread(threading.Thread):
    """Runs `replicate_once` every `interval_s` seconds until stop(); errors are reported, not fatal."""

    def __init__(
        self,
        replicator: GlobalTableReplicator,
        *,
        interval_s: float,
        on_result: Callable[[ReplicationResult], None] = lambda _result: None,
        on_error: Callable[[BaseException], None] = lambda _error: None,
    ) -> None:
        super().__init__(name="global-table-replicator", daemon=True)
        self._replicator = replicator
        self._interval_s = interval_s
        self._on_result = on_result
        self._on_error = on_error
        self._stop_requested = threading.Event()

    def run(self) -> None:
        while not self._stop_requested.wait(self._interval_s):
            try:
                self._on_result(self._replicator.replicate_once())
            except Exception as error:  # moto busy or restarting: the next pass reads from where this one stopped
                self._on_error(error)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout=timeout_s)


def replicas_of(endpoint: str, table_name: str, regions: Iterable[str]) -> list[Replica]:
    return [Replica.on(endpoint, region, table_name) for region in regions]


def _item_id(keys: Keys) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


def _epoch_seconds(stream: dict[str, Any]) -> float:
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created.timestamp()
    return float(created or 0)
