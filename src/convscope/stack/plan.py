"""Layer specs → a checked plan (pure arithmetic), before anything is built (stack.build).

`plan_stack` walks the specs with the input shape and computes every layer's output shape and length
formula before anything is built, so a bad stack is rejected with the layer's config key
(`model.layers.1`, `model.layers.3.layers.1.kernel_size` inside a block) instead of torch's
nameless forward-time error.

Blocks (stack.blocks) are planned like layers, recursively: `Sequential`, `Residual` and
`Parallel` hold their sub-stack in `layers` (a Parallel's entries are its branches), and a block's
plan keeps its sub-plans in `children`. `Snake`/`SnakeBeta` are pointwise; an
`AntiAliasedActivation` is planned as its three calls (Kaiser up, activation, Kaiser down).

A conv with `causal: true` (or every conv, with `model.causal=true`, unless it says `causal:
false`) is planned as stack.causal's layer: its centred padding is replaced by the causal one,
which is allowed only where it keeps the layer's length for every input (the aligned padding),
so making a stack causal never changes its shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.stack.inits import DEFAULT_INIT, SINC_PARAMS, InitSpec, check_init, init_spec
from convscope.stack.kaiser_lengths import ANTI_ALIAS_KERNEL, ANTI_ALIAS_RATIO
from convscope.stack.layers.convolution import conv1d_length_rule
from convscope.stack.layers.convolution_config import (  # noqa: F401 -- CONV1D_PADDING_MODES
    CONV1D_PADDING_MODES,
    causal_padding,
    check_groups,
    check_positive,
    conv_length,
    transposed_length,
)
from convscope.stack.layers.resampling import (
    kaiser_downsample_length_rule,
    kaiser_upsample_length_rule,
    upsample_length_rule,
)
from convscope.stack.layers.transposed import conv_transpose1d_length_rule
from convscope.stack.lengths import POINTWISE_FORMULA

CONV_TYPES = ("Conv1d", "ConvTranspose1d")
# Pointwise activations, with the constructor keys each accepts.
ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "ReLU": (), "LeakyReLU": ("negative_slope",), "Tanh": (), "Sigmoid": (), "GELU": (),
    "SiLU": (), "ELU": ("alpha",), "Hardtanh": (),
}
CONV_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
             "groups", "bias", "padding_mode", "init") + SINC_PARAMS
UPSAMPLE_MODES = ("nearest", "linear", "nearest-exact")
SNAKES = ("Snake", "SnakeBeta")  # stack.blocks' periodic activations, one alpha per channel
SNAKE_KEYS = ("alpha", "logscale")
# Blocks with a sub-stack in `layers`, built from stack.blocks (Sequential: torch's)
CONTAINERS = ("Sequential", "Residual", "Parallel")
REDUCTIONS = ("mean", "sum")
BLOCK_KEYS: dict[str, tuple[str, ...]] = {
    "Sequential": ("layers",),
    "Residual": ("layers",),
    "Parallel": ("layers", "reduce"),
    **{name: SNAKE_KEYS for name in SNAKES},
    "AntiAliasedActivation": ("activation",) + SNAKE_KEYS,
}
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "Conv1d": CONV_KEYS + ("weight_norm", "causal"),
    "ConvTranspose1d": CONV_KEYS + ("output_padding", "weight_norm", "causal"),
    "Upsample": ("scale_factor", "mode"),
    **ACTIVATIONS,
    **BLOCK_KEYS,
}
# Inits centred on each input sample: taps before it, which a causal layer cannot hold
CENTRED_INITS = ("linear", "sinc")


@dataclass(frozen=True)
class LayerPlan:
    """What one layer will do, known before it is built."""

    index: int
    type: str
    kwargs: dict  # constructor arguments, defaults filled in
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    formula: str
    stride_ratio: tuple[int, int]  # (up, down): how this layer scales the sample rate
    init: InitSpec = DEFAULT_INIT  # conv weights: torch's seeded default or an interpolator
    path: str = ""  # the full config key (model.layers.3.layers.1); "" = model.layers.<index>
    # A block's sub-plans: Sequential/Residual their sub-stack, Parallel one plan per branch,
    # AntiAliasedActivation its Kaiser up, activation and Kaiser down (all under its own key)
    children: tuple[LayerPlan, ...] = ()
    weight_norm: bool = False  # Conv1d/ConvTranspose1d: torch's weight_norm parametrization
    # Conv1d/ConvTranspose1d built as stack.causal's CausalConv1d/CausalConvTranspose1d (kwargs
    # then hold padding 0: the causal padding is the module's own)
    causal: bool = False

    @property
    def key(self) -> str:
        """The config key of this layer: what an error or a log line names."""
        return self.path or f"model.layers.{self.index}"

    @property
    def left_padding(self) -> int:
        """Samples of padding before the first input sample. Conv1d 'same' puts d*(k-1)//2 on the
        left (torch adds the odd sample on the right); 'valid' is 0 by the time it is planned;
        a causal Conv1d puts all d*(k-1) on the left."""
        if self.causal and self.type == "Conv1d":
            return self.kwargs["dilation"] * (self.kwargs["kernel_size"] - 1)
        padding = self.kwargs.get("padding", 0)
        if padding == "same":
            return self.kwargs["dilation"] * (self.kwargs["kernel_size"] - 1) // 2
        return int(padding)


def allowed_types() -> tuple[str, ...]:
    return tuple(LAYER_KEYS)


def plan_stack(specs: list[LayerConfig], input_shape: tuple[int, int, int],
               prefix: str = "model.layers", causal: bool = False) -> list[LayerPlan]:
    """Check every layer against the shape flowing into it; return the per-layer plan.
    `prefix` is the config key of `specs` (a block's sub-stack is `model.layers.3.layers`);
    `causal` is model.causal: every conv's default for its own `causal` key."""
    if not isinstance(causal, bool):
        raise ConvscopeError(f"model.causal must be true or false, got {causal!r}")
    plans: list[LayerPlan] = []
    shape = tuple(input_shape)
    for index, spec in enumerate(specs):
        source = ("the previous layer" if index else
                  "the input" if prefix == "model.layers" else "the block's input")
        plan = _plan_layer(index, f"{prefix}.{index}", spec, shape, source, causal)
        plans.append(plan)
        shape = plan.output_shape
    return plans


def leaf_plans(plans: list[LayerPlan]) -> list[LayerPlan]:
    """Every plan that is one module call, in call order (blocks replaced by their calls)."""
    leaves: list[LayerPlan] = []
    for plan in plans:
        leaves.extend(leaf_plans(list(plan.children)) if plan.children else [plan])
    return leaves


def _plan_layer(index: int, key: str, spec: LayerConfig, shape: tuple[int, int, int],
                source: str, causal: bool = False) -> LayerPlan:
    """One layer or block; `source` words where its input comes from, for channel errors;
    `causal`: model.causal, the convs' default."""
    if spec.type not in LAYER_KEYS:
        raise ConvscopeError(
            f"{key}.type: {spec.type!r} is not an allowed layer type; allowed: "
            f"{', '.join(allowed_types())}")
    _reject_foreign_keys(key, spec)
    if spec.type in ACTIVATIONS:
        kwargs = {name: getattr(spec, name) for name in ACTIVATIONS[spec.type]
                  if getattr(spec, name) is not None}
        return LayerPlan(index, spec.type, kwargs, shape, shape, POINTWISE_FORMULA, (1, 1),
                         path=key)
    if spec.type == "Upsample":
        plan = _plan_upsample(index, key, spec, shape)
        if causal and plan.kwargs["mode"] == "linear":
            raise ConvscopeError(
                f"{key}.mode: model.causal=true, but Upsample mode='linear' blends each output "
                "with the next input sample (lookahead 1); use mode=nearest, which is causal")
        return plan
    if spec.type in SNAKES:
        return _plan_snake(index, key, spec.type, spec, shape)
    if spec.type in CONTAINERS:
        return _plan_container(index, key, spec, shape, causal)
    if spec.type == "AntiAliasedActivation":
        if causal:
            raise ConvscopeError(
                f"{key}: model.causal=true, but AntiAliasedActivation's Kaiser filters are "
                f"centred (each output reads {ANTI_ALIAS_KERNEL // 2} upsampled samples ahead); "
                "a causal stack cannot hold it")
        return _plan_anti_aliased(index, key, spec, shape)
    return _plan_conv(index, key, spec, shape, source, causal)


def _plan_snake(index: int, key: str, type_: str, spec: LayerConfig,
                shape: tuple[int, int, int]) -> LayerPlan:
    alpha, logscale = _default(spec.alpha, 1.0), _default(spec.logscale, False)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < math.inf:
        raise ConvscopeError(f"{key}.alpha: {type_} needs a finite number > 0, got {alpha!r}")
    if not isinstance(logscale, bool):
        raise ConvscopeError(f"{key}.logscale must be true or false, got {logscale!r}")
    kwargs = dict(channels=shape[1], alpha=float(alpha), logscale=logscale)
    return LayerPlan(index, type_, kwargs, shape, shape, POINTWISE_FORMULA, (1, 1), path=key)


def _plan_container(index: int, key: str, spec: LayerConfig,
                    shape: tuple[int, int, int], causal: bool) -> LayerPlan:
    if not spec.layers:
        raise ConvscopeError(f"{key}.layers: {spec.type} needs a non-empty list of layers")
    if spec.type == "Parallel":
        reduce = _default(spec.reduce, "mean")
        if reduce not in REDUCTIONS:
            raise ConvscopeError(
                f"{key}.reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}")
        branches = tuple(_plan_layer(i, f"{key}.layers.{i}", branch, shape, "the block's input",
                                     causal)
                         for i, branch in enumerate(spec.layers))
        for branch in branches[1:]:
            if branch.output_shape != branches[0].output_shape:
                raise ConvscopeError(
                    f"{branch.key}: Parallel branch gives {list(branch.output_shape)} but branch "
                    f"0 ({branches[0].key}) gives {list(branches[0].output_shape)}; every branch "
                    "must give the same shape")
        out = branches[0].output_shape
        return LayerPlan(index, spec.type, dict(reduce=reduce), shape, out,
                         f"L_out = {out[-1]} (every branch)", (1, 1), path=key,
                         children=branches)
    children = tuple(plan_stack(spec.layers, shape, f"{key}.layers", causal))
    out = children[-1].output_shape
    if spec.type == "Residual":
        if out != tuple(shape):
            raise ConvscopeError(
                f"{key}: Residual adds its input {list(shape)} to its sub-stack's output, which "
                f"must have the same shape, got {list(out)}")
        return LayerPlan(index, spec.type, {}, shape, out, "L_out = L_in (x + sub-stack)",
                         (1, 1), path=key, children=children)
    up = math.prod(child.stride_ratio[0] for child in children)
    down = math.prod(child.stride_ratio[1] for child in children)
    return LayerPlan(index, spec.type, {}, shape, out, f"L_out = {out[-1]} (sub-stack)",
                     (up, down), path=key, children=children)


def _plan_anti_aliased(index: int, key: str, spec: LayerConfig,
                       shape: tuple[int, int, int]) -> LayerPlan:
    activation = _default(spec.activation, "SnakeBeta")
    if activation not in SNAKES:
        raise ConvscopeError(
            f"{key}.activation: AntiAliasedActivation takes {' or '.join(SNAKES)}, got "
            f"{activation!r}")
    ratio, kernel = ANTI_ALIAS_RATIO, ANTI_ALIAS_KERNEL
    batch, channels, length = shape
    up_length, up_formula = kaiser_upsample_length_rule(length, ratio, kernel)
    up_shape = (batch, channels, up_length)
    down_length, down_formula = kaiser_downsample_length_rule(up_length, ratio, kernel)
    resampling = dict(ratio=ratio, kernel_size=kernel)
    up = LayerPlan(0, "KaiserUpsample", resampling, shape, up_shape, up_formula, (ratio, 1),
                   path=key)
    act = _plan_snake(1, key, activation, spec, up_shape)
    down = LayerPlan(2, "KaiserDownsample", dict(resampling), up_shape,
                     (batch, channels, down_length), down_formula, (1, ratio), path=key)
    if down_length != length:  # cannot happen with BigVGAN's filter; guards a changed constant
        raise ConvscopeError(f"{key}: AntiAliasedActivation would change the length {length} -> "
                             f"{down_length}")
    kwargs = dict(activation=activation, alpha=act.kwargs["alpha"],
                  logscale=act.kwargs["logscale"])
    return LayerPlan(index, spec.type, kwargs, shape, down.output_shape,
                     f"L_out = L_in = {length} (2x up, {activation}, 2x down)", (1, 1), path=key,
                     children=(up, act, down))


def _plan_upsample(index: int, key: str, spec: LayerConfig,
                   shape: tuple[int, int, int]) -> LayerPlan:
    scale, mode = spec.scale_factor, _default(spec.mode, "nearest")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ConvscopeError(f"{key}.scale_factor: Upsample needs an integer >= 1, got {scale!r}")
    if mode not in UPSAMPLE_MODES:
        raise ConvscopeError(f"{key}.mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
    batch, channels, length = shape
    length_out, formula = upsample_length_rule(length, scale)
    return LayerPlan(index, spec.type, dict(scale_factor=scale, mode=mode), shape,
                     (batch, channels, length_out), formula, (scale, 1), path=key)


def _reject_foreign_keys(key: str, spec: LayerConfig) -> None:
    accepted = set(LAYER_KEYS[spec.type]) | {"type"}
    for name, value in vars(spec).items():
        if value is not None and name not in accepted:
            raise ConvscopeError(f"{key}.{name}: {spec.type} takes no {name} (got {value!r})")


def _plan_conv(index: int, key: str, spec: LayerConfig, shape: tuple[int, int, int],
               source: str, model_causal: bool = False) -> LayerPlan:
    batch, channels, length = shape
    transposed = spec.type == "ConvTranspose1d"
    in_channels = channels if spec.in_channels is None else spec.in_channels
    if in_channels != channels:
        raise ConvscopeError(
            f"{key}.in_channels: {spec.type} expects {in_channels} channels but {source} gives "
            f"{channels}")
    if spec.out_channels is None or spec.kernel_size is None:
        raise ConvscopeError(f"{key}: {spec.type} needs out_channels and kernel_size")
    kw = dict(in_channels=in_channels, out_channels=spec.out_channels,
              kernel_size=spec.kernel_size, stride=_default(spec.stride, 1),
              padding=_default(spec.padding, 0), dilation=_default(spec.dilation, 1),
              groups=_default(spec.groups, 1), bias=_default(spec.bias, True),
              padding_mode=_default(spec.padding_mode, "zeros"))
    if transposed:
        kw["output_padding"] = _default(spec.output_padding, 0)
    check_positive(key, kw, ("out_channels", "kernel_size", "stride", "dilation", "groups"))
    check_groups(key, spec.type, kw)
    causal = model_causal if spec.causal is None else spec.causal
    if not isinstance(causal, bool):
        raise ConvscopeError(f"{key}.causal must be true or false, got {causal!r}")
    if causal:
        causal_padding(key, spec.type, kw, spec.causal is None)
        k, s, d = kw["kernel_size"], kw["stride"], kw["dilation"]
        length_out, formula = (conv_transpose1d_length_rule(length, k, s, 0, 0, d, causal=True)
                               if transposed else conv1d_length_rule(length, k, s, 0, d,
                                                                     causal=True))
    elif transposed:
        length_out, formula = transposed_length(key, kw, length)
    else:
        length_out, formula = conv_length(key, kw, length)
    if length_out < 1:
        raise ConvscopeError(
            f"{key}: {spec.type} output length would be {length_out} (< 1): {formula}")
    ratio = (kw["stride"], 1) if transposed else (1, kw["stride"])
    weight_norm = _default(spec.weight_norm, False)
    if not isinstance(weight_norm, bool):
        raise ConvscopeError(f"{key}.weight_norm must be true or false, got {weight_norm!r}")
    plan = LayerPlan(index, spec.type, kw, shape, (batch, kw["out_channels"], length_out),
                     formula, ratio,
                     init_spec(key, spec.init, spec.sinc_window, spec.sinc_beta, spec.sinc_cutoff),
                     path=key, weight_norm=weight_norm, causal=causal)
    if causal and plan.init.name in CENTRED_INITS:
        raise ConvscopeError(
            f"{key}.init: {plan.init.name!r} is centred on each input sample (taps before it, "
            "i.e. lookahead), which a causal layer cannot hold; use nearest, box or default")
    check_init(key, plan.init, spec.type, kw, plan.left_padding)
    return plan


def _default(value, default):
    return default if value is None else value
