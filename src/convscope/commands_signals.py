"""Ctrl-C (SIGINT), SIGTERM (what timeout, SLURM and docker send) and SIGHUP (a closed terminal)
end a command with one line, within seconds.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process on the spot, so
atomic_path's `finally` never removes its temp file: a streamed run leaves gigabytes of hidden
`.partial` WAVs. Here the signals raise `Interrupted` (a KeyboardInterrupt) in the main thread,
every `finally` on the way out runs, and the entry script prints
`error: interrupted (SIGTERM) ...; partial files removed` and exits 128 + the signal number
(130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as a shell reports a process the signal killed.

Python runs that handler only between bytecodes: a main thread inside one long C call (a oneDNN
kernel, LAPACK in a user's module) would not see the signal for minutes. So a watchdog thread reads
the signal wake-up pipe, which the C-level handler writes at once; if the Python handler has not
run GRACE_S seconds later, the watchdog removes this process's temp files, prints the same line
and ends the process with the same status (os._exit: nothing else can run). The run dir's lock
dies with it, and a replaced run in `.replaced/` is put back by the next replace=true.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator, NoReturn, Optional

from convscope.commands_rundir import current_job_dir
from convscope.files import own_partials

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 3.0  # from the signal to the watchdog's exit when the main thread has not answered
_answered = threading.Event()  # the Python handler ran: the main thread is unwinding itself


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, frame: Optional[FrameType]) -> NoReturn:
    _answered.set()
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
    watchdog = _Watchdog() if previous else None
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
        if watchdog is not None:
            watchdog.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Watchdog:
    """Ends the process GRACE_S after SIGINT/SIGTERM/SIGHUP if the main thread, stuck in C code,
    has not run the Python handler by then (see the module's docstring)."""

    def __init__(self) -> None:
        _answered.clear()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # set_wakeup_fd's requirement: a signal never blocks
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="convscope-signal-watchdog",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)  # the watcher reads end-of-file and returns
        self._thread.join(GRACE_S + 1)

    def _watch(self) -> None:
        try:
            while True:
                data = os.read(self._read, 64)
                if not data:
                    return
                signums = [b for b in data if b in SIGNALS]
                if signums and not _answered.wait(GRACE_S):
                    _end_unanswered(signums[0])
        finally:
            os.close(self._read)


def _end_unanswered(signum: int) -> NoReturn:
    where = _clean_up()
    name = signal.Signals(signum).name
    os.write(2, f"error: interrupted ({name}){where}; the computation under way did not return "
                f"within {GRACE_S:g} s, so convscope ended the process; partial files removed\n"
             .encode())
    os._exit(128 + signum)


def _clean_up() -> str:
    """Removes this process's temp files in the job dir that a `finally` missed (a writer in
    another thread, say); returns where the job was writing, for the message."""
    job_dir = current_job_dir()
    if job_dir is None or not job_dir.is_dir():
        return ""
    for path in own_partials(job_dir):
        path.unlink(missing_ok=True)
    return f" while writing {job_dir}"
