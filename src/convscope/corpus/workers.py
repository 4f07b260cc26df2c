"""A corpus's files spread over worker processes, merged back in the order they were given.

Each worker is a process of its own (`forkserver` where the system has it, else `spawn`: a
fork taken after torch started its OpenMP threads can deadlock), runs torch on one thread, and
gets its files a few at a time over its own pipe, so that a file costs one small message back.
What it logs travels over the same pipe and is handled by the main process's loggers (run.log,
the console), under the file's own lines.

A worker that dies under a file (a segfault, the OOM killer) costs that file only: its row says
how the worker died, the temp files it left are removed, and a new worker takes the rest of its
files. SIGINT and SIGTERM reach the main process (workers ignore SIGINT: Ctrl-C reaches the whole
process group and the main process decides), which stops every worker with SIGTERM; each worker
turns that into KeyboardInterrupt, so its atomic writes remove their temp files on the way out.
A worker whose parent dies (the main process killed outright) gets SIGTERM from the kernel.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from convscope.files import partial_is_stale, partials

log = logging.getLogger("convscope")
FILES_PER_MESSAGE = 8  # the most files a worker is sent at once (fewer at the end: balance)
STOP_SECONDS = 10.0  # a worker stopped with SIGTERM gets this long before SIGKILL
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PRELOAD = ("torch", "convscope.pipeline.single", "convscope.corpus.run")


def context() -> multiprocessing.context.BaseContext:
    """forkserver (workers forked from one clean server: cheap to start, no torch threads
    inherited) where the system has it, else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # imported once in the server, before any thread starts, so each worker forks with torch
    # and the pipeline loaded (a worker that replaces a dead one starts in milliseconds). Every
    # convscope module this process has: each worker also imports the main script again (as
    # __mp_main__; the forkserver's own '__main__' preload never receives the script's path),
    # and scripts/run.py imports the entry points, Hydra's included: ~3 s a worker otherwise.
    ctx.set_forkserver_preload([*PRELOAD, *sorted(name for name in sys.modules
                                                  if name.startswith("convscope."))])
    return ctx


@dataclass
class Worker:
    process: Any
    conn: Connection
    given: deque = field(default_factory=deque)  # task indexes sent, not yet reported done
    started: float = 0.0  # when its current file began (perf_counter)


def run_in_workers(function: Callable, shared: tuple, tasks: Sequence, workers: int,
                   out_dir: Path, crashed: Callable[[Any, str, float], Any],
                   progress: Callable[[], Any] = lambda: None, slow: int = 0) -> list:
    """[function(*shared, task) for task in tasks], computed by `workers` processes, in the
    order of `tasks`. `function` must be module-level (sent by reference); `crashed(task,
    error, seconds)` gives the result of a task whose worker died; `progress()` is called
    once per task done; the first `slow` tasks (figures: seconds each) go one per message, so
    that they spread over the workers. Temp files of dead workers under `out_dir` are removed."""
    ctx = context()
    results: list = [None] * len(tasks)
    todo = deque(range(len(tasks)))
    chunk = max(1, min(FILES_PER_MESSAGE, math.ceil(len(tasks) / (4 * workers))))
    level = log.getEffectiveLevel()
    pool: list[Worker] = []

    def start() -> None:
        mine, theirs = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(theirs, function, shared, level),
                              daemon=True, name=f"convscope-corpus-{len(pool)}")
        process.start()
        theirs.close()
        worker = Worker(process, mine)
        pool.append(worker)
        give(worker)

    def give(worker: Worker) -> None:
        batch = [todo.popleft()] if todo else []
        while batch and batch[0] >= slow and todo and todo[0] >= slow and len(batch) < chunk:
            batch.append(todo.popleft())
        worker.given.extend(batch)
        worker.started = time.perf_counter()
        worker.conn.send([(index, tasks[index]) for index in batch] if batch else None)

    try:
        for _ in range(min(workers, len(tasks))):
            start()
        while sum(len(w.given) for w in pool) + len(todo):
            alive = [w for w in pool if w.given]
            wait([w.conn for w in alive] + [w.process.sentinel for w in alive])
            for worker in alive:
                _drain(worker, results, progress)
                if worker.given and not worker.process.is_alive():
                    _bury(worker, tasks, results, todo, crashed, out_dir, progress)
                    worker.process.close()
                    pool.remove(worker)
                    if todo:
                        start()
                elif not worker.given:
                    give(worker)
    finally:
        _stop(pool, out_dir)
    return results


