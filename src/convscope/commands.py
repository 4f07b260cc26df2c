"""The console commands: convscope-run, -explain, -learn, -design and -chunks.

pip installs them (pyproject's [project.scripts]); scripts/run.py, explain.py, learn.py,
design.py and chunks.py are thin wrappers around the same functions, for a checkout. Each is
a `@hydra.main` over the configs convscope ships (convscope.resources.configs_dir), so they
work from any directory. Everything a job does is a plain library call; this module only
turns Hydra's config and runtime into typed values, and bad input into one `error:` line
and exit status 2 (convscope.cli).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from convscope.audio.segment import resolve_path
from convscope.cli import fail, model_label, reports_errors, run_entry
from convscope.commands_exit import console_command
from convscope.commands_help import answers_help
from convscope.commands_rundir import check_job_dir
from convscope.config.convert import (
    register_chunks_schema,
    register_configs,
    to_chunks_config,
    to_design_config,
    to_learn_config,
    to_run_config,
)
from convscope.plots.background import job_figures, session
from convscope.report.page import RunCommand
from convscope.resources import configs_dir
from convscope.sweep.failures import (
    clear_failed_jobs,
    failed_jobs_message,
    sweep_job_errors_recorded,
)

CONFIG_PATH = str(configs_dir())
register_configs()


# The commands' work imports torch (~2 s); importing it when a job runs lets convscope-run start
# its figure worker first, so the worker's matplotlib import runs on the other core meanwhile.
# Module-level names, so tests can patch them (commands.run_job).
def run_job(*args, **kwargs):
    from convscope.corpus.jobs import run_job as run  # torch: lazy, see above

    return run(*args, **kwargs)


def run_learn(*args, **kwargs):
    from convscope.pipeline.learn import run_learn as run  # torch: lazy, as run_job

    return run(*args, **kwargs)


def run_chunk_debugger(*args, **kwargs):
    from convscope.chunk_debugger.run import run_chunk_debugger as run  # as run_job

    return run(*args, **kwargs)


def design(*args, **kwargs):
    from convscope.designer import design as run  # torch: lazy, as run_job

    return run(*args, **kwargs)


def _command() -> tuple[RunCommand, Path, Path]:
    """The command as typed, where the user ran it, and this job's run dir.

    Launchers (joblib, submitit) may start jobs elsewhere; relative data paths are relative to
    the directory the user ran from (Hydra's runtime.cwd).
    """
    hydra_cfg = HydraConfig.get()
    user_dir = Path(hydra_cfg.runtime.cwd)
    command = RunCommand(argv=tuple(sys.argv), overrides=tuple(hydra_cfg.overrides.task),
                         cwd=str(user_dir))
    return command, user_dir, Path(hydra_cfg.runtime.output_dir)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="run")
@reports_errors
def _run_job(cfg: DictConfig) -> None:
    command, user_dir, out_dir = _command()
    job_dir = check_job_dir(cfg)  # a dir holding a run is refused before anything is written
    with sweep_job_errors_recorded(out_dir):  # -m: a bad sweep point must not stop the others
        run_cfg = to_run_config(cfg)
        run_cfg.model.name = model_label(run_cfg.model.name, command.overrides)
        # job_figures: a failed job stops the figure worker before the job dir is given up
        with job_dir.opened([resolve_path(run_cfg.data.path, user_dir)]), job_figures():
            run_job(run_cfg, out_dir, user_dir, command)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="learn")
@reports_errors
def _learn_job(cfg: DictConfig) -> None:
    command, user_dir, out_dir = _command()
    job_dir = check_job_dir(cfg)
    run_cfg, learn_cfg = to_learn_config(cfg)
    run_cfg.model.name = model_label(run_cfg.model.name, command.overrides)
    with job_dir.opened([resolve_path(run_cfg.data.path, user_dir)]):
        run_learn(run_cfg, learn_cfg, out_dir, user_dir, command)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="explain")
@reports_errors
def _explain_job(cfg: DictConfig) -> None:
    from convscope.explainer.explain import explain, to_explain_config  # torch: as run_job

    job_dir = check_job_dir(cfg)
    explain_cfg = to_explain_config(cfg)
    with job_dir.opened():
        status = explain(explain_cfg, Path(HydraConfig.get().runtime.output_dir))
    if status:
        raise SystemExit(status)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="design")
@reports_errors
def _design_job(cfg: DictConfig) -> None:
    job_dir = check_job_dir(cfg)
    cfg_design = to_design_config(cfg)
    with job_dir.opened():
        result = design(cfg_design, Path(HydraConfig.get().runtime.output_dir))
    print(result.summary(cfg_design.top))


def run_main() -> None:
    """convscope-run: the configured stack on an audio segment (or every file of a corpus)."""
    if answers_help("run"):
        return
    clear_failed_jobs()  # only this command's sweep counts
    with session(sys.argv[1:]):  # the figure worker starts now, before torch is imported
        run_entry(_run_job)
    failed = failed_jobs_message()
    if failed:  # a multirun whose summary lists failed jobs
        fail(failed)


def learn_main() -> None:
    """convscope-learn: fit the stack's weights to soxr's resampling of the same audio."""
    if answers_help("learn"):
        return
    run_entry(_learn_job)


def explain_main() -> None:
    """convscope-explain: the tutorials' worked examples against torch, or one step by step."""
    if answers_help("explain"):
        return
    from convscope.explainer.explain import register_explain_schema  # torch: as run_job

    register_explain_schema()
    run_entry(_explain_job)


def design_main() -> None:
    """convscope-design: exact ConvTranspose1d stacks for sr/hop or in_rate/out_rate, ranked."""
    if answers_help("design"):
        return
    run_entry(_design_job)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="chunks")
@reports_errors
def _chunks_job(cfg: DictConfig) -> None:
    _, user_dir, out_dir = _command()
    job_dir = check_job_dir(cfg)
    run_cfg, chunks_cfg = to_chunks_config(cfg)
    with job_dir.opened([resolve_path(run_cfg.data.path, user_dir)]):
        run_chunk_debugger(run_cfg, chunks_cfg, out_dir, user_dir)


def chunks_main() -> None:
    """convscope-chunks: the stack on independent chunks (naive real-time code) vs one shot."""
    if answers_help("chunks"):
        return
    register_chunks_schema()
    run_entry(_chunks_job)


# The console entries (pyproject's [project.scripts], scripts/*.py): the functions above, then
# an exit without the interpreter's teardown (commands_exit.py). Tests call the functions above.
run_command = console_command(run_main)
learn_command = console_command(learn_main)
explain_command = console_command(explain_main)
design_command = console_command(design_main)
chunks_command = console_command(chunks_main)
