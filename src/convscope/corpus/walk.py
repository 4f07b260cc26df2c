"""Walking a corpus's folders, bounded: each real folder once (symlink loops end), each file
once however many paths reach it, pseudo-filesystems left out, and a limit on what one scan may
look at, so `data.path='/**'` is refused instead of walking the whole machine.

A glob is matched here segment by segment (Python's glob follows a symlink to an ancestor until
the path is too long: a file under such a link came out 41 times) with glob's rules: `*`, `?`
and `[...]` within one name, `**` any number of folders, and names starting with "." matched
only by a segment that starts with "." itself.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable, Optional

from convscope.errors import ConvscopeError

# Folders and files one scan may look at. LibriSpeech's 960 hours are about 300,000 entries;
# a scan past a million is a pattern that reaches far more than a corpus (`/**`).
MAX_SCANNED_ENTRIES = 1_000_000
PROGRESS_S = 2.0  # seconds between progress lines of a long scan on a terminal
# Kernel views, not files: reading /proc or /sys "audio" blocks or never ends, /dev holds devices
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
# ... except /dev/shm, a memory-backed filesystem (tmpfs) where files may well be kept
REAL_INSIDE_PSEUDO = ("/dev/shm",)

# A folder's state in the walk: the glob positions still to be matched below it (GlobSegments);
# None in a folder corpus, which takes every audio file
FolderState = Optional[frozenset]


@dataclass
class Walked:
    files: list[tuple[str, Path]] = field(default_factory=list)  # (relative, path), sorted
    run_dirs: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    pseudo: list[str] = field(default_factory=list)  # pseudo-filesystem folders left out


class GlobSegments:
    """A glob below its fixed prefix as a small automaton over path names: a state is the set
    of positions in `parts` still to be matched (len(parts): matched in full)."""

    def __init__(self, parts: tuple[str, ...]):
        self.parts = parts
        self.start = self._closure({0})

    def _closure(self, states: set[int]) -> frozenset:
        """`**` also matches no folder at all: whoever waits at one may step past it."""
        todo, done = list(states), set(states)
        while todo:
            i = todo.pop()
            if i < len(self.parts) and self.parts[i] == "**" and i + 1 not in done:
                done.add(i + 1)
                todo.append(i + 1)
        return frozenset(done)

    def step(self, states: frozenset, name: str) -> frozenset:
        moved = set()
        for i in states:
            if i == len(self.parts):
                continue
            part = self.parts[i]
            if part == "**":
                if not name.startswith("."):
                    moved.add(i)
            elif fnmatchcase(name, part) and (part.startswith(".") or not name.startswith(".")):
                moved.add(i + 1)
        return self._closure(moved)

    def matches(self, states: frozenset) -> bool:
        return len(self.parts) in states

    def alive(self, states: frozenset) -> bool:
        """Something below a folder in this state could still match."""
        return any(i < len(self.parts) for i in states)


@dataclass(frozen=True)
class WalkRules:
    """What a walk takes: `take_file(state, name)`, and `enter(state, name)`: the state of a
    subfolder, False where it is not entered. `start`: the root's state. `hidden_folders`:
    dot-folders are skipped and recorded (a folder corpus); `unreadable_is_error`: a folder that
    cannot be listed is an error (a folder corpus), else passed over as glob does."""

    take_file: Callable[[FolderState, str], bool]
    enter: Callable[[FolderState, str], "FolderState | bool"]
    start: FolderState
    hidden_folders: bool
    unreadable_is_error: bool


def walk_corpus(root: Path, data_path: str, rules: WalkRules,
                is_run_dir: Callable[[Path], bool]) -> Walked:
    """Files under `root` as `rules` choose them, convscope's run dirs left out. A folder is
    entered once per (real folder, state); a file is taken once per real file, under the first
    of its paths in sorted order."""
    walked = Walked()
    seen_folders: set[tuple[int, int, FolderState]] = set()
    seen_files: set[tuple[int, int]] = set()
    scanned = 0
    stack: list[tuple[Path, str, FolderState]] = [(root, "", rules.start)]
    candidates: list[tuple[str, Path, tuple[int, int]]] = []
    progress = ScanProgress()
    while stack:
        folder, relative, state = stack.pop()
        pseudo = _pseudo_filesystem(folder)
        if pseudo is not None:
            if pseudo not in walked.pseudo:
                walked.pseudo.append(pseudo)
            continue
        try:
            info = os.stat(folder)
            key = (info.st_dev, info.st_ino, state)
            if key in seen_folders:  # a symlink back to a folder already walked in this state
                continue
            seen_folders.add(key)
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            if rules.unreadable_is_error:
                raise ConvscopeError(
                    f"data.path: cannot list the folder {exc.filename or folder} "
                    f"({exc.strerror}); make it readable or point data.path below it") from exc
            continue
        scanned += 1 + len(entries)
        progress.update(scanned, len(candidates))
        if scanned > MAX_SCANNED_ENTRIES:
            raise ConvscopeError(
                f"data.path: {data_path} reaches more than {MAX_SCANNED_ENTRIES:,} folders and "
                f"files (stopped in {folder}); point data.path at the folder that holds the "
                "audio, or a glob below it")
        subfolders = []
        for entry in entries:
            child = f"{relative}/{entry.name}" if relative else entry.name
            if _is_dir(entry):
                if rules.hidden_folders and entry.name.startswith("."):
                    walked.hidden.append(child)
                    continue
                inner = rules.enter(state, entry.name)
                if inner is False:
                    continue
                if is_run_dir(Path(entry.path)):
                    walked.run_dirs.append(child)
                    continue
                subfolders.append((Path(entry.path), child, inner))
            elif rules.take_file(state, entry.name) and (identity := _file_identity(entry)):
                candidates.append((child, Path(entry.path), identity))
        stack.extend(reversed(subfolders))  # depth first, in name order
    progress.done()
    for relative, path, identity in sorted(candidates):
        if identity not in seen_files:
            seen_files.add(identity)
            walked.files.append((relative, path))
    walked.run_dirs.sort()
    walked.hidden.sort()
    return walked


class ScanProgress:
    """On a terminal, a scan that takes a while says how far it got: one line on stderr,
    rewritten every PROGRESS_S seconds (a pipe or a log gets nothing)."""

    def __init__(self, terminal: Optional[bool] = None) -> None:
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.next = time.monotonic() + PROGRESS_S
        self.shown = False

    def update(self, scanned: int, files: int) -> None:
        if self.terminal and time.monotonic() >= self.next:
            self.next, self.shown = time.monotonic() + PROGRESS_S, True
            print(f"\rcorpus: scanning, {scanned:,} folders and files seen, {files:,} audio "
                  "files so far", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:  # the log's next line starts on a line of its own
            print(file=sys.stderr, flush=True)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symlinks: a linked folder is walked (once)
    except OSError:
        return False


def _file_identity(entry: os.DirEntry) -> Optional[tuple[int, int]]:
    """(device, inode) of a regular file (through symlinks); None for anything else."""
    try:
        if not entry.is_file():
            return None
        info = entry.stat()
    except OSError:  # a dangling link: no file to take
        return None
    return (info.st_dev, info.st_ino)


def _pseudo_filesystem(folder: Path) -> Optional[str]:
    """The pseudo-filesystem `folder` lies in (through any links), or None."""
    real = os.path.realpath(folder)
    if any(_inside(real, root) for root in REAL_INSIDE_PSEUDO):
        return None
    return next((root for root in PSEUDO_FILESYSTEMS if _inside(real, root)), None)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)
