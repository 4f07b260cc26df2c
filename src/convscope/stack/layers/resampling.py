"""Resampling family: nn.Upsample / F.interpolate by a whole factor, repeat_interleave along time.

(The anti-aliased activations of BigVGAN and convscope's Kaiser resamplers are padding, a
transposed or strided conv and a crop: their ops are the other families'.)
"""

from __future__ import annotations

import math
from fractions import Fraction

from typing import Optional

from torch import nn

from convscope.stack.kaiser_lengths import (
    kaiser_downsample_formula,
    kaiser_downsample_length,
    kaiser_upsample_formula,
    kaiser_upsample_length,
)
from convscope.stack.layers.convolution import one
from convscope.stack.layers.flow import Flow, Op, axis_index, unresolved
from convscope.stack.layers.relation import Relation
from convscope.stack.lengths import single, upsample_formula


def upsample_length_rule(length: int, scale_factor=None, size=None) -> tuple[int, str]:
    """Upsample's length rule, (L_out, the formula text with its numbers): stack.plan asks it
    with a config's whole scale, stack.layer_formulas with a built layer's scale or size."""
    if size is not None:
        size = single(size, "size")
        return size, f"L_out = size = {size}"
    scale = float(scale_factor)
    if scale == int(scale):
        return length * int(scale), upsample_formula(length, int(scale))
    # torch truncates the float product (aten's upsample output size), so floor it the same way
    out = math.floor(float(length) * scale)
    return out, f"L_out = floor(L_in * scale_factor) = floor({length}*{scale:g}) = {out}"


def kaiser_upsample_length_rule(length: int, ratio: int, kernel_size: int) -> tuple[int, str]:
    """KaiserUpsample's length rule (BigVGAN's UpSample1d: replicate pad, transposed Kaiser
    sinc, trim), for stack.plan and stack.layer_formulas alike."""
    return (kaiser_upsample_length(length, ratio, kernel_size),
            kaiser_upsample_formula(length, ratio, kernel_size))


def kaiser_downsample_length_rule(length: int, ratio: int, kernel_size: int) -> tuple[int, str]:
    """KaiserDownsample's length rule (BigVGAN's DownSample1d: replicate pad, strided Kaiser
    sinc), for stack.plan and stack.layer_formulas alike."""
    return (kaiser_downsample_length(length, ratio, kernel_size),
            kaiser_downsample_formula(length, ratio, kernel_size))


def upsample_relation(scale: int, mode: str) -> Relation:
    """nn.Upsample by an integer scale: nearest copies input j // scale; linear (align_corners
    off) blends the inputs either side of (j + 1/2)/scale - 1/2, the right one with weight 0 when
    that position is a whole input index."""
    deps = []
    for phase in range(scale):
        if mode == "linear":
            source = Fraction(2 * phase + 1, 2 * scale) - Fraction(1, 2)
            left = math.floor(source)
            deps.append((left,) if source == left else (left, left + 1))
        else:
            deps.append((0,))
    return Relation(scale, 1, tuple(deps))


def interpolate(op: Op) -> Flow:
    """F.interpolate(input, size, scale_factor, mode, align_corners, ...) on the time axis."""
    tensor, flow = op.first()
    last = tensor.dim() - 1
    if flow.finite and flow.time_axis != last:
        return unresolved("interpolate over an axis that is not the time axis", last)
    mode, align = op.arg(3, "mode", "nearest"), op.arg(4, "align_corners")
    length_in, length_out = tensor.shape[-1], op.out_tensor().shape[-1]
    scale, rest = divmod(length_out, length_in)
    if tensor.dim() != 3 or rest or scale < 1:
        return unresolved(f"interpolate from {length_in} to {length_out} samples: no whole "
                          "factor", last)
    if mode in ("nearest", "nearest-exact") or (mode == "linear" and not align):
        return flow.through(upsample_relation(scale, "linear" if mode == "linear" else "nearest"))
    return unresolved(f"interpolate mode={mode!r}, align_corners={align}: no rule", last)


def repeat_interleave(op: Op) -> Flow:
    """x.repeat_interleave(r, dim=time): nearest upsampling written by hand, output j reads
    input j // r. Along another axis it keeps time; without a dim it flattens first."""
    tensor, flow = op.first()
    repeats, dim = op.arg(1, "repeats"), op.arg(2, "dim")
    if dim is None:
        return unresolved("repeat_interleave without dim flattens time with the other axes",
                          0)
    if axis_index(int(dim), tensor.dim()) != flow.time_axis:
        return flow
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        return unresolved("repeat_interleave by a tensor of counts: no whole factor",
                          flow.time_axis)
    return flow.through(upsample_relation(repeats, "nearest"))


# planned layer type -> its length rule (stack.plan and stack.layer_formulas ask it)
LENGTH_RULES = {"Upsample": upsample_length_rule, "KaiserUpsample": kaiser_upsample_length_rule,
                "KaiserDownsample": kaiser_downsample_length_rule}
OPS = {"interpolate": interpolate, "upsample": interpolate,
       "repeat_interleave": repeat_interleave}


# --- built modules (stack.receptive's walk over a config stack's tree) --------------------------


def upsample_module(module: nn.Upsample) -> Optional[Relation]:
    """A whole scale factor, nearest or linear without align_corners; None otherwise."""
    scale = one(module.scale_factor, "scale_factor") if module.size is None else None
    linear_ok = module.mode == "linear" and not module.align_corners
    if (scale is not None and float(scale) == int(scale) and int(scale) >= 1
            and (module.mode in ("nearest", "nearest-exact") or linear_ok)):
        return upsample_relation(int(scale), module.mode)
    return None


MODULE_RELATIONS = {nn.Upsample: upsample_module}
