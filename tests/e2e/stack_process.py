"""`python -m local_stack` as a child process, the way a developer runs `make dev`, for the e2e tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from local_stack.ports import free_port

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# What the test process's own environment points elsewhere: never passed on to the stack.
NOT_PASSED_ON = frozenset({"PRICES_API_URL", "DEMO", "LOCAL_JWT_SECRET", "AWS_ENDPOINT_URL", "TABLE_NAME"})


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
