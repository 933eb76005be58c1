"""`python -m local_stack` (make dev): run the whole system on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from local_stack.config import load_settings
from local_stack.foreground import run_until_stopped
from local_stack.stack import LocalStack


def main() -> int:
    try:
        settings = load_settings()
    except ValidationError as error:
        print(f"local stack: invalid setting:\n{error}", file=sys.stderr)
        return 2
    return run_until_stopped(LocalStack(settings), name="local stack", show_traceback=True)


if __name__ == "__main__":
    sys.exit(main())
