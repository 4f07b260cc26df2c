"""The process's stdout, stderr and module table survive the user's code.

A user's module may replace sys.stdout (a progress bar's redirect) or close it (a library's
clean-up). convscope's log lines go through handlers that hold the stream objects they were given,
so after a closed stdout every later line would be a "--- Logging error ---" traceback and the
final `error:` line would be lost. Around each call into the user's code the streams are put back,
a closed one replaced by a fresh writer on the same descriptor (Python opens the standard streams
with closefd=False, so closing sys.stdout leaves descriptor 1 open), and every logging handler
that held a closed stream is pointed at its replacement.
"""

from __future__ import annotations

import io
import logging
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO


@contextmanager
def std_streams_kept() -> Iterator[None]:
    saved = {"stdout": sys.stdout, "stderr": sys.stderr}
    try:
        yield
    finally:
        replaced: dict[int, TextIO] = {}
        for name, original in saved.items():
            stream = original
            if _closed(original):
                stream = _reopened(original, 1 if name == "stdout" else 2)
                replaced[id(original)] = stream
            setattr(sys, name, stream)
        if replaced:
            _repoint_handlers(replaced)


def _closed(stream: TextIO) -> bool:
    return bool(getattr(stream, "closed", False))


def _reopened(original: TextIO, fd: int) -> TextIO:
    try:
        fd = original.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # closed: its descriptor is still the standard one
    return open(fd, "w", buffering=1, encoding=getattr(original, "encoding", None) or "utf-8",
                errors="backslashreplace", closefd=False)


def _repoint_handlers(replaced: dict[int, TextIO]) -> None:
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict
                                       .values() if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and id(stream) in replaced:
                with handler.lock:  # not setStream: it flushes the closed stream first
                    handler.stream = replaced[id(stream)]


@contextmanager
def modules_kept() -> Iterator[None]:
    """sys.modules entries that existed before the user's code ran are put back if it replaced
    or removed them (`sys.modules["torch"] = None` breaks every later import of convscope's);
    modules it imported stay."""
    saved = dict(sys.modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module


@contextmanager
def user_code_contained() -> Iterator[None]:
    """Around a call into the user's code: the standard streams and the module table kept."""
    with std_streams_kept(), modules_kept():
        yield
