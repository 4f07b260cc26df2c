"""Tasks for tests/test_corpus_workers.py, importable by the worker processes (which import a
task's function by its module and name): one that kills its own process like the OOM killer."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from convscope.files import partial_path


def square_or_die(out_dir: Path, task: int) -> int:
    """task ** 2; a negative task leaves a temp file (as a write cut short does) and dies by
    SIGKILL."""
    if task < 0:
        partial_path(Path(out_dir) / f"dying{task}.wav").write_bytes(b"half a file")
        os.kill(os.getpid(), signal.SIGKILL)
    return task * task
