"""Hydra callbacks, registered under `hydra.callbacks` in configs/run.yaml.

This is the one place that touches Hydra's config: each callback reads the paths it needs and
hands plain values to library code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("convscope")


class SweepIndex(Callback):
    """After a multirun, write index.html at the sweep root linking every job's page."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from convscope.sweep_report import write_sweep_index

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            write_sweep_index(sweep_dir)
        except Exception:  # the jobs' own results are already on disk; don't fail the sweep here
            log.exception("could not write the sweep index in %s", sweep_dir)
