"""Failed sweep jobs: error.json in a job's dir instead of an exit, and the entry script's
one `error:` line after the multirun."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from convscope.errors import ConvscopeError
from convscope.files import write_json
from convscope.rundir import RunDir
from convscope.sweep.summary import SweepJob

log = logging.getLogger("convscope")


_failures: list[str] = []  # filled in the launching process by the SweepReport callback


def record_failed_jobs(sweep_dir: Path, jobs: list[SweepJob]) -> Optional[str]:
    """Note the sweep's failed jobs for `failed_jobs_message`; the message, or None if none."""
    failed = [job for job in jobs if job.status != "ok"]
    if not failed:
        return None
    first = failed[0]
    message = (f"{len(failed)} of {len(jobs)} sweep jobs failed (job {first.name}: "
               f"{first.error or first.status}); summary: {RunDir(sweep_dir).summary_csv}")
    _failures.append(message)
    return message


def failed_jobs_message() -> Optional[str]:
    """After a multirun: what failed, for the entry script's `error:` line; None if nothing."""
    return _failures[-1] if _failures else None


def clear_failed_jobs() -> None:
    """Forget the failures noted so far: a command starting in a process that ran a sweep before
    (tests, the Python API) must not report that sweep's failed jobs as its own."""
    _failures.clear()


@contextmanager
def sweep_job_errors_recorded(job_dir: Path) -> Iterator[None]:
    """In a multirun job, turn bad input into error.json in the job dir instead of an exit, so
    one bad sweep point doesn't stop the others; an unexpected exception (a bug, an OS error)
    likewise, with its type named and its traceback in the job's log. The summary marks the job
    failed and the entry script exits 2. Outside a multirun, errors pass through."""
    try:
        yield
    except Exception as exc:
        if not _in_multirun():
            raise
        message = " ".join(str(exc).split())
        if isinstance(exc, ConvscopeError):
            log.error("error: %s", message)
        else:
            message = f"{type(exc).__name__}: {message}"
            log.error("error: %s", message, exc_info=exc)
        write_json(RunDir(job_dir).error, {"error": message})


def _in_multirun() -> bool:
    # Hydra only once a job has failed: library callers of the context manager may not use it
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
