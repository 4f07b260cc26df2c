"""A long forward of the user's module says so in the log while it runs.

convscope cannot see inside one `model(x)` call: a published vocoder on minutes of frames can take
minutes with nothing to show. A daemon thread logs a line every PROGRESS_S seconds until the call
returns (threads run while the main thread is inside torch's C code).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger("convscope")
PROGRESS_S = 10.0


@contextmanager
def progress_logged(what: str) -> Iterator[None]:
    """`what` (e.g. "model.target G forward on [1, 80, 9000]") logged as still running every
    PROGRESS_S seconds while the block runs."""
    done, started, every = threading.Event(), time.monotonic(), PROGRESS_S

    def report() -> None:
        while not done.wait(every):
            log.info("%s: still running, %.0f s so far", what, time.monotonic() - started)

    reporter = threading.Thread(target=report, name="convscope-forward-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        reporter.join()
