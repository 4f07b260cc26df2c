"""What `hydra/launcher=submitit_slurm` needs beyond the submitit plugin: every job waited for,
and a job SLURM ended before it finished (scancel, its time limit, out of memory) recorded in its
job dir like bad input, so the sweep's summary.csv, index.html and exit status report it.

The plugin returns `[job.results()[0] for job in jobs]`: the first killed job raises there while
later jobs still run, and Hydra then skips the multirun-end callback, so no summary is written.
It also learns a job's state from `sacct` alone; on a cluster without accounting (slurmdbd)
sacct fails and a killed job, which leaves no result file, would be waited for forever.
`QueueWatcher` asks `squeue` there instead.

`register_slurm_launcher` points the launcher config at hydra_plugins.convscope_slurm_launcher (the
plugin's SlurmLauncher with these changes); every setting of the plugin's config stays.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import time
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from convscope.errors import ConvscopeError
from convscope.files import write_json, write_text
from convscope.rundir import RunDir
from convscope.rundir.layout import release_new_dir

log = logging.getLogger("convscope")
LAUNCHER_TARGET = "hydra_plugins.convscope_slurm_launcher.slurm_launcher.SlurmLauncher"
POLL_SECONDS = 1.0  # a finished job's result file is looked for this often
FORCE_EVERY = 5  # ... and SLURM asked about the rest every this many polls
SUBMISSION_ONLY = {"multirun.yaml", ".submitit"}  # a sweep dir no job has written to yet
# squeue's states of a job that may still write its result
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING",
          "SUSPENDED", "PREEMPTED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}


def register_slurm_launcher() -> None:
    """hydra/launcher=submitit_slurm -> convscope's launcher, with all of the plugin's keys.
    Nothing when the [launchers] extra is missing (Hydra then names the launcher it lacks)."""
    try:
        from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf  # optional extra
    except ImportError:  # no launchers extra: Hydra's own error names the missing launcher
        return
    from hydra.core.config_store import ConfigStore  # Hydra only where configs are composed
    from hydra.core.plugins import Plugins  # as above

    # Hydra's plugin scan re-runs each plugin's config module, which stores the plugin's own
    # node again: scan first (once per process), then store ours over it.
    plugins = Plugins.instance()
    # The scan walks hydra_plugins' path entries; an editable install (make install) maps our
    # package through an import hook the walk cannot list, so register the class by hand.
    from hydra_plugins.convscope_slurm_launcher.slurm_launcher import SlurmLauncher

    plugins.register(SlurmLauncher)
    node = make_dataclass("ConvscopeSlurmConf", [("_target_", str, LAUNCHER_TARGET)],
                          bases=(SlurmQueueConf,))
    ConfigStore.instance().store(group="hydra/launcher", name="submitit_slurm", node=node,
                                 provider="convscope")


@contextmanager
def submission_reported(sweep_dir: Path) -> Iterator[None]:
    """No SLURM reachable (no srun here, no slurmctld answering, a partition it lacks): one
    ConvscopeError line with what sbatch said, instead of sbatch's lines on stderr and a
    traceback; the sweep dir, holding only what submitting wrote, is removed."""
    said = io.StringIO()
    try:
        with redirect_stderr(said):  # submitit prints sbatch's stderr before it raises
            yield
    except Exception as exc:  # submitit's RuntimeError (no srun) / FailedJobError (sbatch)
        words = " ".join((str(exc) or said.getvalue()).split())
        if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= SUBMISSION_ONLY:
            shutil.rmtree(sweep_dir, ignore_errors=True)
            release_new_dir(sweep_dir)  # the parents the sweep dir's claim created
        raise ConvscopeError(
            f"hydra/launcher=submitit_slurm: the sweep could not be submitted "
            f"({type(exc).__name__}: {words}); is SLURM reachable from here (sinfo lists its partitions) and "
            f"hydra.launcher.partition one of them?") from exc


def sacct_works() -> bool:
    """Whether this cluster keeps accounting (sacct answers), as submitit's watcher assumes."""
    try:
        done = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def queue_watcher(base: type) -> Any:
    """submitit's SlurmInfoWatcher (`base`), reading `squeue` instead of `sacct`: squeue lists
    pending, running and recently ended jobs (MinJobAge); a job it no longer lists has ended."""

    class QueueWatcher(base):  # type: ignore[misc, valid-type]
        def _make_command(self) -> Optional[list[str]]:
            command = super()._make_command()  # sacct ... -j ID -j ID: the array ids to ask
            if command is None:
                return None
            self._asked = {command[i + 1] for i, word in enumerate(command) if word == "-j"}
            return ["squeue", "--array", "--states=all", "--noheader", "--format=%i|%T|%N",
                    "--jobs=" + ",".join(sorted(self._asked))]

        def read_info(self, string: Any) -> dict[str, dict[str, str]]:
            text = string.decode() if isinstance(string, bytes) else string
            info = super().read_info("JobID|State|NodeList\n" + text)
            for job_id in self._registered - self._finished:  # ended and already forgotten
                if job_id not in info and job_id.split("_")[0] in getattr(self, "_asked", ()):
                    info[job_id] = {"JobID": job_id, "State": "ENDED", "NodeList": ""}
            return info

    return QueueWatcher(delay_s=60)


