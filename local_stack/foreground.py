"""Running a stack in the foreground of its process until Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from typing import Protocol


class StartupError(Exception):
    """A setting or the machine keeps the stack from starting; the message says what to change."""


class Stack(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def run_until_stopped(stack: Stack, *, name: str, announce_stop: bool = True, show_traceback: bool = False) -> int:
    """Start `stack`, then stop it on SIGINT or SIGTERM: 0. When it cannot start, what did start is
    stopped and the reason goes to stderr, after `name` (with the traceback if `show_traceback`,
    unless it is a StartupError, whose message is enough): 1."""
    stop_requested = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda _number, _frame: stop_requested.set())
    try:
        stack.start()
    except StartupError as error:
        print(f"{name}: {error}", file=sys.stderr)
        stack.stop()
        return 1
    except Exception as error:
        print(f"{name}: could not start: {type(error).__name__}: {error}", file=sys.stderr)
        if show_traceback:
            traceback.print_exc()
        stack.stop()
        return 1
    while not stop_requested.wait(0.5):
        pass
    if announce_stop:
        print("Stopping...", flush=True)
    stack.stop()
    if announce_stop:
        print("Stopped.", flush=True)
    return 0
