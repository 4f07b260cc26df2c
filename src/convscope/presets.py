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
from omegaconf.errors import OmegaConfBaseException

from convscope.config import DataConfig, ModelConfig
from convscope.errors import ConvscopeError
from convscope.layers import LayerPlan, build_stack, output_sample_rate, plan_stack

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"


def _preset(group: str, name: str, configs_dir: Path) -> dict:
    path = Path(configs_dir) / group / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConvscopeError(f"{group}={name}: no {path}; known: {', '.join(known)}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def model_preset(name: str, configs_dir: Path = CONFIGS_DIR) -> ModelConfig:
    """configs/model/<name>.yaml as a ModelConfig (its layers are checked when planned)."""
    return _typed(ModelConfig, _preset("model", name, configs_dir), f"model={name}")


def data_preset(name: str, configs_dir: Path = CONFIGS_DIR) -> DataConfig:
    return _typed(DataConfig, _preset("data", name, configs_dir), f"data={name}")


def _typed(schema: type, values: dict, where: str):
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as exc:
        raise ConvscopeError(f"{where}: {str(exc).splitlines()[0]}") from exc


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
    upsampling = int(np.prod([plan.stride_ratio[0] for plan in plans]))
    rate = int(round(output_sample_rate(plans, sample_rate)))
    return StackRun(outputs, rate, upsampling, plans, stack)
