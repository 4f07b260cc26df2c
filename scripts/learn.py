"""Fit the stack's weights so an output channel matches soxr's resampling of the same audio.

    python scripts/learn.py                                 # reference example, spoken clip
    python scripts/learn.py model=hifigan_style learn.steps=1500
    python scripts/learn.py data=sample evaluate.channel=2 learn.spectral_weight=0

Writes the usual run outputs for the learned stack, plus metrics.json ({"before", "after"}),
plots/loss.png, plots/kernels.png and the learned weights.pt.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from convscope.cli import reports_errors, run_entry
from convscope.config.convert import register_configs, to_learn_config
from convscope.pipeline.learn import run_learn
from convscope.report.page import RunCommand

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="learn")
@reports_errors
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    user_dir = Path(hydra_cfg.runtime.cwd)  # relative data paths are relative to the user's dir
    command = RunCommand(argv=tuple(sys.argv), overrides=tuple(hydra_cfg.overrides.task),
                         cwd=str(user_dir))
    run_cfg, learn_cfg = to_learn_config(cfg)
    run_learn(run_cfg, learn_cfg, Path(hydra_cfg.runtime.output_dir), user_dir, command)


if __name__ == "__main__":
    run_entry(main)
