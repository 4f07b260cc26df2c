"""Ctrl-C (SIGINT) and SIGTERM (what timeout, SLURM and docker send) end a command with one line.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process on the spot, so
atomic_path's `finally` never removes its temp file: a streamed run leaves gigabytes of hidden
`.partial` WAVs. Here both signals raise `Interrupted` (a KeyboardInterrupt) in the main thread,
every `finally` on the way out runs, and the entry script prints
`error: interrupted (SIGTERM) ...; partial files removed` and exits 128 + the signal number
(130 for SIGINT, 143 for SIGTERM), as a shell reports a process the signal killed.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, NoReturn, Optional

from convscope.commands_rundir import current_job_dir
from convscope.files import own_partials

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame: Optional[FrameType]) -> NoReturn:
    for other in SIGNALS:  # a second Ctrl-C must not cut the clean-up short
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def interrupts_reported(show_traceback: bool = False) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise Interrupted; leaving by one prints one line
    and exits 130 / 143 (with the traceback instead when asked for, hydra.verbose=true)."""
    # a signal ignored when we start stays ignored (nohup; `&` in a script ignores SIGINT), as
    # Python itself leaves SIGINT alone then
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in SIGNALS
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        where = _clean_up()
        if show_traceback:
            raise
        name = signal.Signals(signum).name
        print(f"error: interrupted ({name}){where}; partial files removed", file=sys.stderr)
        sys.exit(128 + signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _clean_up() -> str:
    """Removes this process's temp files in the job dir that a `finally` missed (a writer in
    another thread, say); returns where the job was writing, for the message."""
    job_dir = current_job_dir()
    if job_dir is None or not job_dir.is_dir():
        return ""
    for path in own_partials(job_dir):
        path.unlink(missing_ok=True)
    return f" while writing {job_dir}"
