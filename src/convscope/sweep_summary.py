"""A Hydra callback that summarises a multirun: summary.csv and summary.png at the sweep root.

Registered in configs/run.yaml under hydra.callbacks. It runs in the process that launched the
sweep, after every job has finished, whatever the launcher (basic, joblib, submitit local or
SLURM): it reads what each job left in its own directory (.hydra/overrides.yaml, shapes.json,
metrics.json, a corpus job's summary.json), so it needs nothing from the jobs' processes.
One row per job; a job without shapes.json (or a corpus summary) did not finish.

A job that meets bad input (ConvscopeError) in a sweep records it in its error.json and returns,
so the other jobs go on (`sweep_job_errors_recorded`); the summary lists it, and the entry script
ends the sweep with one `error:` line and exit status 2 (`failed_jobs_message`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from convscope.atomic import atomic_path, write_text
from convscope.errors import ConvscopeError

log = logging.getLogger("convscope")
FIXED_COLUMNS = ("job", "overrides", "status", "input_shape", "output_shape", "output_rate")

try:
    from hydra.experimental.callback import Callback
except ImportError:  # Hydra missing: the summary functions still work on a sweep dir
    Callback = object  # type: ignore[assignment,misc]


class SweepSummary(Callback):
    """on_multirun_end: one row per job of the sweep in summary.csv, metrics in summary.png."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            rows = summarize_sweep(sweep_dir)
        except Exception as exc:  # a summary must never turn a finished sweep into a failure
            log.warning("sweep summary: not written (%s: %s)", type(exc).__name__, exc)
            return
        log.info("sweep summary: %d jobs in %s", len(rows), sweep_dir / "summary.csv")
        failed = [row for row in rows if row["status"] != "ok"]
        if failed:
            _failures.append(f"{len(failed)} of {len(rows)} sweep jobs failed (job "
                             f"{failed[0]['job']}: {failed[0].get('error') or failed[0]['status']});"
                             f" summary: {sweep_dir / 'summary.csv'}")


_failures: list[str] = []  # filled in the launching process by on_multirun_end


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


def summarize_sweep(sweep_dir: Path) -> list[dict]:
    rows = [job_row(job_dir) for job_dir in job_dirs(sweep_dir)]
    write_csv(sweep_dir / "summary.csv", rows)
    if rows:
        plot_summary(sweep_dir / "summary.png", rows)
    return rows


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories (those with Hydra's .hydra/ record), in job-number order when numeric."""
    found = [p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")]
    return sorted(found, key=lambda p: (0, int(p.name), "") if p.name.isdigit() else (1, 0, str(p)))


def job_row(job_dir: Path) -> dict:
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(_overrides(job_dir))}
    shapes = _read_json(job_dir / "shapes.json")
    corpus = _read_json(job_dir / "summary.json")
    if shapes is not None:
        row.update(status="ok", input_shape=_shape(shapes["input"]["shape"]),
                   output_shape=_shape(shapes["output"]["shape"]),
                   output_rate=shapes["output"]["sample_rate"])
    if shapes is None and isinstance(corpus, list):
        failed = sum(item["status"] != "ok" for item in corpus)
        row.update(status="ok" if not failed else f"{failed} files failed",
                   files=len(corpus), files_failed=failed)
    error = _read_json(job_dir / "error.json")
    if isinstance(error, dict):
        row["error"] = error.get("error", "")
    if "status" not in row:
        row["status"] = "error" if "error" in row else "unfinished"
    metrics = _read_json(job_dir / "metrics.json")
    if isinstance(metrics, dict):
        row.update({key: value for key, value in metrics.items()
                    if isinstance(value, (int, float)) and not isinstance(value, bool)
                    and key not in row})
    return row


def _overrides(job_dir: Path) -> list[str]:
    from omegaconf import OmegaConf

    return [str(item) for item in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]


def _read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _shape(shape: list[int]) -> str:
    return "x".join(str(n) for n in shape)


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(FIXED_COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    columns.sort(key=lambda key: key == "error")  # long messages last, after the numbers
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def plot_summary(path: Path, rows: list[dict]) -> None:
    """One bar chart per numeric column (the metrics, and output length), one bar per job."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for row in rows:
        if row.get("output_shape"):
            row.setdefault("output_length", int(row["output_shape"].split("x")[-1]))
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
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
