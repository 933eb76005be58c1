"""Only for benchmarks/ until they use local_stack.lambda_context.LocalLambdaContext directly."""

from __future__ import annotations

from local_stack.lambda_context import LocalLambdaContext


def LambdaContext(
    *, timeout_ms: int = 30_000, function_name: str = "test-function", **fields: str
) -> LocalLambdaContext:
    return LocalLambdaContext(function_name, timeout_s=timeout_ms / 1000, **fields)  # type: ignore[arg-type]
