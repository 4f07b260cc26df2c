"""A checked plan -> a seeded torch.nn.Sequential, with the interpolating inits applied."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from convscope.stack.inits import apply_init
from convscope.stack.plan import LayerPlan


def build_stack(plans: list[LayerPlan], seed: int) -> nn.Sequential:
    """Construct the planned layers with a fixed seed: same seed, bit-identical weights.

    Interpolating inits overwrite weights after every layer is built, so they leave the random
    draws (and so the weights) of the layers that keep torch's default unchanged.
    """
    torch.manual_seed(seed)
    modules = [getattr(nn, plan.type)(**plan.kwargs) for plan in plans]
    for plan, module in zip(plans, modules):
        apply_init(module, plan.init, plan.left_padding)
    return nn.Sequential(*modules)


def weight_and_bias_shapes(module: nn.Module) -> tuple[Optional[list[int]], Optional[list[int]]]:
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    return (list(weight.shape) if isinstance(weight, torch.Tensor) else None,
            list(bias.shape) if isinstance(bias, torch.Tensor) else None)
