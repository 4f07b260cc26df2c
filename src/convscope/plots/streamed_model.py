"""What a streamed run of any nn.Module draws (pipeline.streamed.run_model_streamed), holding a
bounded amount of its output: the model's input and output as min/max envelopes, the output fed
block by block (the figure a streamed config stack draws for its last layer), and the
spectrogram of one window of both (plots.spectrogram_start, plots.spectrogram_seconds).

The layers inside are not drawn: the overlap streamer and the stateful cells hand back the
model's output only, so the envelope figure shows the model as one layer, input to output.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from fractions import Fraction
from typing import Optional

import numpy as np

from convscope.audio.features import FeatureInput
from convscope.config.schema import PlotsConfig
from convscope.plots.background import figure_sink
from convscope.plots.envelopes import EnvelopeAccumulator, WindowCapture
from convscope.plots.figure_worker import FigureJob
from convscope.plots.signals import LayerSignals
from convscope.rundir import RunDir

log = logging.getLogger("convscope")


class StreamedModelFigures:
    """Fed the output blocks in order (`add`), then `submit` draws: the model's figure (input
    envelope above output envelopes) and, with `spectrogram`, the window's spectrogram."""

    def __init__(self, plots: PlotsConfig, files: RunDir, source, input_rate: Fraction,
                 output_length: int, output_rate: Fraction, spectrogram: bool = True):
        self.plots, self.files, self.source = plots, files, source
        self.input_rate, self.output_rate = input_rate, output_rate
        self.output_length = output_length
        self.spectrogram = plots.spectrogram and spectrogram
        self.max_bins = int(plots.width_inches * plots.dpi)
        first = min(output_length, round(plots.spectrogram_start * output_rate))
        self.first, self.stop = first, min(output_length,
                                           first + round(plots.spectrogram_seconds * output_rate))
        self.envelope: Optional[EnvelopeAccumulator] = None
        self.window: Optional[WindowCapture] = None
        self.channels = 0

    def add(self, start: int, block: np.ndarray) -> None:
        """Output samples [start, start + n) of every channel: `block` is (channels, n)."""
        if self.envelope is None:  # the output's channels are known from its first block
            self.channels = block.shape[0]
            shown = min(self.channels, self.plots.max_channels)
            self.envelope = EnvelopeAccumulator(shown, self.output_length, self.output_rate,
                                                self.max_bins)
            drawn = self.plots.spectrogram_channels(self.channels)
            self.window = WindowCapture(list(range(drawn)), self.first,
                                        self.stop if self.spectrogram else self.first)
        block = block[:, : max(0, self.output_length - start)]  # the length it was set up for
        self.envelope.add(start, block[: self.envelope.low.shape[0]])
        self.window.add(start, block)

    def submit(self, index: int, layer_type: str, label: str) -> None:
        """Queue the figures (a figure worker draws them while the run finishes); `index`,
        `layer_type`: the last layer call's, which names the model figure's file."""
        if self.envelope is None:
            return
        sink = figure_sink(self.plots)
        source, features = self.source, isinstance(self.source, FeatureInput)
        if features:
            drawn_in = source
        else:
            shown = min(source.samples.shape[0], self.plots.max_channels)
            accumulator = EnvelopeAccumulator(shown, source.samples.shape[-1], self.input_rate,
                                              self.max_bins)
            accumulator.add(0, source.samples[:shown])
            drawn_in = accumulator.envelopes()
        shape_out = [1, self.channels, self.output_length]
        signals = LayerSignals(index, layer_type, drawn_in, list(source.shape), self.input_rate,
                               f"the input of {label} (streamed: the layers between are not "
                               "drawn)", self.envelope.envelopes(), shape_out,
                               self.output_rate)
        sink.submit(FigureJob("layer", self.files.layer_plot(index, layer_type),
                              (signals, self.plots)))
        if self.spectrogram:
            sink.submit(FigureJob("spectrogram", self.files.spectrogram,
                                  (self._window_input(), self.input_rate, self.window.samples,
                                   self.output_rate, self.plots)))
            log.info("spectrogram of %.3f-%.3f s of the segment (plots.spectrogram_start, "
                     "plots.spectrogram_seconds)", float(self.first / self.output_rate),
                     float(self.stop / self.output_rate))
        log.info("plots in %s (streamed: the model's input and output; stream.enabled=false "
                 "draws every conv call)", self.files.plots_dir)

    def _window_input(self):
        """The input over the output window's time span: samples, or a feature input's frames
        and target audio."""
        first_s = float(self.first / self.output_rate)
        stop_s = float(self.stop / self.output_rate)
        source = self.source
        a, b = round(first_s * self.input_rate), round(stop_s * self.input_rate)
        if not isinstance(source, FeatureInput):
            return source.samples[0, a:b]
        target = source.target
        shown = target
        if target is not None:
            ta, tb = round(first_s * target.sample_rate), round(stop_s * target.sample_rate)
            shown = replace(target, samples=target.samples[:, ta:tb],
                            start=target.start + ta / target.sample_rate,
                            end=target.start + tb / target.sample_rate)
        return replace(source, samples=source.samples[:, a:b], target=shown)
