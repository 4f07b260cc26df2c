"""Run the configured Conv1d/ConvTranspose1d stack on a WAV segment and save what it did.

    python scripts/run.py                                   # the reference example
    python scripts/run.py model.layers.1.stride=4 model.layers.1.output_padding=3
    python scripts/run.py data.path=my.wav data.start=0 data.end=null plots.enabled=false
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from convscope.cli import reports_errors, run_entry
from convscope.config import register_configs, to_run_config
from convscope.pipeline import run

register_configs()


@hydra.main(version_base="1.3", config_path="../configs", config_name="run")
@reports_errors
def main(cfg: DictConfig) -> None:
    run(to_run_config(cfg), Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    run_entry(main)
