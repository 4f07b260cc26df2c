"""What each layer's figure is given: the layer's own input (the stack's input for the first
layer, the previous layer's output after it), its output, both cut to the drawn channels, and the
zoom panel's window, the same span of time for input and output.

The zoom start is chosen once per run (plots.zoom_start, or centred on the loudest stack-input
sample) and is the same time in every layer's figure; each layer's panel shows
plots.zoom_samples of that layer's input from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np
from torch import nn

from convscope.audio.features import FeatureInput
from convscope.config.schema import PlotsConfig
from convscope.plots.background import figure_sink
from convscope.plots.figure_worker import FigureJob
from convscope.plots.overview import OverviewRow
from convscope.plots.selection import choose_evenly, conv_rows, figure_rows
from convscope.plots.signals import LayerSignals
from convscope.plots.zoom import ConvGeometry, auto_zoom_start, zoom_data, zoom_window
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import exact_rate
from convscope.stack.rows import LayerRow


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
