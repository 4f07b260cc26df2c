"""A checked plan -> a seeded torch.nn.Sequential, with the interpolating inits applied.

Blocks are built from stack.blocks, nested as the plan nests them; `child_modules` pairs a block
plan's children with the submodules built for them (and their qualified names), for the rows.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from convscope.stack.blocks import AntiAliasedActivation, Parallel, Residual, Snake, SnakeBeta
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.inits import apply_init
from convscope.stack.plan import LayerPlan

SNAKE_CLASSES = {"Snake": Snake, "SnakeBeta": SnakeBeta}
CAUSAL_CLASSES = {"Conv1d": CausalConv1d, "ConvTranspose1d": CausalConvTranspose1d}


def build_stack(plans: list[LayerPlan], seed: int) -> nn.Sequential:
    """Construct the planned layers with a fixed seed: same seed, bit-identical weights.

    Every module is constructed first (in plan order, depth first: the random draws), then
    interpolating inits overwrite weights and weight_norm wraps convs, neither of which draws:
    layers that keep torch's default get the same weights as in a stack without them.
    """
    torch.manual_seed(seed)
    modules = [_construct(plan) for plan in plans]
    for plan, module in zip(plans, modules):
        _finish(plan, module)
    return nn.Sequential(*modules)


def child_modules(plan: LayerPlan, module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name relative to the block, submodule) for each of a block plan's children, in order."""
    if plan.type == "Residual":
        return [(f"inner.{i}", m) for i, m in enumerate(module.inner)]
    if plan.type == "Parallel":
        return [(f"branches.{i}", m) for i, m in enumerate(module.branches)]
    if plan.type == "AntiAliasedActivation":
        return [("up", module.up), ("act", module.act), ("down", module.down)]
    if plan.type == "Sequential":
        return [(str(i), m) for i, m in enumerate(module)]
    return []


def _construct(plan: LayerPlan) -> nn.Module:
    if plan.type == "AntiAliasedActivation":  # its Kaiser filters are fixed buffers, not draws
        up, act, _down = plan.children
        return AntiAliasedActivation(_construct(act), up.kwargs["ratio"],
                                     up.kwargs["kernel_size"])
    children = [_construct(child) for child in plan.children]
    if plan.type == "Sequential":
        return nn.Sequential(*children)
    if plan.type == "Residual":
        return Residual(nn.Sequential(*children))
    if plan.type == "Parallel":
        return Parallel(children, plan.kwargs["reduce"])
    if plan.type in SNAKE_CLASSES:
        return SNAKE_CLASSES[plan.type](**plan.kwargs)
    return layer_class(plan)(**plan.kwargs)


def layer_class(plan: LayerPlan) -> type[nn.Module]:
    """The class a leaf plan is built as: torch's, or the causal conv. A causal conv draws the
    same weights as torch's layer of the same shape (its padding does not enter the init)."""
    if plan.causal:
        return CAUSAL_CLASSES[plan.type]
    return getattr(nn, plan.type)


def _finish(plan: LayerPlan, module: nn.Module) -> None:
    """Inits, then weight_norm (which reparametrizes the initialised weight as g * v / |v|)."""
    if plan.children:
        for child, (_, submodule) in zip(plan.children, child_modules(plan, module)):
            _finish(child, submodule)
        return
    if plan.type in ("Conv1d", "ConvTranspose1d"):
        apply_init(module, plan.init, plan.left_padding)
        if plan.weight_norm:
            weight_norm(module)


def weight_and_bias_shapes(module: nn.Module) -> tuple[Optional[list[int]], Optional[list[int]]]:
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    return (list(weight.shape) if isinstance(weight, torch.Tensor) else None,
            list(bias.shape) if isinstance(bias, torch.Tensor) else None)
