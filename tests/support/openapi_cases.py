"""Requests generated from the OpenAPI document, one pytest item per operation.

schemathesis' own `schema.parametrize()` runs every operation as a sub-test of one item, and under
the test workers of `make test` only the first of them ran. Here each operation is a plain
parametrized item: the document's examples are sent first, then generated cases (positive, and
negative where asked for), all through hypothesis with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode


def operations_of(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def send_generated(
    operation: Any,
    send: Callable[[Any], None],
    *,
    max_examples: int,
    modes: Iterable[GenerationMode] = (GenerationMode.POSITIVE,),
    **strategy_options: Any,
) -> None:
    """`send(case)` for each of the operation's documented examples, then for `max_examples` generated cases."""
    examples = operation.get_strategies_from_examples()
    if examples:
        _cases(st.one_of(examples), 2 * len(examples), send)
    generated = [operation.as_strategy(generation_mode=mode, **strategy_options) for mode in modes]
    _cases(st.one_of(generated), max_examples, send)


def _cases(strategy: Any, max_examples: int, send: Callable[[Any], None]) -> None:
    run = settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )(given(case=strategy)(send))
    run()
