"""One Powertools Logger, Metrics and Tracer for the whole package.

The Tracer is created on first use, not at import. Creating it imports the X-Ray SDK, and outside
Lambda (tests, local runs, where Powertools disables tracing anyway) that import also builds an X-Ray
API client for sampling: the largest single cost of importing a handler. In Lambda the first traced
invocation creates it, or SnapStart's before-snapshot hook does (`wiring.preload_for_snapshot`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

SERVICE_NAME = "cross-chain-portfolio"
METRICS_NAMESPACE = "CrossChainPortfolio"


class InvocationMetricsProvider(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider, except that every flush (the end of each invocation, under
    log_metrics) empties the metric set, metrics disabled or not.

    With POWERTOOLS_METRICS_DISABLED (the local stack's default) Powertools keeps the set: each
    invocation's values then pile onto the earlier ones for the container's life (UsersRefreshed 2,
    4, 6 for three invocations of two users) and, once a metric holds 100 values, are printed all
    the same, as one running total.
    """

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)
        self.clear_metrics()


# POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the template win over these defaults.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
# The same sets Metrics shares between its instances, behind the provider above.
metrics.provider = InvocationMetricsProvider(
    namespace=METRICS_NAMESPACE,
    service=SERVICE_NAME,
    metric_set=metrics.metric_set,
    dimension_set=metrics.dimension_set,
    metadata_set=metrics.metadata_set,
    default_dimensions=metrics.default_dimensions,
)


@functools.cache
def powertools_tracer() -> Tracer:
    # Nothing is patched here: trace_aws_sdk_calls() patches botocore before the first AWS client is
    # built, so a path that never calls AWS never imports botocore. httpx is never patched: the coins
    # API's Pro key sits in its URL path, which an httpx subsegment would record.
    return Tracer(service=SERVICE_NAME, auto_patch=False)


class DeferredTracer:
    """Powertools' Tracer, created by whatever uses it first; every attribute is the Tracer's own.

    `capture_lambda_handler` runs when a handler module is imported, so it alone defers explicitly:
    the real Tracer wraps the handler on its first call.
    """

    def capture_lambda_handler(self, lambda_handler: Callable[..., Any] | None = None, **options: Any) -> Any:
        if lambda_handler is None:
            return functools.partial(self.capture_lambda_handler, **options)
        traced: Callable[..., Any] | None = None

        @functools.wraps(lambda_handler)
        def handler(event: Any, context: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if traced is None:
                traced = powertools_tracer().capture_lambda_handler(lambda_handler, **options)
            return traced(event, context, **kwargs)

        return handler

    def __getattr__(self, name: str) -> Any:
        return getattr(powertools_tracer(), name)


tracer = DeferredTracer()


def trace_aws_sdk_calls() -> None:
    """Record every botocore call as a subsegment from now on; a no-op while tracing is disabled."""
    powertools_tracer().patch(["botocore"])
