"""What each layer's figure is given: the layer's own input (the stack's input for the first
layer, the previous layer's output after it), its output, both cut to the drawn channels, and the
zoom panel's window, the same span of time for input and output.

The zoom start is chosen once per run (plots.zoom_start, or centred on the loudest stack-input
sample) and is the same time in every layer's figure; each layer's panel shows
plots.zoom_samples of that layer's input from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.audio.features import FeatureInput
from convscope.config.schema import PlotsConfig
from convscope.errors import ConvscopeError
from convscope.plots.background import figure_sink
from convscope.plots.figure_worker import FigureJob
from convscope.plots.overview import OverviewRow
from convscope.plots.selection import choose_evenly, conv_rows, figure_rows, requested_names
from convscope.plots.signals import LayerSignals
from convscope.plots.zoom import ConvGeometry, auto_zoom_start, zoom_data, zoom_window
from convscope.rundir import RunDir
from convscope.stack.analysis import leaves
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.describe import describe
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import exact_rate
from convscope.stack.rows import LayerRow
from convscope.stack.user_streams import user_code_contained

log = logging.getLogger("convscope")
PLOTTED = (nn.Conv1d, nn.ConvTranspose1d)  # weight_norm's Parametrized* classes subclass them
SHORT_EXAMPLE = 64  # input samples of the pass that reads plots.layers' row indices


def plan_geometry(plan: LayerPlan) -> Optional[ConvGeometry]:
    """A config stack's Conv1d / ConvTranspose1d as the tap counts see it; None for other
    layers (their zoom shows the stems without counts)."""
    kw = plan.kwargs
    if plan.type == "ConvTranspose1d":  # causal: padding 0, trimmed on the right
        return ConvGeometry(True, kw["kernel_size"], kw["stride"],
                            0 if plan.causal else int(kw.get("padding", 0)), kw["dilation"])
    if plan.type == "Conv1d":
        return ConvGeometry(False, kw["kernel_size"], kw["stride"], plan.left_padding,
                            kw["dilation"])
    return None


def module_geometry(module: nn.Module) -> Optional[ConvGeometry]:
    """The same for a user module's conv call (model=module)."""
    if isinstance(module, CausalConvTranspose1d):
        return ConvGeometry(True, module.kernel_size[0], module.stride[0], 0, module.dilation[0])
    if isinstance(module, nn.ConvTranspose1d):
        return ConvGeometry(True, module.kernel_size[0], module.stride[0], module.padding[0],
                            module.dilation[0])
    if isinstance(module, CausalConv1d):
        return ConvGeometry(False, module.kernel_size[0], module.stride[0],
                            module.causal_padding, module.dilation[0])
    if isinstance(module, nn.Conv1d):
        k, d = module.kernel_size[0], module.dilation[0]
        padding = module.padding
        left = d * (k - 1) // 2 if padding == "same" else (0 if padding == "valid" else padding[0])
        return ConvGeometry(False, k, module.stride[0], left, d)
    return None


def zoom_start_seconds(source, cfg: PlotsConfig) -> float:
    """plots.zoom_start, or where a window centred on the loudest input sample starts (a feature
    input: of the audio its frames were computed from)."""
    if cfg.zoom_start is not None:
        return cfg.zoom_start
    audio = source.target if isinstance(source, FeatureInput) else source
    if audio is None:  # precomputed frames: no audio to find the loudest sample of
        return 0.0
    return auto_zoom_start(audio.samples, audio.sample_rate, cfg.zoom_samples)


@dataclass(frozen=True)
class LayerInput:
    """A layer's input as its figure needs it: the first channels, the full shape, its origin."""

    samples: np.ndarray | FeatureInput  # (drawn channels, L), or a feature input's frames
    shape: list[int]
    rate: Fraction
    name: str


def chained_inputs(source, traces, rates: list[Fraction]) -> dict[int, LayerInput]:
    """A config stack's layer inputs: the stack input, then each layer's output (traces of a
    Sequential are consecutive layers)."""
    inputs = {}
    previous, rate = None, exact_rate(source.sample_rate, "data.sr")
    for trace, output_rate in zip(traces, rates):
        if previous is None:
            samples = source if isinstance(source, FeatureInput) else source.samples
            inputs[trace.index] = LayerInput(samples, list(source.shape), rate, "the stack input")
        else:
            inputs[trace.index] = LayerInput(previous.output[0], list(previous.output.shape),
                                             rate, f"layer {previous.index}'s output")
        previous, rate = trace, output_rate
    return inputs


def layer_signals(index: int, type_: str, inputs, input_shape: list[int], input_rate,
                  name: str, outputs: np.ndarray, output_shape: list[int], output_rate,
                  cfg: PlotsConfig, zoom_start: float,
                  geometry: Optional[ConvGeometry] = None) -> LayerSignals:
    """One layer's figure from whole arrays (one-shot runs): inputs (C, L) or a FeatureInput,
    outputs (C, L); only the first plots.max_channels of each are kept."""
    shown = cfg.max_channels
    zoom = None
    if not isinstance(inputs, FeatureInput):
        inputs = inputs[:shown]
        if cfg.zoom_samples:
            window = zoom_window(zoom_start, cfg.zoom_samples, inputs.shape[-1],
                                 outputs.shape[-1], input_rate, output_rate)
            zoom = zoom_data(window, inputs[0, window.input_start: window.input_stop],
                             outputs[0, window.output_start: window.output_stop], input_rate,
                             output_rate, inputs.shape[-1], geometry)
    return LayerSignals(index, type_, inputs, list(input_shape), input_rate, name,
                        outputs[:shown], list(output_shape), output_rate, zoom)


