"""`python -m local_stack` as a child process, the way a developer runs `make dev`, for the e2e tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from local_stack.ports import free_port

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# What the test process's own environment points elsewhere: never passed on to the stack.
NOT_PASSED_ON = frozenset({"PRICES_API_URL", "DEMO", "LOCAL_JWT_SECRET", "AWS_ENDPOINT_URL", "TABLE_NAME"})
# A stack that needs no network and stays quiet: recorded prices, no scheduled refresh, warnings only.
OFFLINE_QUIET = {"OFFLINE_PRICES": "1", "REFRESH_INTERVAL_SECONDS": "86400", "POWERTOOLS_LOG_LEVEL": "WARNING"}


@contextmanager
def local_stack_process(
    directory: Path, variables: Mapping[str, str], *, also_drop: Callable[[str], bool] = lambda _name: False
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path, dict[str, str]]]:
    """(the process, its base URL, its log file, its environment), on a free port, with the test
    process's environment but what it points elsewhere, plus `variables`; killed if still up after."""
    port = free_port()
    environment = {
        name: value for name, value in os.environ.items() if name not in NOT_PASSED_ON and not also_drop(name)
    }
    environment.update({"PORT": str(port), "LOCAL_DATA_DIR": str(directory / "data"), **variables})
    log_path = directory / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_stack"],
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log_path, environment
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, output: Callable[[], str], *, timeout_s: float
) -> None:
    """Until the stack answers /health 200; fails the test with the stack's last output if it exits or never does."""
    import httpx
    import pytest

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited with {process.returncode}:\n{output()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the local stack did not answer /health in {timeout_s}s:\n{output()[-4000:]}")
