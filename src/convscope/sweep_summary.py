"""What a multirun left on disk, read once: the job records behind summary.csv, summary.png and
the sweep's index.html (convscope.sweep_report).

The SweepReport callback (convscope.callbacks, registered in configs/run.yaml) runs in the process
that launched the sweep, after every job has finished, whatever the launcher (basic, joblib,
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

import csv
import io
import json
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from convscope.atomic import write_text
from convscope.errors import ConvscopeError

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
    found = {p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")}
    found.discard(sweep_dir)
    return sorted(found, key=lambda p: (0, int(p.name), []) if p.name.isdigit()
                  else (1, 0, _natural_key(p.relative_to(sweep_dir).as_posix())))


def read_job(job_dir: Path) -> SweepJob:
    shapes = _read_json(job_dir / "shapes.json")
    corpus = _read_json(job_dir / "summary.json")
    error = _read_json(job_dir / "error.json")
    metrics = _read_json(job_dir / "metrics.json")
    return SweepJob(
        directory=job_dir,
        number=int(job_dir.name) if job_dir.name.isdigit() else None,
        overrides=_overrides(job_dir),
        shapes=shapes if _is_shapes(shapes) else None,
        corpus=corpus if isinstance(corpus, list) else None,
        error=str(error.get("error", "")) if isinstance(error, dict) else None,
        metrics=metrics if isinstance(metrics, dict) else None)


def _overrides(job_dir: Path) -> tuple[str, ...]:
    import yaml

    try:
        loaded = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
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
    write_summary_csv(sweep_dir / "summary.csv", rows)
    if rows:
        plot_summary(sweep_dir / "summary.png", rows)
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


def shape_cell(shape: Optional[Sequence[int]]) -> str:
    """A shape as one CSV cell: 1x3x32000 ('' for none)."""
    return "" if shape is None else "x".join(str(n) for n in shape)


def csv_cell(value: Any) -> str:
    """None as an empty cell, a shape (list) as 1x3x32000, anything else as str() writes it."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return shape_cell(value)
    return str(value)


def write_csv(path: Path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """rows (dicts) as CSV with these columns, written atomically; missing keys are empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), restval="")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
    write_text(Path(path), buffer.getvalue())


def plot_summary(path: Path, rows: list[dict]) -> None:
    """One bar chart per numeric column (the metrics, and output length), one bar per job."""
    from convscope.plots import plt, save_figure

    rows = [{**row, "output_length": int(row["output_shape"].split("x")[-1])}
            if row.get("output_shape") and "output_length" not in row else row for row in rows]
    numeric = [key for key in dict.fromkeys(k for row in rows for k in row)
               if key not in ("job", "output_rate", "files", "files_failed", "channel")
               and all(isinstance(row.get(key), (int, float)) or row.get(key) is None
                       for row in rows)
               and any(isinstance(row.get(key), (int, float)) for row in rows)]
    labels = [row["overrides"] or f"job {row['job']}" for row in rows]
    panels = numeric or ["(no numeric results)"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6, 1.2 * len(rows) + 3),
                                                      1.9 * len(panels) + 1.2),
                             squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], panels):
        values = [row.get(key) if isinstance(row.get(key), (int, float)) else float("nan")
                  for row in rows]
        ax.bar(range(len(rows)), values, color=["C0" if row["status"] == "ok" else "C3"
                                                for row in rows])
        ax.set_ylabel(key, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=7)
    fig.suptitle(f"sweep: {len(rows)} jobs (red: not ok)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, 100)


# --- failed jobs: the entry script's error line ---------------------------------------------------

_failures: list[str] = []  # filled in the launching process by the SweepReport callback


def record_failed_jobs(sweep_dir: Path, jobs: list[SweepJob]) -> Optional[str]:
    """Note the sweep's failed jobs for `failed_jobs_message`; the message, or None if none."""
    failed = [job for job in jobs if job.status != "ok"]
    if not failed:
        return None
    first = failed[0]
    message = (f"{len(failed)} of {len(jobs)} sweep jobs failed (job {first.name}: "
               f"{first.error or first.status}); summary: {Path(sweep_dir) / 'summary.csv'}")
    _failures.append(message)
    return message


def failed_jobs_message() -> Optional[str]:
    """After a multirun: what failed, for the entry script's `error:` line; None if nothing."""
    return _failures[-1] if _failures else None


@contextmanager
def sweep_job_errors_recorded(job_dir: Path) -> Iterator[None]:
    """In a multirun job, turn bad input into error.json in the job dir instead of an exit, so
    one bad sweep point doesn't stop the others. Outside a multirun, errors pass through."""
    try:
        yield
    except ConvscopeError as exc:
        if not _in_multirun():
            raise
        message = " ".join(str(exc).split())
        log.error("error: %s", message)
        write_text(job_dir / "error.json", json.dumps({"error": message}, indent=2) + "\n")


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
