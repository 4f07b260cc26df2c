"""Who writes a run dir, and what replace=true may remove from it.

One writer. A job holds an exclusive `flock` on `.convscope.lock` in its dir from before it looks
at the dir until it ends; a second job into the same dir at the same moment does not get it and is
refused. The kernel drops the lock with its holder (SIGKILL included), so there is never a stale
lock to break. The file is created empty once and left in place: a refused job changes no byte.

The record. `.convscope` (JSON) is written when a run claims the dir (`state: running`, `started`
in epoch seconds, pid, host) and again when it ends, with every file the dir then holds (`state:
finished` or `failed`, `files`). replace=true empties only a dir that has a record, and only of what
the record accounts for: a file it lists or, for a run killed before it could list them, a file made
after it started. Anything else is foreign and the replace is refused, naming it. A `.hydra/` alone
proves nothing: every Hydra app leaves one.

Setting aside is ordered so that a kill at any moment leaves a state the next run can read. The
record moves into `.replaced/` first, the other entries after it, and the new run's record is
written only once all have moved. So, finding `.replaced/` left behind:
- no record inside: cut before anything moved (it is empty);
- a record inside, none outside: cut while moving; what is outside is the old run's too;
- records inside and outside, the outer one unsealed: the new run was killed; outside is its own;
- the outer record sealed (it lists its files): the new run had finished; the old one may go.
Dropping renames `.replaced/` to `.replaced.dropped` before deleting it, so a kill mid-delete
leaves a name that only ever holds a run that was already replaced.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
import weakref
from pathlib import Path
from typing import Iterable, Optional

from convscope.rundir.layout import RunDir

RECORD = RunDir.RECORD
LOCK = RunDir.LOCK
REPLACED = RunDir.REPLACED
DROPPED = RunDir.DROPPED
RECORD_TMP = RECORD + ".tmp"  # the record's next version, renamed over it (one writer: the lock)
# Never part of a run's files: the bookkeeping above.
BOOKKEEPING = frozenset({RECORD, RECORD_TMP, LOCK, REPLACED, DROPPED})
# Written at the top of a dir by the job's wrapper after the record is sealed (the log's last
# lines, a sweep job's error.json): a run's own whenever the dir has a record.
WRITTEN_AFTER_SEAL = frozenset({RunDir.ERROR}) | RunDir.LOG_NAMES
CLOCK_SLACK_S = 1.0  # file systems that keep mtimes in whole seconds


class DirLock:
    """The exclusive flock on a run dir's `.convscope.lock`; released by release() or with the
    process (and when the object is collected: a job rejected before it ran drops it too)."""

    def __init__(self, fd: int):
        self._close = weakref.finalize(self, os.close, fd)

    def release(self) -> None:
        self._close()


def try_lock(folder: Path) -> Optional[DirLock]:
    """The dir's lock (creating the dir and the lock file), or None while another process holds
    it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return DirLock(fd)


# --- the record ---------------------------------------------------------------------------------

