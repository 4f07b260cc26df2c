"""Figures drawn on the second core: a figure worker process (plots/figure_worker.py) renders
what the pipeline hands it while the run goes on writing WAVs, evaluating and reporting.

Who gets one: a command (convscope-run, scripts/run.py) opens a `session()` and starts the worker
before it imports torch, so matplotlib's import overlaps torch's; the run's figure writers ask
`figure_sink(cfg.plots)` where to send figures. Library calls (convscope.run, the tests, corpus
worker processes: anything without a session of its own process) and `plots.workers=0` draw
in the calling process, as before.

Contracts: stages.finish_run calls `wait_for_figures()` before shapes.json, so a finished run
has every PNG. A figure the worker fails to draw is a ConvscopeError naming it. A worker that
dies (killed, out of memory) is not an error: the figures it did not confirm are drawn in the
main process, and a warning says so. Leaving a job by an exception or a signal stops the worker
and removes its temp files before the job dir is given up (`job_figures()`); the session's end
stops it in every case: no worker outlives the command.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from convscope.config.schema import PlotsConfig
from convscope.errors import ConvscopeError
from convscope.files import partials
from convscope.plots.envelopes import minmax_envelope
from convscope.plots.figure_worker import FigureJob, encode, read_message, render, write_message

log = logging.getLogger("convscope")

STOP_SECONDS = 5.0  # a worker asked to stop that is still there after this is killed


class InProcess:
    """Draws each figure at once, here; returns it (tests look at the Figure)."""

    def submit(self, job: FigureJob) -> Any:
        return render(job)


class FigureWorker:
    """One worker process, reused for every figure of the session."""

    def __init__(self, nice: int = 0) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # convscope importable there
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root,
                                                          env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convscope.plots.figure_worker", str(nice)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, start_new_session=False)
        self.pending: deque[FigureJob] = deque()  # sent, not yet confirmed: kept to redraw
        self._outbox: queue.Queue = queue.Queue()
        # the main thread never blocks on a full pipe while the worker is busy drawing
        self._sender = threading.Thread(target=self._send_all, daemon=True,
                                        name="convscope-figure-sender")
        self._sender.start()

    def _send_all(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                write_message(self.process.stdin, message)
                if message is None:
                    self.process.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                return  # the worker is gone: wait() finds out and draws what is left here
            if message is None:
                return

    def submit(self, job: FigureJob) -> None:
        self.pending.append(job)
        self._outbox.put(encode(compact(job)))  # pickled here, written by the sender thread

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> None:
        """Until every figure sent is on disk; the first that failed is a ConvscopeError."""
        failed: Optional[tuple[str, str]] = None
        while self.pending:
            try:
                path, error = read_message(self.process.stdout)
            except EOFError:
                self._draw_here_what_is_left()
                break
            job = self.pending.popleft()
            if error is not None and failed is None:
                failed = (str(job.path), error)
        if failed is not None:
            path, error = failed
            raise ConvscopeError(f"{path}: the figure worker could not draw it: {error}; "
                                 "plots.workers=0 draws figures in the run's process")

    def _draw_here_what_is_left(self) -> None:
        status = self.process.wait()
        self._remove_partials()
        log.warning("plots: the figure worker stopped (exit status %s); drawing its %d "
                    "remaining figure(s) in this process", status, len(self.pending))
        while self.pending:
            render(self.pending.popleft())

    def stop(self) -> None:
        """Ask the worker to finish and go; a worker with figures still pending (the job
        failed or was interrupted) is terminated instead, and its temp files removed."""
        if self.pending and self.alive:
            self.process.terminate()
        else:
            self._outbox.put(None)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._remove_partials()
        self.pending.clear()
        self.process.stdout.close()

    def _remove_partials(self) -> None:
        """The worker's temp files (a killed worker's `finally` never ran)."""
        marker = f"-{self.process.pid}-"  # files.partial_path: .{stem}.partial-{host}-{pid}-{n}
        for folder in {job.path.parent for job in self.pending}:
            for path in partials(folder) if folder.is_dir() else []:
                if marker in path.name:
                    path.unlink(missing_ok=True)


class FigurePool:
    """The session's workers (plots.workers): each figure goes to the one with the least
    drawing queued. The main process mostly waits idle while the figures are drawn, so two can
    use both of two cores; workers after the first run at a lower priority (nice): they import
    matplotlib while torch is imported and must not take the main process's core from it."""

    def __init__(self, size: int) -> None:
        self.workers = [FigureWorker(nice=SECOND_WORKER_NICE if i else 0) for i in range(size)]

    def submit(self, job: FigureJob) -> Any:
        alive = [worker for worker in self.workers if worker.alive]
        if not alive:  # all gone: draw here (each one's own wait() says what it left)
            return render(job)
        min(alive, key=_queued_cost).submit(job)
        return None

    @property
    def alive(self) -> bool:
        return any(worker.alive for worker in self.workers)

    @property
    def pending(self) -> list[FigureJob]:
        return [job for worker in self.workers for job in worker.pending]

    def wait(self) -> None:
        failures = []
        for worker in self.workers:  # every worker drained, then the first failure raised
            try:
                worker.wait()
            except ConvscopeError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


