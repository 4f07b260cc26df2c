"""Which files a corpus is: `data.path` naming a folder (every audio file under it, recursively)
or a glob, sorted by path, each with its own subfolder name in the run dir; and the shard of
that list one job takes (convscope.corpus.run runs them)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from convscope.audio.segment import resolve_path
from convscope.errors import ConvscopeError
from convscope.corpus.walk import GlobSegments, WalkRules, walk_corpus
from convscope.rundir import RunDir

# What soundfile (libsndfile) and librosa's audioread fallback read; other files are not audio.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                  ".au", ".snd", ".caf", ".w64", ".rf64", ".m4a")
GLOB_CHARS = re.compile(r"[*?\[]")
NAME_BYTES = 200  # per-file folder names: under the usual 255-byte limit, with room for "-2"


@dataclass(frozen=True)
class CorpusFile:
    path: Path  # absolute
    relative: str  # as listed in the summary
    subdir: str  # the file's folder in the run dir


def is_corpus(data_path: str, base_dir: Path) -> bool:
    """A folder or a glob pattern (a file whose name merely contains * or ? still counts as one
    file when it exists). A path that cannot be looked at (too long, a loop, no permission) is
    not a corpus: the file loader words what is wrong with it."""
    path = resolve_path(data_path, base_dir)
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as exc:
        return exc.errno in (errno.ENOENT, errno.ENOTDIR) and bool(GLOB_CHARS.search(data_path))


def is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class CorpusScan:
    files: list[CorpusFile]
    run_dirs: list[str]  # convscope's own run dirs under the folder, skipped (relative paths)
    hidden: list[str]  # dot-folders skipped (.venv, .git, .hydra ...)
    pseudo: list[str] = field(default_factory=list)  # /proc, /sys, /dev reached and skipped


def list_corpus(data_path: str, base_dir: Path) -> list[CorpusFile]:
    """Every audio file under the folder (recursively) or matching the glob, sorted by path."""
    return scan_corpus(data_path, base_dir).files


def scan_corpus(data_path: str, base_dir: Path) -> CorpusScan:
    """The corpus's files, and what the scan left out: convscope's own run dirs (so a corpus of
    a project folder does not take in its earlier outputs, growing with every run), hidden
    folders and files (a killed run's .partial WAVs, macOS's ._ files, .venv's test audio) and
    pseudo-filesystems. Each file once however it is reached; bounded (corpus_walk)."""
    path = resolve_path(data_path, base_dir)
    if is_dir(path):
        root = path
        rules = WalkRules(take_file=_audio_name, enter=lambda state, name: None, start=None,
                          hidden_folders=True, unreadable_is_error=True)
    else:
        root = _fixed_prefix(path)
        pattern = GlobSegments(path.relative_to(root).parts)
        rules = WalkRules(
            take_file=lambda state, name: pattern.matches(pattern.step(state, name)),
            enter=lambda state, name: _alive_or_false(pattern, pattern.step(state, name)),
            start=pattern.start, hidden_folders=False, unreadable_is_error=False)
    if root == Path(root.anchor):  # `/**` listed 125,407 files of this machine in 8 s
        raise ConvscopeError(f"data.path: {data_path} is a corpus of the whole filesystem, from "
                             f"{root.anchor}; point data.path at the folder that holds the audio")
    walked = walk_corpus(root, data_path, rules, RunDir.is_run_dir)
    relatives = [relative for relative, _ in walked.files]
    files = [CorpusFile(found, rel, name)
             for (rel, found), name in zip(walked.files, safe_names(relatives))]
    return CorpusScan(files, walked.run_dirs, walked.hidden, walked.pseudo)


def _audio_name(state, name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in AUDIO_SUFFIXES


def _alive_or_false(pattern: GlobSegments, state: frozenset):
    return state if pattern.alive(state) else False


def _fixed_prefix(pattern: Path) -> Path:
    """The longest leading part of a glob pattern without wildcards."""
    parts = []
    for part in pattern.parts:
        if GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def safe_names(relatives: list[str]) -> list[str]:
    """Folder names from relative paths: 'a b/c.wav' -> 'a_b__c.wav', unique, never one of
    RunDir's top-level names ('summary.json' -> 'summary.json-2')."""
    # the corpus run dir's own files and folders (summary.json, index.html, audio, ...) are
    # taken: an input named like one gets a -2 like any other clash
    names, seen = [], set(RunDir.TOP_LEVEL)
    for rel in relatives:
        base = "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in rel.split("/"))
        base = base.lstrip(".") or "file"
        if len(base) > NAME_BYTES:  # deep paths joined by __ outgrow one folder name (ASCII)
            base = f"{base[:NAME_BYTES - 11]}-{hashlib.sha1(rel.encode()).hexdigest()[:10]}"
        name, n = base, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def skipped_text(scan: CorpusScan) -> str:
    """What the scan left out, for the log and for the error of a corpus left empty by it."""
    parts = [f"{len(names)} {what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
             for names, what in ((scan.run_dirs, "convscope run dirs"),
                                 (scan.hidden, "hidden folders"),
                                 (scan.pseudo, "pseudo-filesystems, not audio")) if names]
    return f"skipped {' and '.join(parts)}" if parts else ""


def shard(files: list[CorpusFile], index: int, count: int) -> list[CorpusFile]:
    return files[index::count]
