"""Reading ahead and writing behind on threads, so file I/O overlaps the streamed compute.

soundfile's reads and a file's write() release the GIL, as torch's convolutions do: on two cores
the next input block is decoded and the last output block written while a block is computed.
Both queues are bounded (a few blocks), so memory stays bounded whatever the segment's length.
An error on a thread is raised again in the caller's thread, as the same exception (an OSError
naming its file stays one), at the next call or on leaving; leaving by an exception (Ctrl-C,
SIGTERM) stops the thread before the files' own clean-up runs, so nothing is left behind and no
thread outlives the run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1  # how often a blocked thread looks whether it was asked to stop
_DONE = object()


class WriteBehind:
    """Runs submitted calls in order on one thread; at most `depth` wait at a time."""

    def __init__(self, depth: int = 3, name: str = "convscope-write-behind"):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> WriteBehind:
        self._thread.start()
        return self

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        """Queue write(*args); the arguments must not change afterwards. Raises an earlier
        write's error instead, if one failed."""
        self._raise_error()
        self._queue.put((write, args))  # blocks while `depth` calls wait: bounded memory

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # drain without writing: the caller raises the first error
            write, args = item
            try:
                write(*args)
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:  # kept: later calls fail too
            raise self._error

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:  # failing: what is still queued is dropped, not written
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
        self._queue.put(_DONE)
        self._thread.join()  # the call under way (one block) finishes first
        if exc_type is None:
            self._raise_error()
        return False


def read_ahead(blocks: Iterator[T], depth: int = 2,
               name: str = "convscope-read-ahead") -> Iterator[T]:
    """The items of `blocks`, produced on a thread up to `depth` ahead of the consumer.

    Closing this generator (the consumer failed or stopped early) stops the thread and closes
    `blocks` there (a generator's `finally`, e.g. closing its file, runs on that thread)."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not put((True, block)):
                    return
            put((True, _DONE))
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            put((False, exc))
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            ok, item = items.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()
