"""Exporting into run dirs that a convscope run finished earlier (`convscope tensorboard <dir>`).

A finished run dir's .convscope record lists every file its run wrote, and replace=true refuses a
dir holding files the record does not list. Events added later must therefore join the record,
written as the run's own writer would: under the dir's lock.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from convscope.errors import ConvscopeError
from convscope.rundir import RunDir, owner


@contextmanager
def records_kept(root: Path) -> Iterator[None]:
    """Export into finished run dirs as their own writer: each dir's lock held meanwhile, and its
    .convscope record sealed again afterwards so it lists the events too (replace=true refuses a
    dir holding files its record does not list). A dir that already holds such foreign files is
    left unsealed: sealing would make them the run's, for replace=true to delete."""
    # a .replaced/ set-aside's record belongs to the replace under way there, not to this export
    owned = sorted(record.parent for record in root.rglob(RunDir.RECORD)
                   if not any(part.startswith(".") for part in
                              record.parent.relative_to(root).parts))
    locks, reseal = [], []
    try:
        for folder in owned:
            record = owner.read_record(folder)
            if record is None or record.get("state") not in ("finished", "failed"):
                continue
            lock = owner.try_lock(folder)
            if lock is None:
                raise ConvscopeError(f"{folder}: a convscope run is writing it; export it once "
                                     "that run has finished")
            locks.append(lock)
            if not owner.foreign_files(folder):
                reseal.append((folder, record["state"]))
        yield
        for folder, state in reseal:
            owner.seal(folder, state)
    finally:
        for lock in locks:
            lock.release()
