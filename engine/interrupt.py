"""SIGINT and SIGTERM for the ``writ`` program: a clean stop with one line, and a second signal that
stops at once.

``install`` replaces Python's handlers (only in the main thread). What the first signal does depends
on where the program is:

* ``install(early=True)`` (while the program imports its modules): print one line and exit at once;
  nothing has been written yet.
* otherwise it raises ``Interrupted`` where the program is, so ``finally`` blocks run (a preflight
  child is killed, a temporary file removed) and ``engine.cli.main`` prints the message;
* inside ``cancelling(loop, task)`` (a run's event loop) it cancels ``task`` instead: conversations
  in flight are dropped at their next await, and the caller records what finished and says how to
  resume (``requested()`` tells it a signal came).

Any second signal writes one line and ends the process with ``os._exit`` (128 + signal number):
appends are fsynced line by line and whole files are replaced atomically (``engine.files``), so a
run directory stays resumable. ``Interrupted`` is a ``SystemExit``: typer and click, which turn
``KeyboardInterrupt`` into a silent exit status, let it through, asyncio re-raises it out of its
loop, and uncaught it still ends the process with the documented status (130 or 143).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "cancelling", "exit_status", "install", "requested"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_first: int | None = None  # the first signal received, once one came
_early = False
_target: tuple[Any, Any] | None = None  # (event loop, task) to cancel instead of raising


def exit_status(signum: int) -> int:
    """The shell's exit status for a process stopped by ``signum`` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class Interrupted(SystemExit):
    """The program was stopped by SIGINT or SIGTERM; ``message`` is the one line to print."""

    def __init__(self, signum: int, message: str = "interrupted") -> None:
        super().__init__(exit_status(signum))
        self.signum = signum
        self.message = message

    def with_message(self, message: str) -> Interrupted:
        """The same stop with another message (keeps the signal and the exit status)."""
        return Interrupted(self.signum, message)


def _say(line: str) -> None:
    try:
        os.write(2, f"writ: {line}\n".encode())
    except OSError:
        pass


def _handle(signum: int, _frame: FrameType | None) -> None:
    global _first
    if _first is not None:
        _say(f"{signal.Signals(signum).name} again: stopping now (finished conversations are kept)")
        os._exit(exit_status(signum))
    _first = signum
    if _early:
        _say("interrupted while starting; nothing was done")
        os._exit(exit_status(signum))
    if _target is not None:
        loop, task = _target
        loop.call_soon_threadsafe(task.cancel)
        return
    raise Interrupted(signum)


def install(*, early: bool = False) -> None:
    """Handle SIGINT and SIGTERM as described above (a no-op outside the main thread)."""
    global _early
    if threading.current_thread() is not threading.main_thread():
        return
    _early = early
    for signum in _SIGNALS:
        signal.signal(signum, _handle)


def requested() -> int | None:
    """The signal that asked the program to stop, or None."""
    return _first


@contextmanager
def cancelling(loop: Any, task: Any) -> Iterator[None]:
    """While inside, a first signal cancels ``task`` (an ``asyncio.Task`` on ``loop``) instead of raising.

    A signal that came before the block is acted on at once: the task is cancelled on entry.
    """
    global _target
    previous = _target
    _target = (loop, task)
    try:
        if _first is not None:
            task.cancel()
        yield
    finally:
        _target = previous
