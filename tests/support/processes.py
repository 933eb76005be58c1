"""Only for benchmarks/ until they import local_stack.embedded_redis and local_stack.ports, where these live."""

from __future__ import annotations

from local_stack.embedded_redis import RedisServer
from local_stack.ports import free_port, wait_for_port

__all__ = ["RedisServer", "free_port", "wait_for_port"]
