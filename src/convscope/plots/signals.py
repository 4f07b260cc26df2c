"""What one layer's figure shows, in NumPy terms (no matplotlib: streamed runs build it while
samples flow), and the title that says it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Optional

import numpy as np

from convscope.audio.features import FeatureInput
from convscope.plots.envelopes import Envelope
from convscope.plots.zoom import ZoomData

Rate = float | Fraction
Drawn = np.ndarray | list[Envelope]  # (channels, length) samples, or one envelope per channel


@dataclass(frozen=True)
class LayerSignals:
    """What one layer's figure draws: the layer's own input (the stack's input for the first
    layer, the previous layer's output after it) and its output, each as its first channels
    (up to plots.max_channels), with the full shapes the title states."""

    index: int
    type: str
    input: Drawn | FeatureInput
    input_shape: list[int]
    input_rate: Rate
    input_name: str  # where the input comes from: "the stack input", "layer 0's output"
    output: Drawn
    output_shape: list[int]
    output_rate: Rate
    zoom: Optional[ZoomData] = None
    # (input, output) channels there were to draw before the figure's panel cap (capped())
    available: Optional[tuple[int, int]] = None

    @property
    def drawn_inputs(self) -> int:
        return 0 if isinstance(self.input, FeatureInput) else len(self.input)


MAX_CHANNEL_PANELS = 8  # channel rows in one layer figure, input and output together


def channel_panels(inputs: int, outputs: int, cap: int = MAX_CHANNEL_PANELS) -> tuple[int, int]:
    """How many input and output channels a layer figure draws: all when they fit in `cap`
    rows, else half each, a side with fewer giving the rest to the other."""
    if inputs + outputs <= cap:
        return inputs, outputs
    shown_in = min(inputs, max(cap // 2, cap - outputs))
    return shown_in, min(outputs, cap - shown_in)


def capped(layer: LayerSignals) -> LayerSignals:
    """The layer with only the channels its figure has rows for (channel_panels)."""
    image = isinstance(layer.input, FeatureInput)
    shown_in, shown_out = channel_panels(1 if image else layer.drawn_inputs, len(layer.output))
    return replace(layer, input=layer.input if image else layer.input[:shown_in],
                   output=layer.output[:shown_out],
                   available=(layer.drawn_inputs, len(layer.output)))


def layer_title(layer: LayerSignals) -> str:
    """Two lines: the layer with its input and output shapes and rates, then what is drawn."""
    head = (f"layer {layer.index}: {layer.type}   input {list(layer.input_shape)} at "
            f"{rate_label(layer.input_rate)} Hz ({layer.input_name})  ->  output "
            f"{list(layer.output_shape)} at {rate_label(layer.output_rate)} Hz")
    available_in, available_out = layer.available or (layer.drawn_inputs, len(layer.output))
    if isinstance(layer.input, FeatureInput):
        drawn_in = f"input: all {layer.input_shape[1]} {layer.input.settings.kind} bins as an image"
    else:
        shown = _channels_drawn(layer.drawn_inputs, layer.input_shape[1], available_in)
        drawn_in = f"input: {shown}"
    shown = _channels_drawn(len(layer.output), layer.output_shape[1], available_out)
    drawn_out = f"output: {shown}"
    return f"{head}\ndrawn: {drawn_in}; {drawn_out}"


def _channels_drawn(drawn: int, total: int, available: int) -> str:
    if drawn == total:
        return "channel 0" if total == 1 else f"all {total} channels"
    why = (f"{MAX_CHANNEL_PANELS} channel panels per figure" if drawn < available
           else "plots.max_channels")
    return f"channels 0-{drawn - 1} of {total} ({why})"


def rate_label(rate: Rate) -> str:
    """`16000`, `11025/128 = 86.1328` for an exact rate that is not whole, `%g` for a float."""
    if isinstance(rate, Fraction):
        return str(rate) if rate.denominator == 1 else f"{rate} = {float(rate):.6g}"
    return f"{rate:g}"
