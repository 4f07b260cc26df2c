"""Corpora: `data.path` naming a folder or a glob runs the pipeline once per audio file.

Each file gets its own subfolder of the run dir, named after its path relative to the folder (or
to the glob's fixed prefix), so two `take1.wav` in different folders can't collide. A file that
fails is recorded with its error and the others go on; the summary (summary.csv, summary.json and
a table in the log) says what happened to each, and a run with failures ends in ConvscopeError,
which the entry script turns into one `error:` line and exit status 2.

`data.shard` / `data.num_shards` take every num_shards-th file of the sorted list, starting at
shard, so N jobs (a Hydra sweep over data.shard) split a corpus deterministically.
"""

from __future__ import annotations

import glob
import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from convscope.audio.segment import resolve_path
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.files import csv_cell, shape_cell, write_csv, write_json
from convscope.report.page import RunCommand
from convscope.rundir import RunDir

log = logging.getLogger("convscope")
# What soundfile (libsndfile) and librosa's audioread fallback read; other files are not audio.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                  ".au", ".snd", ".caf", ".w64", ".rf64", ".m4a")
GLOB_CHARS = re.compile(r"[*?\[]")


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
    file when it exists)."""
    path = resolve_path(data_path, base_dir)
    return path.is_dir() or (not path.exists() and bool(GLOB_CHARS.search(data_path)))


def list_corpus(data_path: str, base_dir: Path) -> list[CorpusFile]:
    """Every audio file under the folder (recursively) or matching the glob, sorted by path."""
    path = resolve_path(data_path, base_dir)
    if path.is_dir():
        root = path
        found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
    else:
        root = _fixed_prefix(path)
        found = [Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()]
    relatives = sorted(p.relative_to(root).as_posix() for p in found)
    return [CorpusFile(root / rel, rel, name) for rel, name in zip(relatives, safe_names(relatives))]


def _fixed_prefix(pattern: Path) -> Path:
    """The longest leading part of a glob pattern without wildcards."""
    parts = []
    for part in pattern.parts:
        if GLOB_CHARS.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def safe_names(relatives: list[str]) -> list[str]:
    """Folder names from relative paths: 'a b/c.wav' -> 'a_b__c.wav', unique."""
    names, seen = [], set()
    for rel in relatives:
        base = "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in rel.split("/"))
        base = base.lstrip(".") or "file"
        name, n = base, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def shard(files: list[CorpusFile], index: int, count: int) -> list[CorpusFile]:
    return files[index::count]


def run_corpus(cfg: RunConfig, out_dir: Path, base_dir: Path,
               command: Optional[RunCommand] = None) -> list[FileOutcome]:
    """Run every file of this shard into out_dir/<subdir>; write and log the summary."""
    files = list_corpus(cfg.data.path, base_dir)
    if not files:
        path = resolve_path(cfg.data.path, base_dir)
        what = "is a directory with no audio files in it" if path.is_dir() else \
            "matches no audio files"
        raise ConvscopeError(f"data.path: {path} {what} (looked for {', '.join(AUDIO_SUFFIXES)})")
    mine = shard(files, cfg.data.shard, cfg.data.num_shards)
    log.info("corpus: %d audio files in %s; shard %d of %d: %d files", len(files), cfg.data.path,
             cfg.data.shard, cfg.data.num_shards, len(mine))
    from tqdm import tqdm  # only when there are files to run

    # disable=None: a bar on a terminal only, not in logs or cluster jobs' output
    outcomes = [run_file(cfg, item, out_dir, base_dir, command)
                for item in tqdm(mine, desc="corpus", unit="file", disable=None if len(mine) > 1
                                 else True)]
    write_summary(out_dir, outcomes)
    log.info("corpus summary (%s):\n%s", RunDir(out_dir).summary_csv, format_summary(outcomes))
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        raise ConvscopeError(
            f"{len(failed)} of {len(outcomes)} files failed (first: {failed[0].file}: "
            f"{failed[0].error}); summary: {RunDir(out_dir).summary_csv}")
    return outcomes


def run_file(cfg: RunConfig, item: CorpusFile, out_dir: Path, base_dir: Path,
             command: Optional[RunCommand] = None) -> FileOutcome:
    from convscope.pipeline.single import run  # torch: listing a corpus does not need it

    file_cfg = replace(cfg, data=replace(cfg.data, path=str(item.path)))
    log.info("corpus: %s -> %s/", item.relative, item.subdir)
    started = time.perf_counter()
    try:
        result = run(file_cfg, out_dir / item.subdir, base_dir, command)
    except Exception as exc:  # one bad file (or a bug it triggers) must not stop the others
        error = str(exc) if isinstance(exc, ConvscopeError) else f"{type(exc).__name__}: {exc}"
        log.error("corpus: %s failed: %s", item.relative, error,
                  exc_info=not isinstance(exc, ConvscopeError))
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
