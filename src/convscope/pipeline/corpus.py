"""Corpora: `data.path` naming a folder or a glob runs the pipeline once per audio file.

Each file gets its own subfolder of the run dir, named after its path relative to the folder (or
to the glob's fixed prefix), so two `take1.wav` in different folders can't collide. A file that
fails is recorded with its error and the others go on; the summary (summary.csv, summary.json, a
table in the log and, with `report`, index.html linking each file's page) says what happened to
each, and a run with failures ends in ConvscopeError, which the entry script turns into one
`error:` line and exit status 2.

`data.shard` / `data.num_shards` take every num_shards-th file of the sorted list, starting at
shard, so N jobs (a Hydra sweep over data.shard) split a corpus deterministically.
"""

from __future__ import annotations

import errno
import functools
import glob
import hashlib
import logging
import os
import re
import stat
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from convscope.audio.segment import resolve_path
from convscope.config.checks import usable_cores
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.files import csv_cell, shape_cell, write_csv, write_json
from convscope.oserrors import describe_os_error
from convscope.report.corpus import write_corpus_index
from convscope.report.page import RunCommand
from convscope.rundir import RunDir

log = logging.getLogger("convscope")
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


@dataclass
class FileOutcome:
    file: str
    subdir: str
    status: str  # "ok" or "error"
    duration: Optional[float]  # seconds of audio processed
    input_shape: Optional[list[int]]
    output_shape: Optional[list[int]]
    output_rate: Optional[int]
    seconds: float  # wall time
    error: str = ""


def is_corpus(data_path: str, base_dir: Path) -> bool:
    """A folder or a glob pattern (a file whose name merely contains * or ? still counts as one
    file when it exists). A path that cannot be looked at (too long, a loop, no permission) is
    not a corpus: the file loader words what is wrong with it."""
    path = resolve_path(data_path, base_dir)
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as exc:
        return exc.errno in (errno.ENOENT, errno.ENOTDIR) and bool(GLOB_CHARS.search(data_path))


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class CorpusScan:
    files: list[CorpusFile]
    run_dirs: list[str]  # convscope's own run dirs under the folder, skipped (relative paths)
    hidden: list[str]  # dot-folders skipped (.venv, .git, .hydra ...)


def list_corpus(data_path: str, base_dir: Path) -> list[CorpusFile]:
    """Every audio file under the folder (recursively) or matching the glob, sorted by path."""
    return scan_corpus(data_path, base_dir).files


def scan_corpus(data_path: str, base_dir: Path) -> CorpusScan:
    """The corpus's files, and what the scan left out: convscope's own run dirs (so a corpus of
    a project folder does not take in its earlier outputs, growing with every run), hidden
    folders and files (a killed run's .partial WAVs, macOS's ._ files, .venv's test audio)."""
    path = resolve_path(data_path, base_dir)
    run_dirs: list[str] = []
    hidden: list[str] = []
    if _is_dir(path):
        root = path
        found = _walk_audio(root, run_dirs, hidden)
    else:
        root = _fixed_prefix(path)
        found = []
        is_run_dir = functools.lru_cache(maxsize=None)(RunDir.is_run_dir)
        for match in glob.glob(str(path), recursive=True):
            inside = _run_dir_above(Path(match), root, is_run_dir)
            if inside is not None:
                if inside not in run_dirs:
                    run_dirs.append(inside)
            elif Path(match).is_file():
                found.append(Path(match))
    relatives = sorted(p.relative_to(root).as_posix() for p in found)
    files = [CorpusFile(root / rel, rel, name)
             for rel, name in zip(relatives, safe_names(relatives))]
    return CorpusScan(files, sorted(run_dirs), sorted(hidden))


