"""The per-layer rows (weights, biases, params, MACs, shapes, length formula) of the table,
shapes.json and describe().

`layer_row` is the one place a row is computed from (module, input shape, output shape): the
pipeline passes the shapes its plan computed (no forward pass: runs can be hours of audio),
describe() the shapes its hooks saw, so the CLI table, shapes.json and the API cannot disagree.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.errors import ConvscopeError
from convscope.stack.blocks import KaiserDownsample, KaiserUpsample
from convscope.stack.build import child_modules, layer_class, weight_and_bias_shapes
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.kaiser_lengths import upsample_padding
from convscope.stack.layer_formulas import rate_factor, rule_for
from convscope.stack.lengths import conv_padding, single
from convscope.stack.plan import CONV_TYPES, LayerPlan

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
         nn.ConvTranspose3d)
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
KAISER_TYPES = ("KaiserUpsample", "KaiserDownsample")


@dataclass(frozen=True)
class LayerRow:
    """One layer call: what goes in and out, what it holds and costs, and its length formula.

    `name` is the module's qualified name in the model (`ups.0`; `0`, `1`, `3.inner.1` ... in a
    config stack); the rates are exact and only there when describe() was given a sample rate.
    `key` is the config key of a config stack's layer (`model.layers.3.layers.1`; the three calls
    of an AntiAliasedActivation share its key); "" where there is no config.
    """

    index: int
    type: str
    weight_shape: Optional[list[int]]
    bias_shape: Optional[list[int]]
    params: int
    macs: int
    input_shape: Optional[list[int]]
    output_shape: Optional[list[int]]
    formula: str
    name: str = ""
    rate_in: Optional[Fraction] = None
    rate_out: Optional[Fraction] = None
    key: str = ""
    receptive_field: Optional[int] = None  # stack-input samples one output depends on
    lookahead: Optional[int] = None  # how many of them lie after the output's time
    # why there is no receptive field (an LSTM, a norm over the whole signal); None when known
    receptive_reason: Optional[str] = None
    # a 1-D conv's hyperparameters (kernel_size, stride, padding, dilation, groups; output_padding
    # for a transposed one; causal), so readers of shapes.json (the report's captions) need no torch
    conv: Optional[dict] = None

    def as_json(self) -> dict:
        """shapes.json's layer keys (plus name, and the rates as number + fraction text)."""
        doc = {"name": self.name}
        doc.update((key, getattr(self, key)) for key in (
            "index", "type", "weight_shape", "bias_shape", "params", "macs", "input_shape",
            "output_shape", "formula"))
        if self.key:
            doc["key"] = self.key
        for key, rate in (("sample_rate_in", self.rate_in), ("sample_rate_out", self.rate_out)):
            if rate is not None:
                doc[key] = int(rate) if rate.denominator == 1 else float(rate)
                doc[f"{key}_fraction"] = str(rate)
        for key in ("receptive_field", "lookahead", "receptive_reason", "conv"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        return doc


def layer_row(index: int, name: str, module: nn.Module, input_shape: Optional[Sequence[int]],
              output_shape: Optional[Sequence[int]],
              rate_in: Optional[Fraction] = None) -> LayerRow:
    """The row of one call of `module` that took `input_shape` to `output_shape`."""
    weight, bias = weight_and_bias_shapes(module)
    shape_in = None if input_shape is None else [int(n) for n in input_shape]
    shape_out = None if output_shape is None else [int(n) for n in output_shape]
    rate_out = None
    if rate_in is not None:
        rate_out = rate_in * rate_factor(module, last_length(shape_in), last_length(shape_out))
    return LayerRow(index, layer_type(module), weight, bias,
                    sum(p.numel() for p in module.parameters()),
                    module_macs(module, shape_in, shape_out), shape_in, shape_out,
                    row_formula(module, shape_in, shape_out), name, rate_in, rate_out,
                    conv=conv_settings(module))


def conv_settings(module: nn.Module) -> Optional[dict]:
    """A 1-D conv's settings as plain JSON values; None for any other layer."""
    if not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        return None
    settings = {name: single(getattr(module, name), name)
                for name in ("kernel_size", "stride", "dilation")}
    settings["padding"] = conv_padding(module.padding)
    if isinstance(module, nn.ConvTranspose1d):
        settings["output_padding"] = single(module.output_padding, "output_padding")
    settings["groups"] = module.groups
    if isinstance(module, (CausalConv1d, CausalConvTranspose1d)):
        settings["causal"] = True  # torch's padding is 0: the layer pads (or trims) on its own
    return settings


def layer_type(module: nn.Module) -> str:
    """The layer's class name; weight_norm and other parametrizations swap a module's class for a
    generated `ParametrizedConv1d` subclass, whose arithmetic is its base class's."""
    cls = type(module)
    base = cls.__base__
    if parametrize.is_parametrized(module) and cls.__name__ == f"Parametrized{base.__name__}":
        cls = base
    return cls.__name__


def layer_rows(plans: list[LayerPlan], stack: nn.Sequential,
               input_rate: Optional[Fraction] = None) -> list[LayerRow]:
    """The rows of a config stack, from the shapes its plan computed: one per leaf module call
    in call order, named as describe() names them (blocks replaced by the calls inside them).
    With `input_rate`, each row carries its exact rate in and out, as describe() gives them."""
    rows: list[LayerRow] = []

    def add(plan: LayerPlan, name: str, module: nn.Module,
            rate: Optional[Fraction]) -> Optional[Fraction]:
        if plan.children:
            child_rate = rate
            for child, (suffix, submodule) in zip(plan.children, child_modules(plan, module)):
                # Parallel's branches all read the block's input; the other blocks chain
                out = add(child, f"{name}.{suffix}", submodule, child_rate)
                child_rate = rate if plan.type == "Parallel" else out
            return None if rate is None else rate * Fraction(*plan.stride_ratio)
        row = layer_row(len(rows), name, module, plan.input_shape, plan.output_shape, rate)
        rows.append(replace(row, key=plan.key))
        return row.rate_out

    with torch.no_grad():  # weight_norm computes each weight for its shape
        rate = input_rate
        for plan, module in zip(plans, stack):
            rate = add(plan, str(plan.index), module, rate)
    return rows


def leaf_keys(plans: list[LayerPlan], stack: nn.Sequential) -> dict[str, str]:
    """The config key of every layer and block of a config stack, by its name in the built
    module (as describe() names it: `0`, `3.inner.1`): what a run's rows and errors call it."""
    keys: dict[str, str] = {}

    def add(plan: LayerPlan, name: str, module: nn.Module) -> None:
        keys[name] = plan.key
        for child, (suffix, submodule) in zip(plan.children, child_modules(plan, module)):
            add(child, f"{name}.{suffix}", submodule)

    for plan, module in zip(plans, stack):
        add(plan, str(plan.index), module)
    return keys


def row_formula(module: nn.Module, input_shape: Optional[list[int]],
                output_shape: Optional[list[int]]) -> str:
    """The layer's length formula for this call; what was measured where there is none."""
    kind = layer_type(module)
    length_in, length_out = last_length(input_shape), last_length(output_shape)
    if length_in is None or length_out is None:
        return f"no length formula for {kind} (no tensor in or out)"
    rule = rule_for(module)
    try:
        expected, text = rule(module, length_in) if rule else (None, "")
    except ConvscopeError:  # torch ran it, so a refusal here is a limit of the formula
        rule = None
    if rule is None:
        return f"L_out = {length_out} (measured; no length formula for {kind})"
    if expected != length_out:  # e.g. ConvTranspose1d called with output_size=
        text += f" (this call gave L_out = {length_out})"
    return text


def module_macs(module: nn.Module, input_shape: Optional[list[int]],
                output_shape: Optional[list[int]]) -> int:
    """Multiply-accumulates of one call, as torch's FlopCounterMode counts them (flops / 2).

    Convolutions: batch x conv length x weight size, where the conv length is the output's, and
    the *input's* for a transposed conv (each input sample scatters one weighted kernel copy);
    Linear: every leading index x in_features x out_features; the Kaiser resamplers their
    depthwise filters (kaiser_macs). Bias adds, activations and other layers count zero, as in FlopCounterMode's registry for these. Arithmetic, not
    FlopCounterMode itself: importing it pulls in torch._dynamo, about 2 s of every start-up.
    """
    if input_shape is None or output_shape is None:
        return 0
    if isinstance(module, CONVS):
        dims = len(module.kernel_size)
        batched = len(input_shape) == dims + 2  # torch also takes (C, L) without a batch axis
        spatial = input_shape if isinstance(module, TRANSPOSED) else output_shape
        batch = input_shape[0] if batched else 1
        return batch * math.prod(spatial[-dims:]) * math.prod(module.weight.shape)
    if isinstance(module, nn.Linear):
        return math.prod(input_shape[:-1]) * module.in_features * module.out_features
    if isinstance(module, (KaiserUpsample, KaiserDownsample)):
        kind = "KaiserUpsample" if isinstance(module, KaiserUpsample) else "KaiserDownsample"
        return kaiser_macs(kind, module.ratio, module.kernel_size, input_shape, output_shape)
    return 0


def kaiser_macs(kind: str, ratio: int, kernel_size: int, input_shape: Sequence[int],
                output_shape: Sequence[int]) -> int:
    """The Kaiser resamplers' depthwise filters, one kernel per channel: upsampling is a
    transposed conv over the replicate-padded input (counted per input sample, as
    FlopCounterMode counts transposed convs), downsampling a strided conv (per output sample)."""
    batch = input_shape[0] if len(input_shape) == 3 else 1
    channels = input_shape[-2]
    if kind == "KaiserUpsample":
        padded = input_shape[-1] + 2 * upsample_padding(ratio, kernel_size)[0]
        return batch * padded * channels * kernel_size
    return batch * output_shape[-1] * channels * kernel_size


def count_macs(plan: LayerPlan) -> int:
    """A planned layer's MACs before it is built: module_macs of the same layer made on the meta
    device (shapes only, no memory), so there is one count, checked against FlopCounterMode.
    A block counts the calls inside it."""
    if plan.children:
        return sum(count_macs(child) for child in plan.children)
    if plan.type in KAISER_TYPES:
        return kaiser_macs(plan.type, plan.kwargs["ratio"], plan.kwargs["kernel_size"],
                           plan.input_shape, plan.output_shape)
    if plan.type not in CONV_TYPES:
        return 0
    return module_macs(planned_conv(plan), list(plan.input_shape), list(plan.output_shape))


def planned_conv(plan: LayerPlan) -> nn.Module:
    """A planned Conv1d / ConvTranspose1d made on the meta device (shapes, no memory): what its
    MACs and its parameters are counted on before it is built. A kernel too large for torch to
    size is one line naming the layer."""
    try:
        try:
            return _meta_layer(layer_class(plan), tuple(sorted(plan.kwargs.items())))
        except TypeError:  # an unhashable argument: made afresh
            return layer_class(plan)(**plan.kwargs, device="meta")
    except RuntimeError as exc:  # kernel_size=2**63-1: torch's own size arithmetic overflows
        weights = (plan.kwargs["in_channels"] * plan.kwargs["out_channels"]
                   // plan.kwargs.get("groups", 1) * plan.kwargs["kernel_size"])
        raise ConvscopeError(
            f"{plan.key}: a {plan.type} of kernel_size={plan.kwargs['kernel_size']} has "
            f"{weights:.3g} weights, more than torch can size a tensor for; use a kernel "
            "that fits memory") from exc


@functools.lru_cache(maxsize=256)
def _meta_layer(cls: type, kwargs: tuple) -> nn.Module:
    """The layer made on the meta device, once per class and arguments: a corpus plans the same
    layers for every file (8 constructions a file, ~0.8 ms each). Only read, never changed."""
    return cls(**dict(kwargs), device="meta")


def last_length(shape: Optional[Sequence[int]]) -> Optional[int]:
    """The time axis's length of a shape (its last entry); None for no shape."""
    return shape[-1] if shape else None
