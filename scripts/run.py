"""Run the configured Conv1d/ConvTranspose1d stack on a WAV segment and save what it did.

    python scripts/run.py                                   # the reference example
    python scripts/run.py model.layers.1.stride=4 model.layers.1.output_padding=3
    python scripts/run.py data.path=my.wav data.start=0 data.end=null plots.enabled=false
    python scripts/run.py data.path=corpus/ data.start=0 data.end=null   # every file, one subfolder each
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from convscope.cli import fail, reports_errors, run_entry
from convscope.config.convert import register_configs, to_run_config
from convscope.pipeline.jobs import run_job
from convscope.report.page import RunCommand
from convscope.sweep.failures import failed_jobs_message, sweep_job_errors_recorded

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="run")
@reports_errors
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    # Plain data for the report: the command as typed and this job's overrides (one sweep point).
    # Where the user ran from: launchers (joblib, submitit) may start jobs elsewhere, and
    # relative data paths are relative to the user's directory.
    user_dir = Path(hydra_cfg.runtime.cwd)
    command = RunCommand(argv=tuple(sys.argv), overrides=tuple(hydra_cfg.overrides.task),
                         cwd=str(user_dir))
    out_dir = Path(hydra_cfg.runtime.output_dir)
    with sweep_job_errors_recorded(out_dir):  # -m: a bad sweep point must not stop the others
        run_job(to_run_config(cfg), out_dir, user_dir, command)


if __name__ == "__main__":
    run_entry(main)
    if failed_jobs_message():  # a multirun whose summary lists failed jobs
        fail(failed_jobs_message())
