"""A model config run on plain arrays: plan, build (seeded), forward; no files, no hooks.

For scripts that compare several models on several signals (bench_quality.py,
plot_artifacts.py) without composing a Hydra config and writing a run dir for each one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from convscope.config.schema import ModelConfig
from convscope.stack.build import build_stack
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.rates import output_sample_rate, upsampling_factor


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
    plans = plan_stack(model.layers, x.shape, causal=model.causal)
    stack = build_stack(plans, seed)
    with torch.no_grad():
        outputs = stack(torch.as_tensor(x))[0].numpy()
    upsampling = upsampling_factor(plans)
    rate = int(round(output_sample_rate(plans, sample_rate)))
    return StackRun(outputs, rate, upsampling, plans, stack)
