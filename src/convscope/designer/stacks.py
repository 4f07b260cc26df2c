"""A candidate as the layer configs a run plans and builds, for a channel schedule.

The schedule: the first layer maps the input's channels (n_mels for features, 1 for a waveform)
to `channels`, each later layer multiplies by `factor` (0.5: halving, as HiFi-GAN), and the last
layer gives `out_channels` (1: the audio itself). `cap` limits every width, for cheap probes.
"""

from __future__ import annotations

from typing import Optional

from convscope.config.schema import LayerConfig
from convscope.designer.candidates import Candidate


def channel_schedule(layers: int, in_channels: int, channels: int, factor: float,
                     out_channels: int, cap: Optional[int] = None) -> list[tuple[int, int]]:
    """(in_channels, out_channels) of each layer."""
    widths = [max(1, round(channels * factor ** i)) for i in range(layers - 1)] + [out_channels]
    if cap is not None:
        widths = [min(width, cap) for width in widths]
        in_channels = min(in_channels, cap)
    return list(zip([in_channels] + widths[:-1], widths))


def stack_layers(candidate: Candidate, schedule: list[tuple[int, int]],
                 inits: Optional[list[tuple[str, int, int]]] = None) -> list[LayerConfig]:
    """The ConvTranspose1d configs; `inits` (name, padding, output_padding) per layer replace
    the exact padding by an interpolating init's own exact geometry."""
    configs = []
    for i, (layer, (c_in, c_out)) in enumerate(zip(candidate.layers, schedule)):
        padding, output_padding, init = layer.padding, layer.output_padding, None
        if inits is not None:
            init, padding, output_padding = inits[i]
        configs.append(LayerConfig(type="ConvTranspose1d", in_channels=c_in, out_channels=c_out,
                                   kernel_size=layer.kernel, stride=layer.stride,
                                   padding=padding, output_padding=output_padding, init=init))
    return configs
