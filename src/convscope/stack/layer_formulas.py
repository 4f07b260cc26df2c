"""The output length of one built torch layer, as a formula with its numbers, and its rate factor.

`formula(layer, length)` is the public entry. It reads the arguments a layer stores (torch keeps
1-D ones as 1-tuples) and reuses stack.lengths' texts for Conv1d, ConvTranspose1d, pointwise
layers and integer Upsample, so a built config stack describes itself with exactly the formulas
its plan printed. The checks here refuse what torch's forward would refuse for the length alone
(too much padding, an empty output), so a formula never promises a length torch cannot produce.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Optional, Sequence

from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.blocks import KaiserDownsample, KaiserUpsample
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.layers import MODULE_RELATIONS
from convscope.stack.layers.convolution import POOLS, conv1d_length_rule, pool_length_rule
from convscope.stack.layers.padding import PADS, check_wrap, pad_length_rule
from convscope.stack.layers.pointwise import POINTWISE
from convscope.stack.layers.resampling import (
    kaiser_downsample_length_rule,
    kaiser_upsample_length_rule,
    upsample_length_rule,
)
from convscope.stack.layers.relation import Relation
from convscope.stack.layers.transposed import conv_transpose1d_length_rule
from convscope.stack.lengths import POINTWISE_FORMULA, conv_padding, single
from convscope.stack.rates import exact_rate

# Same shape out as in, but values mix across an axis (normalisation, softmax).
SHAPE_KEEPING = tuple(getattr(nn, name) for name in (
    "BatchNorm1d", "InstanceNorm1d", "GroupNorm", "LayerNorm", "RMSNorm", "LocalResponseNorm",
    "Softmax", "Softmin", "LogSoftmax") if hasattr(nn, name))
SHAPE_KEEPING_FORMULA = "L_out = L_in (shape unchanged)"
ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)

Rule = Callable[[nn.Module, int], tuple[int, str]]


def formula(layer: nn.Module, length: int) -> str:
    """The length formula of `layer` for an input of `length` samples, ending in L_out.

    formula(nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1), 16000)
    -> 'L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000'
    """
    return layer_length(layer, length)[1]


def layer_length(layer: nn.Module, length: int) -> tuple[int, str]:
    """(L_out, formula text) of `layer` for `length` input samples; ConvscopeError if unknown."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ConvscopeError(f"length must be an integer >= 1, got {length!r}")
    rule = rule_for(layer)
    if rule is None:
        raise ConvscopeError(
            f"no length formula for {type(layer).__name__}; formulas exist for Conv1d, "
            "ConvTranspose1d, Upsample, MaxPool1d, AvgPool1d, LPPool1d, AdaptiveAvgPool1d, "
            "AdaptiveMaxPool1d, the 1-D padding layers, Linear, KaiserUpsample, "
            "KaiserDownsample and pointwise layers (activations, Snake, dropout, normalisation)")
    out, text = rule(layer, length)
    if out < 1:
        raise ConvscopeError(
            f"{type(layer).__name__}: output length would be {out} (< 1): {text}")
    return out, text


def rule_for(layer: nn.Module) -> Optional[Rule]:
    for types, rule in _RULES:
        if isinstance(layer, types):
            return rule
    return None


def rate_factor(layer: nn.Module, length_in: Optional[int],
                length_out: Optional[int]) -> Fraction:
    """How `layer` scales the sample rate: a layer the catalogue relates (its family's
    MODULE_RELATIONS: strides divide, transposed strides and whole Upsample scales multiply,
    pointwise and padding layers keep it) by its relation's exact rate, whatever forward a
    subclass brings; any other Upsample by its scale; shape-keeping layers keep it. Anything
    else (adaptive pools, Linear on the time axis, unknown layers) scales it by its length
    ratio, the one thing known about it."""
    relation = _catalogued_relation(layer)
    if relation is not None:
        return Fraction(relation.out_period, relation.in_period)
    if isinstance(layer, nn.Upsample) and layer.scale_factor is not None:
        return exact_rate(_one(layer.scale_factor), "scale_factor")
    if isinstance(layer, POINTWISE + SHAPE_KEEPING + PADS):
        return Fraction(1)
    if length_in and length_out:
        return Fraction(length_out, length_in)
    return Fraction(1)