def wait_for_all(jobs: Sequence[Any], watcher: Optional[Any]) -> None:
    """Until every job has a result or SLURM has ended it. `watcher` (a queue_watcher) replaces
    submitit's where sacct does not answer."""
    if watcher is not None:
        for job in jobs:
            job.watcher = watcher
            watcher.register_job(job.job_id)
    polls = 0
    pending = list(jobs)
    while pending:
        polls += 1
        force = polls % FORCE_EVERY == 0
        pending = [job for job in pending if not job.done(force_check=force)]
        if pending:
            time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class EndedJob:
    """A job whose results() raised: SLURM ended it before it wrote a result."""

    number: int
    overrides: tuple[str, ...]
    job_id: str
    state: str
    log_file: Path

    def message(self) -> str:
        how = "no longer queued" if self.state == "ENDED" else f"state {self.state}"
        return (f"SLURM job {self.job_id} ended without a result ({how}: cancelled with "
                f"scancel, past its time limit or out of memory); its log: {self.log_file}")


def record_ended_job(ended: EndedJob, job_dir: Path) -> None:
    """error.json in the job's dir, and the job's overrides where Hydra never got to write them
    (a job cancelled while pending), so the sweep summary lists it as failed, with its point."""
    files = RunDir(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    if not files.hydra_overrides.is_file():
        files.hydra_overrides.parent.mkdir(exist_ok=True)
        write_text(files.hydra_overrides, "".join(f"- {o}\n" for o in ended.overrides))
    write_json(files.error, {"error": ended.message()})
    log.error("error: job %d: %s", ended.number, ended.message())


def collect(jobs: Sequence[Any], overrides: Sequence[Sequence[str]], first_number: int,
            job_dir: Callable[[Sequence[str], int], Path],
            ended_return: Callable[[Sequence[str]], Any]) -> list[Any]:
    """Every job's JobReturn; a job that ended without one is recorded (record_ended_job) and
    stands as `ended_return(overrides)`, so the sweep goes on to its summary."""
    returns = []
    for number, (job, job_overrides) in enumerate(zip(jobs, overrides), start=first_number):
        try:
            returns.append(job.results()[0])
        except Exception as exc:  # submitit's UncompletedJobError / FailedJobError: no result
            state = str(job.state or type(exc).__name__)
            ended = EndedJob(number, tuple(job_overrides), str(job.job_id), state,
                             Path(job.paths.stderr))
            record_ended_job(ended, job_dir(job_overrides, number))
            returns.append(ended_return(job_overrides))
    return returns
