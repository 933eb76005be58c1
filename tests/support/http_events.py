"""Only for benchmarks/ until they import local_stack.http_events, where these live."""

from __future__ import annotations

from local_stack.http_events import SAMPLE_BEARER_TOKEN, http_event

__all__ = ["SAMPLE_BEARER_TOKEN", "http_event"]