JOB_COST = {"layer": 2}  # a layer figure takes about twice a spectrogram's or a spectrum's time
SECOND_WORKER_NICE = 10


def _queued_cost(worker: FigureWorker) -> int:
    return sum(JOB_COST.get(job.kind, 1) for job in worker.pending)


def compact(job: FigureJob) -> FigureJob:
    """A layer figure's whole signals become the min/max envelopes plot_layer would draw of
    them: what crosses the pipe stays bounded (two values per pixel column) and the picture is
    the same."""
    if job.kind != "layer":
        return job
    layer, cfg = job.args
    max_bins = int(cfg.width_inches * cfg.dpi)

    def envelopes(drawn, rate):
        if not isinstance(drawn, np.ndarray):
            return drawn  # envelopes already (streamed runs), or a feature input's frames
        return [minmax_envelope(x, rate, max_bins) for x in drawn]

    layer = replace(layer, input=envelopes(layer.input, layer.input_rate),
                    output=envelopes(layer.output, layer.output_rate))
    return replace(job, args=(layer, cfg))


# ------------------------------------------------------------------------------------------
# the session: one per command process
# ------------------------------------------------------------------------------------------

_session: dict[str, Any] = {"pid": None, "worker": None}


def wants_worker(argv: Sequence[str]) -> bool:
    """Whether a command line will draw figures (the config decides later; this only avoids
    starting a worker for runs that plainly draw none)."""
    args = set(argv)
    off = {"plots.enabled=false", "plots.workers=0", "--help", "-h", "--cfg", "-c", "--info",
           "--hydra-help"}
    return not args & off


@contextmanager
def session(argv: Sequence[str]) -> Iterator[None]:
    """Background figures for this process while the block runs; the workers are started now
    (before torch is imported) when the command line will draw figures: as many as a
    `plots.workers=N` on it says, else the default's (the config decides the rest)."""
    _session.update(pid=os.getpid(), worker=None)
    if wants_worker(argv):
        _start(_workers_named(argv))
    try:
        yield
    finally:
        worker = _session["worker"]
        _session.update(pid=None, worker=None)
        if worker is not None:
            worker.stop()


def _workers_named(argv: Sequence[str]) -> int:
    for arg in argv:
        if arg.startswith("plots.workers=") and arg.split("=", 1)[1].isdigit():
            return max(1, min(int(arg.split("=", 1)[1]), os.cpu_count() or 1))
    return max(1, min(PlotsConfig.workers, os.cpu_count() or 1))


def _start(size: int) -> Optional[FigurePool]:
    try:
        _session["worker"] = FigurePool(size)
    except OSError as exc:  # no process to be had: draw here
        log.warning("plots: no figure worker (%s); drawing in this process", exc)
        _session["worker"] = None
    return _session["worker"]


def _active() -> bool:
    return _session["pid"] == os.getpid()  # a forked child does not share its parent's worker


def figure_sink(cfg: PlotsConfig):
    """Where this run's figures go: the session's workers, or this process."""
    if not (cfg.workers and _active()):
        return InProcess()
    worker = _session["worker"]
    if worker is None or not worker.alive or (len(worker.workers) != cfg.workers
                                              and not worker.pending):
        if worker is not None:
            worker.stop()
        worker = _start(cfg.workers)
    return worker or InProcess()


def wait_for_figures() -> None:
    """Every figure handed to the worker is on disk (or an error names the one that is not)."""
    worker = _session["worker"] if _active() else None
    if worker is not None:
        worker.wait()


@contextmanager
def job_figures() -> Iterator[None]:
    """One job of the session: leaving it by an exception (a signal included) stops the
    worker before the caller gives the job dir up; the next job starts a fresh one."""
    try:
        yield
    except BaseException:
        worker = _session["worker"] if _active() else None
        if worker is not None and worker.pending:
            worker.stop()
            _session["worker"] = None
        raise
