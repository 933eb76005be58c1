"""The three Lambda handlers, imported from functions/ and invoked one at a time.

In AWS a container runs one invocation at a time, and the handlers rely on it: Powertools'
resolver keeps the current event on the app object, and Logger, Metrics and Tracer are shared
module state. Here all three functions share one process, so one lock serializes every
invocation. The environment must be set before `load_functions` imports them.
"""

from __future__ import annotations

import importlib
import sys
import threading
from dataclasses import dataclass
from typing import Any

from local_stack.config import REPOSITORY_ROOT
from local_stack.lambda_context import LocalLambdaContext
from local_stack.template_resources import load_template, resources_of_type

FUNCTIONS_DIR = REPOSITORY_ROOT / "functions"


@dataclass(frozen=True)
class FunctionLimits:
    timeout_s: int
    memory_mb: int


class LocalFunction:
    """One handler, callable as Lambda calls it; a fresh context per invocation."""

    def __init__(
        self, name: str, handler: Any, invocation_lock: threading.Lock, limits: FunctionLimits, *, region: str
    ) -> None:
        self.name = name
        self._handler = handler
        self._invocation_lock = invocation_lock
        self._limits = limits
        self._region = region

    def context(self) -> LocalLambdaContext:
        return LocalLambdaContext(
            function_name=self.name,
            timeout_s=self._limits.timeout_s,
            memory_limit_in_mb=self._limits.memory_mb,
            region=self._region,
        )

    def __call__(self, event: dict[str, Any], context: Any | None = None) -> Any:
        with self._invocation_lock:
            return self._handler(event, context or self.context())


@dataclass(frozen=True)
class Functions:
    api: LocalFunction
    refresh_scheduler: LocalFunction
    price_updater: LocalFunction


def _handler(module_name: str) -> Any:
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    return importlib.import_module(module_name).lambda_handler


def function_limits(template: dict[str, Any] | None = None) -> dict[str, FunctionLimits]:
    """Each function's Timeout and MemorySize, from its own properties or the template's Globals."""
    template = template or load_template()
    defaults = template.get("Globals", {}).get("Function", {})
    return {
        name: FunctionLimits(
            timeout_s=int(properties.get("Timeout", defaults.get("Timeout", 3))),
            memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
        )
        for name, properties in resources_of_type(template, "AWS::Serverless::Function").items()
    }


def load_functions(region: str, template: dict[str, Any] | None = None) -> Functions:
    """Import the three handlers, with the limits the template gives them (their contexts report them)."""
    limits = function_limits(template)
    lock = threading.Lock()

    def function(name: str, module_name: str, logical_name: str) -> LocalFunction:
        return LocalFunction(name, _handler(module_name), lock, limits[logical_name], region=region)

    return Functions(
        api=function("api", "api.app", "ApiFunction"),
        refresh_scheduler=function("refresh-scheduler", "refresh_scheduler.app", "RefreshSchedulerFunction"),
        price_updater=function("price-updater", "price_updater.app", "PriceUpdaterFunction"),
    )
