"""Console commands leave without the interpreter's teardown once their work is done.

A finished run has written, renamed and closed every file; what Python does after that at exit
is free every object and module, torch's included: about 0.4-0.6 s on these machines (measured:
`python -c "import torch, hydra, matplotlib"` 2.1-2.3 s, the same ending in os._exit 1.7-1.85 s),
a tenth of the reference example's wall time, spent on nothing the user sees. mypy leaves the
same way. The logs and stdio are flushed first; where something still runs that a normal exit
would wait for (a child process, a multirun's launcher) the exit is normal. A non-daemon thread
still running then is not convscope's (its own threads end with their work): a user's module left
it, and a normal exit could wait for it forever. It gets THREAD_GRACE_S to finish; then it is named
in a warning and the command exits without it.
The commands' own functions (commands.run_main, ...) return as before: tests call them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Callable

MULTIRUN_FLAGS = ("-m", "--multirun")
THREAD_GRACE_S = 2.0  # a user's thread finishing its work (a log upload, say) has this long


def console_command(main: Callable[[], None]) -> Callable[[], None]:
    """`main` as a console entry (pyproject's [project.scripts], scripts/*.py)."""

    def command() -> None:
        try:
            main()
        except SystemExit as exc:
            leave(exc.code)
        else:
            leave(0)

    command.__doc__ = main.__doc__
    return command


def leave(code: object) -> None:
    """Exit with `code` as SystemExit would (a str is printed and gives 1), at once if safe."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else int(code)  # type: ignore[call-overload]
    if not may_skip_teardown():
        raise SystemExit(status)
    left = _threads_left_after(THREAD_GRACE_S)
    if left:
        logging.getLogger("convscope").warning(
            "exiting without %d thread(s) still running %g s after the run ended (%s): started "
            "by a user's module, not by convscope", len(left), THREAD_GRACE_S, ", ".join(left[:4]))
    logging.shutdown()  # flushes and closes run.log and the console handler
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(status)


def may_skip_teardown() -> bool:
    """Nothing left that a normal exit would wait for or clean up."""
    if any(flag in sys.argv[1:] for flag in MULTIRUN_FLAGS):  # launchers' pools, callbacks
        return False
    multiprocessing = sys.modules.get("multiprocessing")  # loaded only by corpora, launchers
    return multiprocessing is None or not multiprocessing.active_children()


def _threads_left_after(seconds: float) -> list[str]:
    """Names of the non-daemon threads still running after waiting up to `seconds` for them."""
    deadline = time.monotonic() + seconds
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not t.daemon]
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in others if t.is_alive()]