def read_record(folder: Path) -> Optional[dict]:
    """The dir's record, or None when it has none (or one that is not convscope's JSON)."""
    try:
        record = json.loads((Path(folder) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("convscope") == 1 else None


def claim(folder: Path) -> None:
    """This run starts writing `folder`."""
    _write_record(folder, {"convscope": 1, "state": "running", "started": time.time(),
                           "pid": os.getpid(), "host": socket.gethostname()})


def seal(folder: Path, state: str) -> None:
    """This run ends (`finished` or `failed`): its record lists every file the dir holds."""
    record = read_record(folder) or {"convscope": 1, "started": time.time()}
    record.update(state=state, ended=time.time(), files=sorted(files_in(folder)))
    _write_record(folder, record)


def _write_record(folder: Path, record: dict) -> None:
    # rundir is layer 0 (files.write_text is a sibling): the same temp-then-rename, inline
    final = Path(folder) / RECORD
    tmp = final.with_name(RECORD_TMP)
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, final)


def files_in(folder: Path) -> dict[str, Path]:
    """Every file (and link) below `folder` by its posix path relative to it, bookkeeping left
    out; links are not followed."""
    folder = Path(folder)
    found: dict[str, Path] = {}
    for top, dirs, names in os.walk(folder):
        top_path = Path(top)
        if top_path == folder:
            dirs[:] = [d for d in dirs if d not in BOOKKEEPING]
            names = [n for n in names if n not in BOOKKEEPING]
        for name in names + [d for d in dirs if (top_path / d).is_symlink()]:
            path = top_path / name
            found[path.relative_to(folder).as_posix()] = path
    return found


# --- what replace=true may remove ---------------------------------------------------------------

def foreign_files(folder: Path) -> list[str]:
    """Files in `folder` (and in a `.replaced/` left behind) that no convscope run accounts for:
    replace=true must not remove them. Sorted paths relative to `folder`."""
    folder = Path(folder)
    outside, record = files_in(folder), read_record(folder)
    aside_dir = folder / REPLACED
    if not aside_dir.is_dir():
        return _unaccounted(outside, record)
    inside, aside_record = files_in(aside_dir), read_record(aside_dir)
    in_aside = [f"{REPLACED}/{name}" for name in _unaccounted(inside, aside_record)]
    if aside_record is not None and record is None:  # cut while moving: one run in two places
        return sorted(_unaccounted({**outside, **inside}, aside_record))
    return sorted(_unaccounted(outside, record) + in_aside)


def _unaccounted(files: dict[str, Path], record: Optional[dict]) -> list[str]:
    if record is None:
        return sorted(files)
    listed = record.get("files")
    if isinstance(listed, list):
        owned = set(listed) | WRITTEN_AFTER_SEAL
        return sorted(name for name in files if name not in owned)
    started = record.get("started")
    if not isinstance(started, (int, float)):
        return sorted(files)
    return sorted(name for name, path in files.items()
                  if name not in WRITTEN_AFTER_SEAL and _mtime(path) < started - CLOCK_SLACK_S)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: nothing to keep


# --- setting the previous run aside -------------------------------------------------------------

def set_aside(folder: Path) -> None:
    """Move the run in `folder` into `.replaced/` (renames, no copies): the record first."""
    folder = Path(folder)
    aside = folder / REPLACED
    aside.mkdir()
    if (folder / RECORD).exists():
        (folder / RECORD).rename(aside / RECORD)
    for entry in list(folder.iterdir()):
        if entry.name not in BOOKKEEPING:
            entry.rename(aside / entry.name)


def recover_aside(folder: Path) -> Optional[str]:
    """Settle a `.replaced/` that a replacing run left (killed, or failed in this process): put
    the old run back, or drop it if the new run had finished. What was done, in words, or None
    when there was nothing to settle."""
    folder = Path(folder)
    remove_entry(folder / DROPPED)
    remove_entry(folder / RECORD_TMP)
    aside = folder / REPLACED
    if not aside.is_dir():
        return None
    record = read_record(folder)
    if read_record(aside) is not None and record is not None:
        if isinstance(record.get("files"), list):
            drop_aside(folder)
            return "the run it had replaced was dropped: the new run had finished"
        _clear_outside(folder)  # the killed run's own files (foreign_files checked them)
    _move_back(folder)
    return "the run it had set aside was put back"


def drop_aside(folder: Path) -> None:
    """The new run finished: the previous run goes for good."""
    dropped = Path(folder) / DROPPED
    remove_entry(dropped)
    (Path(folder) / REPLACED).rename(dropped)
    remove_entry(dropped)


def _clear_outside(folder: Path) -> None:
    for entry in list(folder.iterdir()):
        if entry.name not in (LOCK, REPLACED):
            remove_entry(entry)  # the record too: a kill from here on reads as "cut while moving"


def _move_back(folder: Path) -> None:
    aside = folder / REPLACED
    entries: Iterable[Path] = sorted(aside.iterdir(), key=lambda p: p.name == RECORD)
    for entry in entries:  # the record last: a kill here leaves the "cut while moving" state
        entry.rename(folder / entry.name)
    aside.rmdir()


def remove_entry(path: Path) -> None:
    """A file, link or folder, whichever it is; nothing when it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
