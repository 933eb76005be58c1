"""Cold start: importing a handler loads no X-Ray SDK (the API no boto3 either); in Lambda, tracing is
unchanged: the handler is traced, botocore is patched before the first AWS client, httpx never.

Each case runs in a fresh interpreter, as Lambda's init does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_stack.functions import handler_locations

ROOT = Path(__file__).resolve().parents[2]
# The module Lambda imports for each function (the template's CodeUri and Handler), as the local stack loads it.
LOCATIONS = handler_locations()
HANDLERS = tuple(sorted(location.module for location in LOCATIONS.values()))
API = LOCATIONS["ApiFunction"]

_IMPORTED = """
import json, sys
sys.path[:0] = [{functions!r}, {root!r}]
import {module}
print(json.dumps([name for name in ("aws_xray_sdk.core", "boto3") if name in sys.modules]))
"""

_TRACED_IN_LAMBDA = """
import json, sys
sys.path[:0] = [{functions!r}, {root!r}]
import importlib
handler = getattr(importlib.import_module({module!r}), {attribute!r})

observed = {{"at_import": "aws_xray_sdk.core" in sys.modules}}
from aws_xray_sdk.core import patcher
from portfolio import observability, wiring
from local_stack.lambda_context import LocalLambdaContext

event = json.loads(open({health_event!r}).read())
observed["health_status"] = handler(event, LocalLambdaContext("api"))["statusCode"]
observed["tracing"] = not observability.powertools_tracer().disabled
observed["patched_after_health"] = sorted(patcher._PATCHED_MODULES)
wiring.dynamodb_client()
observed["patched_after_aws_client"] = sorted(patcher._PATCHED_MODULES)
wiring.price_service()
observed["patched_after_httpx_client"] = sorted(patcher._PATCHED_MODULES)
print(json.dumps(observed))
"""


def _run(probe: str, environment: dict[str, str]) -> object:
    completed = subprocess.run(
        [sys.executable, "-c", probe], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _environment(**overrides: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("POWERTOOLS_TRACE")}
    environment.update(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", **overrides)
    return environment


@pytest.mark.parametrize("module", HANDLERS)
def test_given_a_handler_when_imported_then_the_x_ray_sdk_is_not(module):
    probe = _IMPORTED.format(functions=str(ROOT / "functions"), root=str(ROOT), module=module)

    imported = _run(probe, _environment())

    assert "aws_xray_sdk.core" not in imported


def test_given_the_api_when_imported_then_boto3_waits_for_the_first_dynamodb_call():
    probe = _IMPORTED.format(functions=str(ROOT / "functions"), root=str(ROOT), module=API.module)

    assert "boto3" not in _run(probe, _environment())


def test_given_lambda_with_active_tracing_then_the_handler_is_traced_and_only_botocore_is_patched(tmp_path):
    probe = _TRACED_IN_LAMBDA.format(
        functions=str(ROOT / "functions"),
        root=str(ROOT),
        module=API.module,
        attribute=API.attribute,
        health_event=str(ROOT / "events" / "api-health.json"),
    )
    lambda_environment = _environment(
        LAMBDA_TASK_ROOT=str(tmp_path),
        AWS_LAMBDA_FUNCTION_NAME="api",
        _X_AMZN_TRACE_ID="Root=1-65a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:9",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        REDIS_URL="redis://127.0.0.1:1/0",
    )

    observed = _run(probe, lambda_environment)

    assert observed == {
        "at_import": False,
        "health_status": 200,
        "tracing": True,
        "patched_after_health": [],
        "patched_after_aws_client": ["botocore"],
        "patched_after_httpx_client": ["botocore"],
    }
