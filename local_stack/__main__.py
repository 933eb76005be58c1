"""`python -m local_stack` (make dev): run the whole system on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
import traceback

from pydantic import ValidationError

from local_stack.config import load_settings
from local_stack.stack import LocalStack, StartupError


def main() -> int:
    try:
        settings = load_settings()
    except ValidationError as error:
        print(f"local stack: invalid setting:\n{error}", file=sys.stderr)
        return 2

    stop_requested = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda _number, _frame: stop_requested.set())

    stack = LocalStack(settings)
    try:
        stack.start()
    except StartupError as error:
        print(f"local stack: {error}", file=sys.stderr)
        stack.stop()
        return 1
    except Exception as error:
        print(f"local stack: could not start: {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exc()
        stack.stop()
        return 1

    while not stop_requested.wait(0.5):
        pass
    print("Stopping...", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
