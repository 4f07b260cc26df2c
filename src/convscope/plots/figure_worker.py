"""The figure worker: a second Python process that renders figures while the run goes on
(`python -m convscope.plots.figure_worker`, started by convscope.plots.background).

It imports matplotlib and convscope.plots, never torch, so it is ready in about a second, while
the main process is still importing torch. Protocol over its stdin/stdout: length-prefixed
pickles. In: a FigureJob, or None to stop. Out, one per job in order: (path, None) when the PNG
is on disk (written through atomic_path, as in-process), or (path, "Type: message").
SIGINT/SIGTERM: the figure being written is abandoned (atomic_path removes its temp file) and
the worker exits; end of input (the main process is gone) stops it too.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

HEADER = struct.Struct("!Q")  # the byte length of the pickle that follows


@dataclass(frozen=True)
class FigureJob:
    """One figure: which plotting function (a name in RENDERERS), where, and its arguments
    (NumPy arrays and small dataclasses: what pickles cheaply)."""

    kind: str
    path: Path
    args: tuple


def render(job: FigureJob) -> Any:
    """Draw and save one figure in this process; returns the Figure."""
    # matplotlib: loaded by whichever process renders, and only then
    from convscope.plots.layers import plot_layer, plot_spectrograms
    from convscope.plots.overview import plot_leaf_overview
    from convscope.plots.quality import plot_spectrum

    renderers = {"layer": plot_layer, "spectrogram": plot_spectrograms,
                 "spectrum": plot_spectrum, "overview": plot_leaf_overview}
    return renderers[job.kind](job.path, *job.args)


def encode(message: Any) -> bytes:
    """The message as it crosses the pipe (pickled now: later changes to its arrays can't
    reach the figure)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def write_message(stream: IO[bytes], message: Any) -> None:
    stream.write(message if isinstance(message, bytes) else encode(message))
    stream.flush()


def read_message(stream: IO[bytes]) -> Optional[Any]:
    """The next message, or EOFError when the other side has closed the pipe."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        raise EOFError
    size = HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    try:
        return _serve()
    except (KeyboardInterrupt, BrokenPipeError):
        return 130


def _serve() -> int:
    if len(sys.argv) > 1:  # workers after the first: lower priority (background.FigurePool)
        os.nice(int(sys.argv[1]))
    # the main process decides when to stop: Ctrl-C reaches the whole process group, and the
    # main process answers it by terminating this worker (SIGTERM), once
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupted)  # atomic_path's finally removes the temp file
    # matplotlib's import is the slow part of starting: do it before the first job arrives
    import convscope.plots.layers  # noqa: F401
    import convscope.plots.quality  # noqa: F401

    # the protocol gets its own copy of stdout; whatever a library prints goes to stderr
    source, sink = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            job = read_message(source)
        except EOFError:
            return 0
        if job is None:
            return 0
        try:
            render(job)
            reply = (str(job.path), None)
        except Exception as exc:  # reported to the main process, which names the figure
            reply = (str(job.path), f"{type(exc).__name__}: {exc}")
        write_message(sink, reply)


if __name__ == "__main__":
    sys.exit(main())
