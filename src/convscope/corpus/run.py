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

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from convscope.audio.segment import resolve_path
from convscope.config.checks import usable_cores
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.files import atomic_path, csv_cell, shape_cell, write_csv, write_json
from convscope.oserrors import describe_os_error

# is_corpus, list_corpus, safe_names, scan_corpus: imported from here by callers and tests
from convscope.corpus.scan import (  # noqa: F401
    AUDIO_SUFFIXES,
    CorpusFile,
    is_corpus,
    is_dir,
    list_corpus,
    safe_names,
    scan_corpus,
    shard,
    skipped_text,
)
from convscope.report.corpus import write_corpus_index
from convscope.report.page import RunCommand
from convscope.rundir import RunDir

log = logging.getLogger("convscope")


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


def run_corpus(cfg: RunConfig, out_dir: Path, base_dir: Path,
               command: Optional[RunCommand] = None) -> list[FileOutcome]:
    """Run every file of this shard into out_dir/<subdir>; write and log the summary."""
    scan = scan_corpus(cfg.data.path, base_dir)
    files = scan.files
    skipped = skipped_text(scan)
    if skipped:
        log.info("corpus: %s", skipped)
    if not files:
        path = resolve_path(cfg.data.path, base_dir)
        what = "is a directory with no audio files in it" if is_dir(path) else \
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
    shared = shares_weights(cfg)
    per_file = replace(cfg, save=replace(cfg.save, weights=False)) if shared else cfg
    tasks = [FileTask(item, index < drawn) for index, item in enumerate(mine)]
    outcomes = run_files(per_file, tasks, workers, out_dir, base_dir, command, drawn)
    first_ok = next((o for o in outcomes if o.status == "ok"), None)
    if shared and first_ok is not None:
        write_shared_weights(cfg, out_dir, first_ok.input_shape)
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


def run_files(cfg: RunConfig, tasks: list[FileTask], workers: int, out_dir: Path,
              base_dir: Path, command: Optional[RunCommand], drawn: int) -> list[FileOutcome]:
    """Each task's outcome, in their order: in this process, or by `workers` processes."""
    from tqdm import tqdm  # only when there are files to run

    # disable=None: a bar on a terminal only, not in logs or cluster jobs' output
    bar = tqdm(total=len(tasks), desc="corpus", unit="file",
               disable=None if len(tasks) > 1 else True)
    try:
        if workers == 1:
            outcomes = []
            for task in tasks:
                outcomes.append(run_file(cfg, task.item, out_dir, base_dir, command,
                                         task.figures))
                bar.update()
            return outcomes
        from convscope.corpus.workers import run_in_workers  # multiprocessing

        return run_in_workers(run_task, (worker_config(cfg, workers), out_dir, base_dir,
                                         command), tasks, workers, out_dir, crashed_outcome,
                              bar.update, slow=drawn)
    finally:
        bar.close()


def shares_weights(cfg: RunConfig) -> bool:
    """Every file's stack is the same seeded build: a config stack (model.layers) on mono audio,
    whose layer arguments, hence weights, do not depend on the file's length. Then weights.pt
    is written once, at the corpus root, instead of in each file's folder (a vocoder preset's
    is tens of MB: a copy per file would fill a disk)."""
    return cfg.save.weights and cfg.model.target is None and cfg.data.mono


def write_shared_weights(cfg: RunConfig, out_dir: Path, input_shape: list[int]) -> None:
    """The corpus's weights.pt: the stack every file ran, built as each file's run built it
    (planned for one of them, `input_shape`; the same seed)."""
    import torch  # torch and the stack: a corpus that ran no file needs neither

    from convscope.stack.plan import plan_stack  # (torch)
    from convscope.stack.preset_weights import build_with_weights, weights_to_save  # (torch)

    plans = plan_stack(cfg.model.layers, tuple(input_shape), causal=cfg.model.causal)
    # through a Python file, as stages.finish_run: a full disk is then an OSError naming it
    with atomic_path(RunDir(out_dir).weights) as tmp, open(tmp, "wb") as handle:
        stack = build_with_weights(plans, cfg.seed, cfg.model)
        torch.save(weights_to_save(stack, cfg.model), handle)
    log.info("corpus: weights.pt (the same stack for every file) in %s", out_dir)


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