def detailed_rows(rows: list[LayerRow], kept: dict, cfg: PlotsConfig) -> list[int]:
    """The rows whose own figure is drawn: figure_rows' choice (plots.layers, else the calls
    whose rate changes) among the calls whose outputs the pass kept, at most plots.max_layers."""
    return choose_evenly([i for i in figure_rows(rows, cfg.layers) if i in kept], set(),
                         cfg.max_layers)


def submit_overview(path: Path, rows: list[LayerRow], rms: list[float], detailed: list[int],
                    title: str, cfg: PlotsConfig):
    """plots/layers_overview.png: every conv call with its output RMS (`rms`, one per conv
    call in call order), drawn where the run's figures are drawn (the Figure when that is this
    process, for tests; None when a worker draws it or there is nothing to draw)."""
    convs = conv_rows(rows)
    if len(convs) != len(rms) or not convs:
        return None  # a conv the hooks did not see (called outside its module): not reliable
    overview = [OverviewRow(row.index, row.name, conv_label(row), level, row.rate_in,
                            row.rate_out, row.index in detailed)
                for row, level in zip(convs, rms)]
    return figure_sink(cfg).submit(FigureJob("overview", path, (overview, title, cfg)))


def conv_label(row: LayerRow) -> str:
    """ConvTranspose1d k16 s8 (s and d only when > 1): what tells a conv call from its
    neighbours."""
    conv = row.conv or {}
    parts = [row.type, f"k{conv.get('kernel_size', '?')}"]
    parts += [f"{key[0]}{conv[key]}" for key in ("stride", "dilation") if conv.get(key, 1) != 1]
    channels = row.output_shape[1] if row.output_shape and len(row.output_shape) > 1 else None
    return " ".join(parts) + ("" if channels is None else f" -> {channels} ch")


def conv_candidates(module: nn.Module, cfg: PlotsConfig, x: torch.Tensor, input_rate: Fraction,
                    label: str) -> set[int]:
    """ids of the modules whose outputs the pass keeps, chosen before it runs so memory stays
    at the drawn layers' outputs: by default the convs whose stride changes the rate; with
    plots.layers, the modules its rows name (row indices are read off describe() of a short
    stretch of the input: the rows do not depend on the length). `label` names the model."""
    modules = dict(module.named_modules())
    requested = cfg.layers
    if requested is None:
        convs = [m for m in modules.values() if isinstance(m, PLOTTED)]
        changing = [m for m in convs if m.stride[0] != 1] or convs[:1] + convs[-1:]
        return {id(m) for m in changing}
    names = {str(item) for item in requested if not str(item).isdigit()}
    leaf_names = [name for name, _ in leaves(module)]
    unknown = sorted(names - set(leaf_names))
    if unknown:  # refused before the forward, not after it
        convs = [name for name in leaf_names if isinstance(modules[name], PLOTTED)]
        raise ConvscopeError(f"plots.layers: {_unknown_text(unknown)} no layer of "
                             f"{label}; its conv layers are {_listed(convs)}")
    if len(names) < len(requested):  # row indices: a short pass names their modules
        with user_code_contained():
            rows = describe(module, x[..., :SHORT_EXAMPLE], sample_rate=input_rate).rows
        names = requested_names(rows, requested)
    return {id(modules[name]) for name in names if name in modules}


def conv_levels(module: nn.Module) -> tuple[list[float], list]:
    """Forward hooks recording every conv call's output RMS, in call order (the overview
    figure's bars); returns the list they fill and the handles to remove."""
    levels: list[float] = []

    def hook(_module, _args, output):
        if isinstance(output, torch.Tensor):
            levels.append(float(output.detach().double().pow(2).mean().sqrt()))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, PLOTTED)]
    return levels, handles


def plotted_rows(rows: list[LayerRow], kept: dict, cfg: PlotsConfig) -> list[int]:
    chosen = detailed_rows(rows, kept, cfg)
    why = "plots.layers" if cfg.layers is not None else \
        "the calls whose rate changes; plots.layers picks others"
    log.info("plots: %d detailed layer figures (rows %s: %s); every conv call is in %s",
             len(chosen), _ranges(chosen) or "none", why, RunDir.LAYERS_OVERVIEW)
    return chosen


def short_name(target: str) -> str:
    """model.target as a figure title names it: the class (path/to/gen.py:Generator -> Generator)."""
    return target.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def _unknown_text(unknown: list[str]) -> str:
    return f"{unknown[0]!r} is" if len(unknown) == 1 else f"{', '.join(map(repr, unknown))} are"


def _listed(names: list[str], shown: int = 8) -> str:
    return ", ".join(names[:shown]) + (f" (+{len(names) - shown} more)" if len(names) > shown
                                       else "")


def _ranges(indices: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
