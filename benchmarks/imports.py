"""Cold-start import cost: each function's handler module imported in a fresh interpreter, against `import boto3`.

    .venv/bin/python -m benchmarks.imports

Every sample is a new `python -c` process that times one import with perf_counter, so interpreter
start-up is left out and nothing is cached in memory. Rounds interleave the modules (boto3 first,
then each handler), so a busy moment of the machine falls on all of them alike; the figure is the
median over rounds. The environment is the template's (service name, tracing on as `Tracing: Active`
sets it), with no AWS credentials needed: importing a handler builds clients lazily.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
BASELINE_MODULE = "boto3"
ROUNDS = 7

# The probe prints the import time in milliseconds; it runs with functions/ on sys.path, as Lambda does.
_PROBE = (
    "import sys, time\n"
    "sys.path.insert(0, {functions!r})\n"
    "started = time.perf_counter()\n"
    "import {module}\n"
    "print((time.perf_counter() - started) * 1000)\n"
)


def handler_modules() -> dict[str, str]:
    """Function folder -> the module its handler lives in (functions/<name>/app.py -> <name>.app)."""
    return {path.parent.name: f"{path.parent.name}.app" for path in sorted(FUNCTIONS_DIR.glob("*/app.py"))}


def _lambda_environment() -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("POWERTOOLS_", "AWS_")) and name not in {"REDIS_URL", "TABLE_NAME"}
    }
    environment.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="cross-chain-portfolio",
        POWERTOOLS_METRICS_NAMESPACE="CrossChainPortfolio",
        POWERTOOLS_LOG_LEVEL="INFO",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return environment


def time_import(module: str, environment: dict[str, str]) -> float:
    """Milliseconds to import `module` in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(functions=str(FUNCTIONS_DIR), module=module)],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def run(rounds: int = ROUNDS) -> dict[str, Any]:
    environment = _lambda_environment()
    modules = {BASELINE_MODULE: BASELINE_MODULE, **handler_modules()}
    # One throwaway import of each: compiled bytecode on disk is what a deployed package has too.
    for module in modules.values():
        time_import(module, environment)
    samples: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(rounds):
        for name, module in modules.items():
            samples[name].append(time_import(module, environment))
    medians = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    boto3_ms = medians.pop(BASELINE_MODULE)
    return {
        "benchmark": "imports",
        "import_ms": medians,
        "import_boto3_ms": boto3_ms,
        "import_ratio_to_boto3": {name: round(value / boto3_ms, 2) for name, value in medians.items()},
        "rounds": rounds,
    }


def main() -> None:
    result = run()
    for name, milliseconds in result["import_ms"].items():
        print(f"import {name}: {milliseconds} ms ({result['import_ratio_to_boto3'][name]}x import boto3)")
    print(f"import boto3: {result['import_boto3_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
