"""JSON-RPC 2.0 over HTTP, batched, for chain nodes (EVM and Solana speak the same envelope).

One `call_batch` is one HTTP request carrying many calls; the answer is matched back by id, since a
node may answer a batch in any order. A whole request that fails (connection refused, timeout, 429,
5xx) is retried under the adapters' RetryPolicy, honouring Retry-After, never past a deadline; it
then raises RpcUnavailableError. A call the node answered with an error object is not retried here:
it comes back as an RpcError in its slot, so one bad call never hides the others' results.

Node URLs carry provider keys (`https://eth-mainnet.example/v2/<key>`): no URL, and no text that
could hold one, reaches a log line or an error message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from portfolio.adapters.coins_api import parse_retry_after
from portfolio.adapters.retry import RetryPolicy
from portfolio.observability import logger

_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RpcCall:
    method: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class RpcError:
    """The error object a node answered one call with."""

    code: int
    message: str


class RpcUnavailableError(Exception):
    """The node could not be asked at all (or its answer was not JSON-RPC); the text holds no URL."""


class RpcOutOfTimeError(RpcUnavailableError):
    """The caller's deadline came before the node could be asked: nothing is known of the node."""


class JsonRpcClient:
    """Batched JSON-RPC calls over one reused httpx.Client (safe to share across threads)."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        *,
        retry: RetryPolicy,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._url = url
        self._retry = retry
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._clock = clock
        self.requests_sent = 0

    def __repr__(self) -> str:
        return "JsonRpcClient(url=***)"

    def call_batch(self, calls: Sequence[RpcCall], *, deadline: float | None = None) -> list[Any | RpcError]:
        """Results in the order of `calls`; a call the node refused stands as its RpcError."""
        if not calls:
            return []
        body = [
            {"jsonrpc": "2.0", "id": index, "method": call.method, "params": call.params}
            for index, call in enumerate(calls)
        ]
        payload = json.dumps(body, separators=(",", ":")).encode()
        failures = 0
        while (timeout := self._timeout_before(deadline)) is not None:
            self.requests_sent += 1
            retry_after: float | None = None
            try:
                response = self._client.post(
                    self._url, content=payload, headers={"Content-Type": "application/json"}, timeout=timeout
                )
            except httpx.TransportError as error:
                problem = f"node unreachable ({type(error).__name__})"
                if (
                    isinstance(error, httpx.TimeoutException)
                    and timeout.read is not None
                    and (timeout.read < self._read_timeout_s)
                ):
                    # Cut short by the caller's deadline: the node may only be slower than the time left.
                    raise RpcOutOfTimeError(f"{problem} within the time left") from None
            else:
                if response.status_code == 200:
                    return _match(response.content, len(calls))
                problem = f"node answered HTTP {response.status_code}"
                if response.status_code not in _RETRYABLE_STATUSES:
                    raise RpcUnavailableError(problem)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            failures += 1
            delay = self._retry.delay(failures, retry_after=retry_after, deadline=deadline)
            if delay is None:
                raise RpcUnavailableError(f"{problem}; gave up after {failures} attempt(s)")
            logger.warning("node request failed; retrying", extra={"problem": problem, "attempt": failures})
            self._retry.sleep(delay)
        raise RpcOutOfTimeError("no time left to ask the node")

    def _timeout_before(self, deadline: float | None) -> httpx.Timeout | None:
        remaining = None if deadline is None else deadline - self._clock()
        if remaining is not None and remaining <= 0:
            return None
        connect = self._connect_timeout_s if remaining is None else min(self._connect_timeout_s, remaining)
        read = self._read_timeout_s if remaining is None else min(self._read_timeout_s, remaining)
        return httpx.Timeout(connect=connect, read=read, write=connect, pool=connect)


def _match(content: bytes, count: int) -> list[Any | RpcError]:
    try:
        answer = json.loads(content)
    except ValueError:
        raise RpcUnavailableError("node answered something that is not JSON") from None
    if isinstance(answer, dict):
        # A node that refuses a whole batch answers one error object instead of a list.
        refusal = answer.get("error")
        reason = refusal.get("message", "no reason given") if isinstance(refusal, dict) else "no reason given"
        raise RpcUnavailableError(f"node refused the batch: {str(reason)[:200]}")
    if not isinstance(answer, list):
        raise RpcUnavailableError("node answered a batch with something other than a list")
    results: dict[int, Any | RpcError] = {}
    for entry in answer:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
            continue
        if isinstance(entry.get("error"), dict):
            error = entry["error"]
            code = error.get("code")
            results[entry["id"]] = RpcError(code if isinstance(code, int) else 0, str(error.get("message", ""))[:300])
        elif "result" in entry:
            results[entry["id"]] = entry["result"]
    missing = RpcError(-32099, "the node left this call out of its answer")
    return [results.get(index, missing) for index in range(count)]