def _walk_audio(root: Path, run_dirs: list[str], hidden: list[str]) -> list[Path]:
    """Audio files under root, following symlinked folders once each (a link to an ancestor
    must not loop), pruning run dirs and dot-folders; an unreadable folder is an error, not a
    silent gap in the corpus."""
    unreadable: list[OSError] = []
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root, onerror=unreadable.append, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            subfolders[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        keep = []
        for name in sorted(subfolders):
            relative = (Path(folder) / name).relative_to(root).as_posix()
            if name.startswith("."):
                hidden.append(relative)
            elif RunDir.is_run_dir(Path(folder) / name):
                run_dirs.append(relative)
            else:
                keep.append(name)
        subfolders[:] = keep
        found += [Path(folder) / name for name in names if not name.startswith(".")
                  and Path(name).suffix.lower() in AUDIO_SUFFIXES
                  and (Path(folder) / name).is_file()]
    if unreadable:
        exc = unreadable[0]
        raise ConvscopeError(f"data.path: cannot list the folder {exc.filename} "
                             f"({exc.strerror}); make it readable or point data.path below it")
    return found


def _run_dir_above(match: Path, root: Path, is_run_dir) -> Optional[str]:
    """The run dir (relative to root) that a glob match lies in, below root, if any."""
    for folder in reversed(match.parents):
        if root in folder.parents and is_run_dir(folder):
            return folder.relative_to(root).as_posix()
    return None


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


def _skipped(scan: CorpusScan) -> str:
    """What the scan left out, for the log and for the error of a corpus left empty by it."""
    parts = [f"{len(names)} {what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
             for names, what in ((scan.run_dirs, "convscope run dirs"),
                                 (scan.hidden, "hidden folders")) if names]
    return f"skipped {' and '.join(parts)}" if parts else ""


def shard(files: list[CorpusFile], index: int, count: int) -> list[CorpusFile]:
    return files[index::count]


def run_corpus(cfg: RunConfig, out_dir: Path, base_dir: Path,
               command: Optional[RunCommand] = None) -> list[FileOutcome]:
    """Run every file of this shard into out_dir/<subdir>; write and log the summary."""
    scan = scan_corpus(cfg.data.path, base_dir)
    files = scan.files
    skipped = _skipped(scan)
    if skipped:
        log.info("corpus: %s", skipped)
    if not files:
        path = resolve_path(cfg.data.path, base_dir)
        what = "is a directory with no audio files in it" if _is_dir(path) else \
            "matches no audio files"
        raise ConvscopeError(f"data.path: {path} {what} (looked for {', '.join(AUDIO_SUFFIXES)})"
                             + (f"; {skipped}" if skipped else ""))
    mine = shard(files, cfg.data.shard, cfg.data.num_shards)
    if not mine:
        raise ConvscopeError(
            f"data.shard: shard {cfg.data.shard} of data.num_shards={cfg.data.num_shards} gets "
            f"no files: the corpus {cfg.data.path} has {len(files)}; use at most {len(files)} "
            "shards")
    workers = worker_count(cfg.corpus.workers, len(mine))
    drawn = figures_count(cfg.corpus.figures_files, len(mine))
    log.info("corpus: %d audio files in %s; shard %d of %d: %d files; %d worker process%s; "
             "figures and pages for %s", len(files), cfg.data.path, cfg.data.shard,
             cfg.data.num_shards, len(mine), workers, "es" if workers != 1 else "",
             "every file" if drawn == len(mine) else f"the first {drawn}")
    from tqdm import tqdm  # only when there are files to run

    # disable=None: a bar on a terminal only, not in logs or cluster jobs' output
    bar = tqdm(total=len(mine), desc="corpus", unit="file",
               disable=None if len(mine) > 1 else True)
    tasks = [FileTask(item, index < drawn) for index, item in enumerate(mine)]
    try:
        if workers == 1:
            outcomes = []
            for task in tasks:
                outcomes.append(run_file(cfg, task.item, out_dir, base_dir, command,
                                         task.figures))
                bar.update()
        else:
            from convscope.pipeline.corpus_workers import run_in_workers  # multiprocessing

            outcomes = run_in_workers(run_task, (worker_config(cfg, workers), out_dir, base_dir,
                                                 command), tasks, workers, out_dir,
                                      crashed_outcome, bar.update, slow=drawn)
    finally:
        bar.close()
    write_summary(out_dir, outcomes)
    if cfg.report:  # before a failure is raised: the page shows each file's error
        write_corpus_index(out_dir, None if drawn == len(mine) else drawn)
    log.info("corpus summary (%s):\n%s", RunDir(out_dir).summary_csv, format_summary(outcomes))
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        raise ConvscopeError(
            f"{len(failed)} of {len(outcomes)} files failed (first: {failed[0].file}: "
            f"{failed[0].error}); summary: {RunDir(out_dir).summary_csv}")
    return outcomes


@dataclass(frozen=True)
class FileTask:
    item: CorpusFile
    figures: bool  # plots and the file's index.html (corpus.figures_files)


def worker_count(workers: int, files: int) -> int:
    """corpus.workers as a process count: 0 is every usable core; never more than the files."""
    return max(1, min(workers or usable_cores(), files))


def figures_count(figures_files: Optional[int], files: int) -> int:
    """How many of the shard's first files get figures and pages (-1 or None: all)."""
    return files if figures_files is None or figures_files < 0 else min(figures_files, files)


def worker_config(cfg: RunConfig, workers: int) -> RunConfig:
    """Each worker's config: 1 / workers of the run's memory budget (the pre-flight check then
    bounds every worker, so that all of them together stay within the limits)."""
    limits = cfg.limits
    return replace(cfg, limits=replace(
        limits, memory_fraction=limits.memory_fraction / workers,
        memory_gb=None if limits.memory_gb is None else limits.memory_gb / workers))


def file_config(cfg: RunConfig, item: CorpusFile, figures: bool) -> RunConfig:
    """One file's run: its path, and figures and its page only if it is among the first few."""
    data = replace(cfg.data, path=str(item.path))
    if figures:
        return replace(cfg, data=data)
    return replace(cfg, data=data, plots=replace(cfg.plots, enabled=False), report=False)


def run_task(cfg: RunConfig, out_dir: Path, base_dir: Path, command: Optional[RunCommand],
             task: FileTask) -> FileOutcome:
    """What a worker process runs per file (module-level: sent to it by reference)."""
    return run_file(cfg, task.item, out_dir, base_dir, command, task.figures)


def crashed_outcome(task: FileTask, error: str, seconds: float) -> FileOutcome:
    """The row of a file whose worker process died under it (a segfault, the OOM killer)."""
    return FileOutcome(task.item.relative, task.item.subdir, "error", None, None, None, None,
                       round(seconds, 3), error)


def run_file(cfg: RunConfig, item: CorpusFile, out_dir: Path, base_dir: Path,
             command: Optional[RunCommand] = None, figures: bool = True) -> FileOutcome:
    # torch: listing a corpus does not need it
    from convscope.pipeline.single import run
    from convscope.stack.backends import native_kernels

    file_cfg = file_config(cfg, item, figures)
    log.info("corpus: %s -> %s/", item.relative, item.subdir)
    started = time.perf_counter()
    try:
        with native_kernels():  # each file a new length: oneDNN would compile kernels per file
            result = run(file_cfg, out_dir / item.subdir, base_dir, command)
    except Exception as exc:  # one bad file (or a bug it triggers) must not stop the others
        worded = isinstance(exc, (ConvscopeError, OSError))  # not a bug: no traceback
        error = (str(exc) if isinstance(exc, ConvscopeError) else describe_os_error(exc)
                 if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
        log.error("corpus: %s failed: %s", item.relative, error, exc_info=not worded)
        return FileOutcome(item.relative, item.subdir, "error", None, None, None, None,
                           round(time.perf_counter() - started, 3), " ".join(error.split()))
    shapes = result.shapes
    return FileOutcome(item.relative, item.subdir, "ok",
                       round(shapes["input"]["end"] - shapes["input"]["start"], 6),
                       shapes["input"]["shape"], shapes["output"]["shape"],
                       shapes["output"]["sample_rate"], round(time.perf_counter() - started, 3))


SUMMARY_COLUMNS = ("file", "subdir", "status", "duration", "input_shape", "output_shape",
                   "output_rate", "seconds", "error")


def write_summary(out_dir: Path, outcomes: list[FileOutcome]) -> None:
    rows = [asdict(o) for o in outcomes]
    write_json(RunDir(out_dir).summary_json, rows)
    write_csv(RunDir(out_dir).summary_csv, rows, SUMMARY_COLUMNS)


def format_summary(outcomes: list[FileOutcome]) -> str:
    header = ("file", "duration s", "output", "seconds", "status")
    body = [(o.file, csv_cell(o.duration), shape_cell(o.output_shape), f"{o.seconds:.2f}",
             o.status if o.status == "ok" else f"error: {o.error}") for o in outcomes]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]])
             for line in [header, *body]]
    ok = sum(o.status == "ok" for o in outcomes)
    lines.append(f"{ok} ok, {len(outcomes) - ok} failed, {sum(o.seconds for o in outcomes):.1f} s")
    return "\n".join(lines)
