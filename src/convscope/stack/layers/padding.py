"""Padding and cropping family: F.pad (ReflectionPad1d, ConstantPad1d... and EnCodec's pad1d
call it), slicing (DAC's `x[..., pad:-pad]`, BigVGAN's crop after its upsampler), narrow.

Padding by `left` shifts indices: output j reads input j - left, whatever the mode (reflect,
replicate and zeros only differ at the edges). A slice start:stop:step reads start + j*step.
"""

from __future__ import annotations

from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.lengths import single
from convscope.stack.layers.flow import Flow, Op, axis_index, unresolved
from convscope.stack.layers.relation import Relation
from convscope.text import fmt_operand

PADS = (nn.ConstantPad1d, nn.ReflectionPad1d, nn.ReplicationPad1d, nn.CircularPad1d)
# ZeroPad1d is a ConstantPad1d: isinstance covers it (and user subclasses of every type here).


def shift(offset: int, step: int = 1) -> Relation:
    """Output j reads input offset + j*step."""
    return Relation(1, step, ((offset,),))


def pad(op: Op) -> Flow:
    """F.pad(input, pad, mode, value): pad holds (left, right) pairs from the last axis back."""
    tensor, flow = op.first()
    widths = list(op.arg(1, "pad"))
    pair = tensor.dim() - 1 - flow.time_axis
    left = widths[2 * pair] if 2 * pair < len(widths) else 0
    return flow.through(shift(-int(left)))


def getitem(op: Op) -> Flow:
    """x[index]: ints drop an axis, None adds one, slices keep theirs; the time axis's slice is a
    crop (or a stride). A tensor index (gather) is not a crop."""
    tensor, flow = op.first()
    index = op.args[1]
    items = list(index) if isinstance(index, tuple) else [index]
    if any(not (item is None or item is Ellipsis or isinstance(item, (int, slice)))
           for item in items):
        return unresolved("indexes with a tensor or a list (a gather): no rule", flow.time_axis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        used = sum(item is not None for item in items if item is not Ellipsis)
        items[at:at + 1] = [slice(None)] * (tensor.dim() - used)
    items += [slice(None)] * (tensor.dim() - sum(item is not None for item in items))
    dim_in = dim_out = 0
    for item in items:
        if item is None:
            dim_out += 1
            continue
        if dim_in == flow.time_axis:
            if isinstance(item, int):
                return unresolved("picks one time sample with an integer index",
                                  max(0, dim_out - 1))
            start, _, step = item.indices(tensor.shape[dim_in])
            if step < 1:
                return unresolved("slices time backwards: no rule", dim_out)
            return flow.through(shift(start, step), dim_out)
        dim_in += 1
        dim_out += 0 if isinstance(item, int) else 1
    return flow


def narrow(op: Op) -> Flow:
    tensor, flow = op.first()
    dim, start = op.arg(1, "dim"), op.arg(2, "start")
    if axis_index(int(dim), tensor.dim()) != flow.time_axis:
        return flow
    return flow.through(shift(int(start) % tensor.shape[flow.time_axis]))


OPS = {"pad": pad, "__getitem__": getitem, "narrow": narrow}


# --- built modules (stack.receptive's walk over a config stack's tree) --------------------------


def pad_module(module: nn.Module) -> Relation:
    return shift(-module.padding[0])


MODULE_RELATIONS = {pad: pad_module for pad in PADS}


# --- a built padding layer's length rule (stack.layer_formulas asks it) -----------------------


def pad_length_rule(layer: nn.Module, length: int) -> tuple[int, str]:
    left, right = (single(n, "padding") for n in layer.padding)
    if isinstance(layer, nn.ReflectionPad1d):
        check_wrap(layer, left, right, length, "reflect")
    elif isinstance(layer, nn.CircularPad1d):
        check_wrap(layer, left, right, length, "circular")
    if length + min(left, 0) + min(right, 0) < 0:  # negative padding crops first, then pads
        raise ConvscopeError(f"{type(layer).__name__}: padding ({left}, {right}) crops more than "
                             f"the {length} input samples")
    out = length + left + right
    return out, (f"L_out = L_in + left + right = {length} + {fmt_operand(left)} + "
                 f"{fmt_operand(right)} = {out}")


def check_wrap(layer: nn.Module, left: int, right: int, length: int, mode: str) -> None:
    """Reflect padding mirrors the input without its edge sample, circular padding wraps it once:
    neither can pad more than the input has."""
    limit = length - 1 if mode == "reflect" else length
    if max(left, right) > limit:
        raise ConvscopeError(
            f"{type(layer).__name__}: {mode} padding ({left}, {right}) needs an input longer than "
            f"{max(left, right) - (mode == 'circular')} samples, got {length}")
