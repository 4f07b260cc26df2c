"""Operating-system errors worded as one line: the path, what went wrong, what to do.

Everything a user can type that the OS then refuses (a run dir on a read-only or full disk, a
name over the filesystem's limit, a folder they may not enter) reaches the entry scripts as an
OSError; convscope.cli prints describe_os_error's line and exits 2. Only OSError is translated:
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence

# What to do, per errno; the strerror text already says what happened.
ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere (hydra.run.dir=...)",
    errno.EDQUOT: "your disk quota is used up: free some space or write elsewhere "
                  "(hydra.run.dir=...)",
    errno.EFBIG: "the file is bigger than this process may write (ulimit -f) or the "
                 "filesystem allows: raise the limit, write elsewhere or shorten data.end",
    errno.EROFS: "the filesystem is read-only: choose a writable place (hydra.run.dir=...)",
    errno.EACCES: "check the permissions of the path and of every folder on the way, or "
                  "choose another place",
    errno.EPERM: "the operation is not permitted there: choose another place",
    errno.ENAMETOOLONG: "a name in the path is over the filesystem's limit (usually 255 bytes "
                        "per name, 4096 per path): shorten it",
    errno.ELOOP: "the path goes round a symlink loop: fix or remove the link",
    errno.ENOENT: "a folder on the way does not exist and cannot be created there: check the "
                  "path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EEXIST: "it is already there and is not a folder: remove it or choose another "
                  "path",
    errno.EISDIR: "it is a folder where a file is expected: choose a file",
    errno.EIO: "the device reported an I/O error: check the disk, or write elsewhere",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
    errno.ENXIO: "the device or FIFO has no other end: give a regular file",
}


def describe_os_error(exc: OSError, argv: Sequence[str] = (),
                      run_dir: Optional[str] = None) -> str:
    """`<key>: <path>: <what> (<ERRNO>); <what to do>`, one line.

    The key is the command-line setting whose value the failing path lies in (data.path,
    hydra.run.dir, ...), when one of `argv` names it. An error without a file name (a write()
    or close() of a file Hydra writes) is placed in `run_dir`, the only place a job writes.
    """
    code = exc.errno if isinstance(exc.errno, int) else None
    what = exc.strerror or str(exc) or type(exc).__name__
    name = errno.errorcode.get(code, "") if code is not None else ""
    plain = os.strerror(code) if code is not None else ""
    if name and name not in what:  # the errno's name goes right after the OS's own words
        text = (what.replace(plain, f"{plain} ({name})", 1) if plain and plain in what
                else f"{what} ({name})")
    else:
        text = what
    paths = [p for p in (exc.filename, exc.filename2) if p not in (None, "")]
    where = " -> ".join(os.fsdecode(p) if isinstance(p, bytes) else str(p) for p in paths)
    if not paths and run_dir:
        paths, where = [run_dir], f"while writing in {run_dir}"
    key = setting_for(paths[0], argv) if paths else None
    line = ": ".join(part for part in (key, where, text) if part)
    advice = ADVICE.get(code)
    return f"{line}; {advice}" if advice else line


def setting_for(path, argv: Sequence[str]) -> Optional[str]:
    """The `key` of the first `key=value` in argv whose value is `path` or a folder above it."""
    try:
        target = Path(os.path.abspath(os.fsdecode(path)))
    except (TypeError, ValueError):
        return None
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        value = value.strip().strip("'\"")
        if not sep or not value:
            continue
        try:
            given = Path(os.path.abspath(os.path.expanduser(value)))
        except (RuntimeError, ValueError):  # ~user that does not exist
            continue
        if target == given or given in target.parents:
            return key
    return None



@contextmanager
def log_file_failures() -> Iterator[list[OSError]]:
    """Collect the OSErrors of the log files' handlers (run.log on a full disk) instead of
    letting logging print a traceback for every record; the caller reports the first one.

    Each error names its log file. Other handler errors (a bad format string: a bug) are left
    to logging's usual report.
    """
    failures: list[OSError] = []
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]

    def quiet(handler: logging.FileHandler):
        def handle_error(record: logging.LogRecord) -> None:
            exc = sys.exc_info()[1]
            if not isinstance(exc, OSError):
                return logging.FileHandler.handleError(handler, record)
            if not failures:
                failures.append(OSError(exc.errno, exc.strerror, handler.baseFilename))
            return None
        return handle_error

    for handler in handlers:
        handler.handleError = quiet(handler)  # type: ignore[method-assign]
    try:
        yield failures
    finally:
        for handler in handlers:
            del handler.handleError  # the class's own again
