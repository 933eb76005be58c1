"""Only for benchmarks/ until they use local_stack.coins_api: tests use CoinsApiServer(prices={}) directly."""

from __future__ import annotations

from typing import Any

from local_stack.coins_api import CoinsApiServer


class FakeCoinsApi(CoinsApiServer):
    """The local stack's coins API server, starting with an empty price book."""

    def __init__(self, **options: Any) -> None:
        super().__init__(prices={}, **options)
