"""The YAML presets in configs/ as typed configs, and a stack run on plain arrays.

For scripts that compare several models on several signals (bench_quality.py,
plot_artifacts.py) without composing a Hydra config and writing a run dir for each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from convscope.config import DataConfig, ModelConfig, to_dataclass
from convscope.errors import ConvscopeError
from convscope.layers import (LayerPlan, build_stack, output_sample_rate, plan_stack,
                              upsampling_factor)

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


def _preset(group: str, name: str, configs_dir: Path) -> dict:
    path = Path(configs_dir) / group / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConvscopeError(f"{group}={name}: no {path}; known: {', '.join(known)}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def model_preset(name: str) -> ModelConfig:
    """configs/model/<name>.yaml as a ModelConfig (its layers are checked when planned)."""
    return to_dataclass(_preset("model", name, CONFIGS_DIR), ModelConfig, where=f"model={name}")


def data_preset(name: str) -> DataConfig:
    """configs/data/<name>.yaml as a DataConfig."""
    return to_dataclass(_preset("data", name, CONFIGS_DIR), DataConfig, where=f"data={name}")


@dataclass(frozen=True)
class StackRun:
    outputs: np.ndarray  # (channels, length) of the last layer
    output_rate: int
    upsampling: int  # product of the layers' up factors
    plans: list[LayerPlan]
    stack: torch.nn.Sequential


def run_model(model: ModelConfig, samples: np.ndarray, sample_rate: int, seed: int = 0) -> StackRun:
    """Plan, build (seeded) and run `model` on mono samples; no files, no hooks."""
    x = np.asarray(samples, dtype=np.float32)[None, None]
    plans = plan_stack(model.layers, x.shape)
    stack = build_stack(plans, seed)
    with torch.no_grad():
        outputs = stack(torch.as_tensor(x))[0].numpy()
    upsampling = upsampling_factor(plans)
    rate = int(round(output_sample_rate(plans, sample_rate)))
    return StackRun(outputs, rate, upsampling, plans, stack)
