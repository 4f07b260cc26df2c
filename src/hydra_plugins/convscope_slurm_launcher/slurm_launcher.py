"""`hydra/launcher=submitit_slurm` as convscope runs it: the submitit plugin's SlurmLauncher,
submitting the same array job with the same settings, that waits for every job and records one
SLURM killed instead of stopping at it (convscope.sweep.slurm_jobs says why).

Hydra's plugin scan imports this module in every run; without the [launchers] extra (the
submitit plugin) it defines nothing, and convscope leaves the launcher config alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf, open_dict

from convscope.sweep.slurm_jobs import (
    collect,
    queue_watcher,
    sacct_works,
    submission_reported,
    wait_for_all,
)

try:
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        SlurmLauncher as PluginLauncher,
    )
except ImportError:  # no [launchers] extra: nothing to extend
    PluginLauncher = None

log = logging.getLogger("convscope")


class SlurmLauncher(PluginLauncher or object):  # type: ignore[misc]
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        import submitit  # lazy, as the plugin does: plugin discovery stays fast
        from hydra.core.singleton import Singleton  # as above

        with submission_reported(Path(str(self.config.hydra.sweep.dir))):
            jobs = self._submit(submitit, Singleton, job_overrides, initial_job_idx)
        watcher = None
        if not sacct_works():
            log.info("sacct does not answer here (no accounting): following the jobs with squeue")
            watcher = queue_watcher(submitit.slurm.slurm.SlurmInfoWatcher)
        wait_for_all(jobs, watcher)
        return collect(jobs, job_overrides, initial_job_idx, self._job_dir, _ended_return)

    def _submit(self, submitit: Any, singleton: Any, job_overrides: Sequence[Sequence[str]],
                initial_job_idx: int) -> list[Any]:
        """The plugin's launch up to its submission (hydra-submitit-launcher 1.2), unchanged."""
        assert self.config is not None and len(job_overrides) > 0
        params = self.params
        init_params = {"folder": params["submitit_folder"]}
        specific_init_keys = {"max_num_timeout"}
        init_params.update(**{f"{self._EXECUTOR}_{x}": y for x, y in params.items()
                              if x in specific_init_keys})
        init_keys = specific_init_keys | {"submitit_folder"}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{x if x in baseparams else f"{self._EXECUTOR}_{x}": y
                                      for x, y in params.items() if x not in init_keys})
        log.info("Submitit '%s' sweep output dir : %s", self._EXECUTOR,
                 self.config.hydra.sweep.dir)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}",
                               singleton.get_state()))
        return executor.map_array(self, *zip(*job_params))

    def _job_dir(self, overrides: Sequence[str], number: int) -> Path:
        """Where the job runs (or would have): hydra.sweep.dir / hydra.sweep.subdir, composed
        for its overrides and number as the job itself composes them."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = number
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)


def _ended_return(overrides: Sequence[str]) -> JobReturn:
    """What a killed job stands as: finished, returning nothing, like a job that recorded its
    bad input in error.json; the sweep summary reads its error.json."""
    done = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    done.return_value = None
    return done
