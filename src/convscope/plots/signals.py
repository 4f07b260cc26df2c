"""What one layer's figure shows, in NumPy terms (no matplotlib: streamed runs build it while
samples flow), and the title that says it."""

from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def drawn_inputs(self) -> int:
        return 0 if isinstance(self.input, FeatureInput) else len(self.input)


def layer_title(layer: LayerSignals) -> str:
    """Two lines: the layer with its input and output shapes and rates, then what is drawn."""
    head = (f"layer {layer.index}: {layer.type}   input {list(layer.input_shape)} at "
            f"{rate_label(layer.input_rate)} Hz ({layer.input_name})  ->  output "
            f"{list(layer.output_shape)} at {rate_label(layer.output_rate)} Hz")
    if isinstance(layer.input, FeatureInput):
        drawn_in = f"input: all {layer.input_shape[1]} {layer.input.settings.kind} bins as an image"
    else:
        drawn_in = f"input: {_channels_drawn(layer.drawn_inputs, layer.input_shape[1])}"
    drawn_out = f"output: {_channels_drawn(len(layer.output), layer.output_shape[1])}"
    return f"{head}\ndrawn: {drawn_in}; {drawn_out}"


def _channels_drawn(drawn: int, total: int) -> str:
    if drawn == total:
        return "channel 0" if total == 1 else f"all {total} channels"
    return f"channels 0-{drawn - 1} of {total} (plots.max_channels)"



def rate_label(rate: Rate) -> str:
    """`16000`, `11025/128 = 86.1328` for an exact rate that is not whole, `%g` for a float."""
    if isinstance(rate, Fraction):
        return str(rate) if rate.denominator == 1 else f"{rate} = {float(rate):.6g}"
    return f"{rate:g}"