def _drain(worker: Worker, results: list, progress: Callable) -> None:
    """Every message the worker has sent: log records and finished tasks."""
    try:
        while worker.conn.poll():
            message = worker.conn.recv()
            if isinstance(message, logging.LogRecord):
                logging.getLogger(message.name).handle(message)
                continue
            index, result = message
            results[index] = result
            worker.given.popleft()
            worker.started = time.perf_counter()
            progress()
    except (EOFError, OSError):
        pass  # the worker is gone: what it sent before is read; _bury words the rest


def _bury(worker: Worker, tasks: Sequence, results: list, todo: deque, crashed: Callable,
          out_dir: Path, progress: Callable) -> None:
    """A worker died under the first task it was given: that task gets the crash row, the
    rest go back to the front of the queue, and its temp files are removed."""
    worker.process.join()
    _drain(worker, results, progress)  # what it sent between the last read and its death
    if not worker.given:
        return
    index = worker.given.popleft()
    error = f"the worker process (pid {worker.process.pid}) died: {_death(worker.process.exitcode)}"
    log.error("corpus: %s", error)
    results[index] = crashed(tasks[index], error, time.perf_counter() - worker.started)
    progress()
    todo.extendleft(reversed(worker.given))
    worker.given.clear()
    worker.conn.close()
    _remove_dead_partials(out_dir)


def _death(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = {"SIGKILL": " (the OOM killer sends it when memory runs out)",
               "SIGSEGV": " (a crash in native code)"}.get(name, "")
        return f"killed by {name}{why}"
    return f"exited with status {exitcode}"


def _stop(pool: list[Worker], out_dir: Path) -> None:
    """Every worker ended (asked to stop when idle, SIGTERM when busy or interrupted, SIGKILL
    after STOP_SECONDS), then the temp files dead workers left removed."""
    for worker in pool:
        try:
            if worker.given or not worker.process.is_alive():
                worker.process.terminate()
            else:
                worker.conn.send(None)
        except (OSError, ValueError):
            worker.process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
    if pool:
        _remove_dead_partials(out_dir)


def _remove_dead_partials(out_dir: Path) -> None:
    """Temp files under out_dir whose writer has exited: a killed worker's `finally` never ran."""
    for path in partials(out_dir) if Path(out_dir).is_dir() else []:
        if partial_is_stale(path):
            path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------
# in the worker process
# ------------------------------------------------------------------------------------------

class _PipeHandler(logging.Handler):
    """Log records sent to the main process, their message formatted here (arguments and
    tracebacks may not pickle)."""

    def __init__(self, conn: Connection):
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            record = logging.makeLogRecord({**record.__dict__, "msg": message, "args": None,
                                            "exc_info": None, "exc_text": None})
            self.conn.send(record)
        except (BrokenPipeError, EOFError):  # the main process is gone (killed outright):
            raise KeyboardInterrupt("main process gone")  # stop as SIGTERM would, cleaning up
        except Exception:
            self.handleError(record)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up
    raise KeyboardInterrupt("SIGTERM")


def _worker_main(conn: Connection, function: Callable, shared: tuple, level: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides (module doc)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    _die_with_parent()
    import torch  # in the worker only: its import is the worker's start-up cost

    torch.set_num_threads(1)  # one process per core: threads would only compete
    root = logging.getLogger()
    root.handlers = [_PipeHandler(conn)]
    root.setLevel(level)
    log.setLevel(level)
    try:
        while (batch := conn.recv()) is not None:
            for index, task in batch:
                conn.send((index, function(*shared, task)))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # stopped, or the main process is gone: the `finally`s have removed temp files


def _die_with_parent() -> None:
    """SIGTERM when the parent process dies (Linux): no worker outlives a killed run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the closed pipe ends the worker at its next file
