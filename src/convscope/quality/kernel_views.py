"""What a stack has learned, as kernels to draw: each conv layer's taps, and the whole stack's
impulse response (for a linear stack, exactly its end-to-end interpolation kernel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.stack.plan import CONV_TYPES, LayerPlan
from convscope.stack.rates import layer_rates


@dataclass(frozen=True)
class KernelView:
    """Kernels drawn in one column of plots/kernels.png."""

    title: str
    taps: np.ndarray  # (rows, kernel_size)
    labels: list[str]
    padding: int  # tap j sits at offset j - padding
    rate: float  # the rate the kernel runs at
    input_rate: float  # the stack's input rate: its Nyquist is marked when lower


MAX_KERNEL_ROWS = 6


def kernel_views(plans: list[LayerPlan], stack: nn.Sequential, input_rate: float,
                 channel: int) -> list[KernelView]:
    """Each conv layer's kernels (the last layer's that feed `channel`), then the whole stack's
    impulse response for `channel`: the interpolation kernel the stack has learned."""
    rates = [float(rate) for rate in layer_rates(plans, input_rate)]  # NumPy math below
    views = []
    last_conv = max((i for i, p in enumerate(plans) if p.type in CONV_TYPES),
                    default=-1)
    for plan, module, rate in zip(plans, stack, rates):
        if plan.type not in CONV_TYPES:
            continue
        views.append(_layer_view(plan, module, rate, input_rate,
                                 channel if plan.index == last_conv else None))
    views.append(impulse_view(stack, plans, rates[-1], input_rate, channel))
    return views


def _layer_view(plan: LayerPlan, module: nn.Module, rate: float, input_rate: float,
                channel: Optional[int]) -> KernelView:
    transposed = plan.type == "ConvTranspose1d"
    by_pair = kernels_by_channel_pair(plan, module.weight.detach().numpy())
    pairs = [pair for pair in by_pair if channel is None or pair[1] == channel]
    pairs = sorted(pairs)[:MAX_KERNEL_ROWS]
    taps = np.stack([by_pair[pair] for pair in pairs])
    labels = [f"in {i} -> out {o}" for i, o in pairs]
    padding = plan.left_padding
    kernel_rate = rate if transposed else rate * plan.kwargs["stride"]
    title = f"layer {plan.index} {plan.type} (k={plan.kwargs['kernel_size']}, " \
            f"s={plan.kwargs['stride']})"
    return KernelView(title, taps, labels, padding, kernel_rate, input_rate)


def kernels_by_channel_pair(plan: LayerPlan, weight: np.ndarray) -> dict:
    """{(input channel, output channel): taps} for every pair a kernel connects. Layouts:
    ConvTranspose1d (in, out/groups, k), Conv1d (out, in/groups, k); with groups, input
    channel i only reaches the outputs of its own group."""
    kw = plan.kwargs
    in_per, out_per = kw["in_channels"] // kw["groups"], kw["out_channels"] // kw["groups"]
    pairs = {}
    for i in range(kw["in_channels"]):
        group = i // in_per
        for o_in_group in range(out_per):
            o = group * out_per + o_in_group
            pairs[(i, o)] = (weight[i, o_in_group] if plan.type == "ConvTranspose1d"
                             else weight[o, i - group * in_per])
    return pairs


IMPULSE_INPUT_SAMPLES = 512  # room for kernels of several hundred taps
IMPULSE_AMPLITUDE = 0.01  # small, so tanh and friends stay near their linear range


def impulse_view(stack: nn.Sequential, plans: list[LayerPlan], output_rate: float,
                 input_rate: float, channel: int) -> KernelView:
    """Output `channel` for a small impulse minus the output for silence (which removes biases),
    per unit of impulse: for a linear stack exactly its end-to-end interpolation kernel at the
    output rate; for a nonlinear one, its linearisation around silence."""
    channels = plans[0].input_shape[1]
    silence = torch.zeros(1, channels, IMPULSE_INPUT_SAMPLES)
    impulse = silence.clone()
    impulse[:, :, IMPULSE_INPUT_SAMPLES // 2] = IMPULSE_AMPLITUDE
    with torch.no_grad():
        response = (stack(impulse)[0, channel] - stack(silence)[0, channel]).numpy() \
            / IMPULSE_AMPLITUDE
    up = output_rate / input_rate
    centre = int(round(IMPULSE_INPUT_SAMPLES // 2 * up))
    significant = np.flatnonzero(np.abs(response) > 1e-4 * max(np.abs(response).max(), 1e-30))
    reach = int(np.max(np.abs(significant - centre))) if len(significant) else 0
    half = min(max(reach, int(8 * up)), centre, len(response) - 1 - centre)
    taps = response[centre - half: centre + half + 1][None]
    return KernelView(f"whole stack, impulse response of ch {channel}", taps, ["impulse response"],
                      half, output_rate, input_rate)
