"""The per-layer rows (weights, biases, params, MACs, shapes, length formula) of the table and
shapes.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import nn

from convscope.stack.build import weight_and_bias_shapes
from convscope.stack.plan import CONV_TYPES, LayerPlan


@dataclass(frozen=True)
class LayerRow:
    index: int
    type: str
    weight_shape: Optional[list[int]]
    bias_shape: Optional[list[int]]
    params: int
    macs: int
    input_shape: list[int]
    output_shape: list[int]
    formula: str

    def as_json(self) -> dict:
        return dict(vars(self))


def layer_rows(plans: list[LayerPlan], stack: nn.Sequential) -> list[LayerRow]:
    rows = []
    for plan, module in zip(plans, stack):
        weight, bias = weight_and_bias_shapes(module)
        rows.append(LayerRow(plan.index, plan.type, weight, bias,
                             sum(p.numel() for p in module.parameters()), count_macs(plan),
                             list(plan.input_shape), list(plan.output_shape), plan.formula))
    return rows


def count_macs(plan: LayerPlan) -> int:
    """Multiply-accumulates of one layer, as torch's FlopCounterMode counts them (flops / 2).

    torch.utils.flop_counter.conv_flop_count: batch x conv length x prod(weight shape), where the
    conv length is the output's for Conv1d and the *input's* for ConvTranspose1d (each input
    sample scatters one weighted kernel copy). Computed here from the plan because importing
    FlopCounterMode pulls in torch._dynamo, about 2 s of every run's start-up;
    tests/test_layers.py checks the two agree on random stacks. Bias adds and activations count
    zero.
    """
    if plan.type not in CONV_TYPES:
        return 0
    kw = plan.kwargs
    weight_size = kw["in_channels"] * (kw["out_channels"] // kw["groups"]) * kw["kernel_size"]
    transposed = plan.type == "ConvTranspose1d"
    length = plan.input_shape[-1] if transposed else plan.output_shape[-1]
    return plan.input_shape[0] * length * weight_size
