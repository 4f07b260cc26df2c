"""Hydra callbacks, registered under `hydra.callbacks` in configs/run.yaml.

This is the one place that touches Hydra's config: each callback reads the paths it needs and
hands plain values to library code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from convscope.rundir import RunDir

log = logging.getLogger("convscope")


class SweepReport(Callback):
    """After a multirun, at the sweep root: summary.csv and summary.png (a row per job), then
    index.html (a link per job, and to the summary). The sweep dir is scanned once for all three.

    Each step that fails is logged as a warning and the others go on: the jobs' own results are
    already on disk, so nothing here fails the sweep. Failed jobs are noted for the entry
    script's `error:` line (convscope.sweep.failures.failed_jobs_message).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_sweep_report(Path(config.hydra.sweep.dir))


def write_sweep_report(sweep_dir: Path) -> None:
    # Hydra instantiates this callback in every run; only a multirun's end needs these
    from convscope.board.export import TENSORBOARD, export_sweep_hparams
    from convscope.plots.sweep import plot_summary
    from convscope.sweep.failures import record_failed_jobs
    from convscope.sweep.index import write_sweep_index
    from convscope.sweep.summary import scan_sweep, summary_rows, write_summary_csv

    try:
        jobs = scan_sweep(sweep_dir)
        rows = summary_rows(jobs)
    except Exception as exc:
        _warn("read the jobs", sweep_dir, exc)
        return
    record_failed_jobs(sweep_dir, jobs)
    files = RunDir(sweep_dir)
    if _step(f"write {files.SUMMARY_CSV}", sweep_dir, write_summary_csv, files.summary_csv, rows):
        log.info("sweep summary: %d jobs in %s", len(rows), files.summary_csv)
    if rows:
        _step(f"write {files.SUMMARY_PNG}", sweep_dir, plot_summary, files.summary_png, rows)
    _step(f"write {files.REPORT}", sweep_dir, write_sweep_index, sweep_dir, jobs)
    exported = [job for job in jobs
                if job.status == "ok" and (job.directory / TENSORBOARD).is_dir()]
    if exported:  # the jobs ran with tensorboard=true: their overrides against their metrics
        _step("write the TensorBoard hparams", sweep_dir, export_sweep_hparams, sweep_dir,
              [(job.name, job.overrides, job.metrics) for job in exported])


def _step(what: str, sweep_dir: Path, action: Callable[..., Any], *args: Any) -> bool:
    """action(*args); False after a warning: a sweep-level file must not fail a finished sweep."""
    try:
        action(*args)
    except Exception as exc:
        _warn(what, sweep_dir, exc)
        return False
    return True


def _warn(what: str, sweep_dir: Path, exc: Exception) -> None:
    log.warning("sweep report: could not %s in %s (%s: %s)", what, sweep_dir,
                type(exc).__name__, exc)
