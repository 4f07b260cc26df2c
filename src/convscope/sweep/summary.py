"""What a multirun left on disk, read once: the job records behind summary.csv, summary.png and
the sweep's index.html (convscope.sweep.index).

The SweepReport callback (convscope.sweep.callbacks, registered in configs/run.yaml) runs in the
process that launched the sweep, after every job has finished, whatever the launcher (basic, joblib,
submitit local or SLURM): `scan_sweep` reads what each job left in its own directory
(.hydra/overrides.yaml, shapes.json, metrics.json, error.json, a corpus job's summary.json), so it
needs nothing from the jobs' processes. A job dir is one with Hydra's .hydra/ record; a corpus
job's per-file subfolders are part of their job, not jobs. A job without shapes.json (or a corpus
summary) did not finish.

A job that meets bad input (ConvscopeError) in a sweep records it in its error.json and returns,
so the other jobs go on (`sweep_job_errors_recorded`); the summary lists it, and the entry script
ends the sweep with one `error:` line and exit status 2 (`failed_jobs_message`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from convscope.files import shape_cell, write_csv
from convscope.plots.sweep import plot_summary
from convscope.rundir import RunDir

log = logging.getLogger("convscope")
FIXED_COLUMNS = ("job", "overrides", "status", "input_shape", "output_shape", "output_rate")


@dataclass(frozen=True)
class SweepJob:
    """One job of a sweep as found on disk: where it is, what changed, what came out."""

    directory: Path
    number: Optional[int]  # from the folder name (Hydra's subdir is ${hydra.job.num})
    overrides: tuple[str, ...]
    shapes: Optional[dict]  # shapes.json: written last, so a single-file job that has it finished
    corpus: Optional[list]  # a corpus job's summary.json: one entry per file
    error: Optional[str]  # error.json: the bad input that stopped the job
    metrics: Optional[dict]  # metrics.json as written (flat, or {"before": {...}, "after": {...}})

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def files_failed(self) -> int:
        return sum(item.get("status") != "ok" for item in self.corpus or [] if isinstance(item, dict))

    @property
    def status(self) -> str:
        """ok, 'N files failed' (a corpus job), error (error.json) or unfinished."""
        if self.shapes is not None:
            return "ok"
        if self.corpus is not None:
            return "ok" if not self.files_failed else f"{self.files_failed} files failed"
        return "error" if self.error is not None else "unfinished"


# --- finding and reading the jobs -----------------------------------------------------------------

def scan_sweep(sweep_dir: Path) -> list[SweepJob]:
    """Every job of the sweep, each job's files read once, in job-number order."""
    return [read_job(job_dir) for job_dir in job_dirs(sweep_dir)]


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories (those with Hydra's .hydra/ record), in job-number order when numeric."""
    sweep_dir = Path(sweep_dir)
    # <job>/.hydra/overrides.yaml: the job dir is two levels up
    found = {p.parent.parent for p in sweep_dir.glob(f"**/{RunDir.HYDRA_OVERRIDES}")}
    found.discard(sweep_dir)
    return sorted(found, key=lambda p: (0, int(p.name), []) if p.name.isdigit()
                  else (1, 0, _natural_key(p.relative_to(sweep_dir).as_posix())))


def read_job(job_dir: Path) -> SweepJob:
    files = RunDir(job_dir)
    shapes = _read_json(files.shapes)
    corpus = _read_json(files.summary_json)
    error = _read_json(files.error)
    metrics = _read_json(files.metrics)
    return SweepJob(
        directory=job_dir,
        number=int(job_dir.name) if job_dir.name.isdigit() else None,
        overrides=_overrides(job_dir),
        shapes=shapes if _is_shapes(shapes) else None,
        corpus=corpus if isinstance(corpus, list) else None,
        error=str(error.get("error", "")) if isinstance(error, dict) else None,
        metrics=metrics if isinstance(metrics, dict) else None)


def _overrides(job_dir: Path) -> tuple[str, ...]:
    import yaml  # only when there are job dirs to read

    try:
        loaded = yaml.safe_load(RunDir(job_dir).hydra_overrides.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ()
    return tuple(str(item) for item in loaded) if isinstance(loaded, list) else ()


def _is_shapes(shapes: Any) -> bool:
    try:
        return all(isinstance(shapes[part]["shape"], list) for part in ("input", "output"))
    except (TypeError, KeyError):
        return False


def _read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _natural_key(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name)]


# --- summary.csv and summary.png ------------------------------------------------------------------

def summarize_sweep(sweep_dir: Path, jobs: Optional[list[SweepJob]] = None) -> list[dict]:
    """summary.csv and summary.png at the sweep root, one row per job; the rows."""
    sweep_dir = Path(sweep_dir)
    rows = summary_rows(scan_sweep(sweep_dir) if jobs is None else jobs)
    write_summary_csv(RunDir(sweep_dir).summary_csv, rows)
    if rows:
        plot_summary(RunDir(sweep_dir).summary_png, rows)
    return rows


def summary_rows(jobs: Iterable[SweepJob]) -> list[dict]:
    return [job_row(job) for job in jobs]


def job_row(job: SweepJob) -> dict:
    row: dict[str, Any] = {"job": job.name, "overrides": " ".join(job.overrides),
                           "status": job.status}
    if job.shapes is not None:
        row.update(input_shape=shape_cell(job.shapes["input"]["shape"]),
                   output_shape=shape_cell(job.shapes["output"]["shape"]),
                   output_rate=job.shapes["output"].get("sample_rate"))
    elif job.corpus is not None:
        row.update(files=len(job.corpus), files_failed=job.files_failed)
    if job.error is not None:
        row["error"] = job.error
    row.update({key: value for key, value in (job.metrics or {}).items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
                and key not in row})
    return row


def write_summary_csv(path: Path, rows: list[dict]) -> None:
    columns = list(FIXED_COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    columns.sort(key=lambda key: key == "error")  # long messages last, after the numbers
    write_csv(path, rows, columns)


# --- failed jobs: the entry script's error line ---------------------------------------------------