def _catalogued_relation(layer: nn.Module) -> Optional[Relation]:
    """The relation of the first catalogued class `layer` is an instance of (families' order:
    the causal convs before their torch bases), None where there is none."""
    for base, relation in MODULE_RELATIONS.items():
        if isinstance(layer, base):
            return relation(layer)
    return None


def _causal(layer: nn.Module, length: int) -> tuple[int, str]:
    """CausalConv1d / CausalConvTranspose1d: their torch padding is 0, the causal one their own."""
    if isinstance(layer, CausalConvTranspose1d):
        return conv_transpose1d_length_rule(length, layer.kernel_size, layer.stride, 0, 0,
                                            layer.dilation, causal=True)
    return conv1d_length_rule(length, layer.kernel_size, layer.stride, 0, layer.dilation,
                              causal=True)


def _conv(layer: nn.Conv1d, length: int) -> tuple[int, str]:
    padding = conv_padding(layer.padding)
    if layer.padding_mode in ("reflect", "circular"):
        left = right = padding
        if padding == "same":  # torch splits d*(k-1), the odd sample on the right
            total = single(layer.dilation, "dilation") * (single(layer.kernel_size,
                                                                 "kernel_size") - 1)
            left, right = total // 2, total - total // 2
        check_wrap(layer, left, right, length, layer.padding_mode)
    return conv1d_length_rule(length, layer.kernel_size, layer.stride, layer.padding,
                              layer.dilation)


def _conv_transpose(layer: nn.ConvTranspose1d, length: int) -> tuple[int, str]:
    op, stride, dilation = (single(getattr(layer, name), name)
                            for name in ("output_padding", "stride", "dilation"))
    if not (op < stride or op < dilation):
        raise ConvscopeError(f"ConvTranspose1d: output_padding={op} must be smaller than "
                             f"stride={stride} or dilation={dilation}")
    return conv_transpose1d_length_rule(length, layer.kernel_size, layer.stride, layer.padding,
                                        layer.output_padding, layer.dilation)


def _upsample(layer: nn.Upsample, length: int) -> tuple[int, str]:
    if layer.size is not None:
        return upsample_length_rule(length, size=layer.size)
    return upsample_length_rule(length, _one(layer.scale_factor))


def _kaiser_upsample(layer: KaiserUpsample, length: int) -> tuple[int, str]:
    return kaiser_upsample_length_rule(length, layer.ratio, layer.kernel_size)


def _kaiser_downsample(layer: KaiserDownsample, length: int) -> tuple[int, str]:
    return kaiser_downsample_length_rule(length, layer.ratio, layer.kernel_size)


def _adaptive_pool(layer: nn.Module, length: int) -> tuple[int, str]:
    size = _one(layer.output_size)
    if size is None:  # None keeps the input's size
        return length, f"L_out = L_in = {length} (output_size=None)"
    size = single(size, "output_size")
    return size, f"L_out = output_size = {size}"


def _linear(layer: nn.Linear, length: int) -> tuple[int, str]:
    if length != layer.in_features:
        raise ConvscopeError(f"Linear: in_features={layer.in_features} must equal the last "
                             f"axis's length, got {length}")
    out = layer.out_features
    return out, f"L_out = out_features = {out} (Linear maps the last axis)"


def _pointwise(_layer: nn.Module, length: int) -> tuple[int, str]:
    return length, POINTWISE_FORMULA


def _shape_keeping(_layer: nn.Module, length: int) -> tuple[int, str]:
    return length, SHAPE_KEEPING_FORMULA


def _one(value):
    """A scale or size stored as a 1-tuple or a plain value."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 1:
            raise ConvscopeError(f"a 1-D layer takes one value, got {tuple(value)!r}")
        return value[0]
    return value


_RULES: tuple[tuple[tuple[type, ...], Rule], ...] = (
    ((CausalConv1d, CausalConvTranspose1d), _causal),  # before their torch base classes
    ((nn.Conv1d,), _conv),
    ((nn.ConvTranspose1d,), _conv_transpose),
    ((nn.Upsample,), _upsample),
    ((KaiserUpsample,), _kaiser_upsample),
    ((KaiserDownsample,), _kaiser_downsample),
    (POOLS, pool_length_rule),
    (ADAPTIVE_POOLS, _adaptive_pool),
    (PADS, pad_length_rule),
    ((nn.Linear,), _linear),
    (POINTWISE, _pointwise),
    (SHAPE_KEEPING, _shape_keeping),
)
