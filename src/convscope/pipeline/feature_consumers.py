"""The consumers of a streamed feature input (data.features=stft|mel|log_mel): as a waveform's,
except for the input side, which is what a one-shot feature run writes for it.

The frames and their target audio are in memory already (10 min of log-mel at hop 256 x 80 bands
is ~16 MB, the audio ~50 MB): input.wav is the target audio written once, the stack input is drawn
as the image of its frames (no envelope, no zoom panel, as one-shot), and the spectrogram figure
shows the frames and target audio of the plots window beside the output window.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from convscope.audio.blockio import WavWriters
from convscope.audio.features import FeatureInput
from convscope.config.schema import RunConfig
from convscope.pipeline.consumers import Consumers, _peak
from convscope.pipeline.figures import zoom_start_seconds
from convscope.stack.plan import LayerPlan


class FeatureConsumers(Consumers):
    """Consumers of a streamed run whose stack input is `source`'s frames."""

    def __init__(self, cfg: RunConfig, out_dir: Path, source: FeatureInput,
                 plans: list[LayerPlan], output_rate: Optional[int]):
        super().__init__(cfg, out_dir, source, plans, output_rate)
        self.source = source
        self.input_envelope = None  # drawn as an image of the frames, as one-shot runs do
        self.peaks[0] = _peak(source.target.samples)
        if cfg.plots.enabled and cfg.plots.zoom_samples:
            # the whole target audio is known: the one-shot run's zoom start, not the first block's
            self.zoom_start = zoom_start_seconds(source, cfg.plots)
            self.zoom_origin = "centred on the loudest sample of the target audio"
            self._start_zooms(source.samples)

    def _input_writer(self) -> WavWriters:
        target = self.source.target  # input.wav: the audio the frames were computed from
        return WavWriters([self.files.input_wav], target.sample_rate, self.subtype,
                          target.samples.shape[-1], channels=target.samples.shape[0])

    def __enter__(self) -> "FeatureConsumers":
        super().__enter__()
        if self._writers:
            self._write(self._writers[0], self._for_wav(self.source.target.samples))
        return self

    def _drawn_input(self) -> FeatureInput:
        return self.source

    def _zoomed(self, layer: int) -> bool:
        return layer != 0  # a frame image has no zoom panel (pipeline.figures.layer_signals)

    def _spectrogram_input(self) -> FeatureInput:
        """The frames and the target audio over the output window's time span."""
        window = self.windows[1]
        rate = self.rates[-1]
        first_s, stop_s = window.first / rate, window.stop / rate
        source, target = self.source, self.source.target
        frames = source.samples[:, round(first_s * source.sample_rate):
                                round(stop_s * source.sample_rate)]
        a, b = round(first_s * target.sample_rate), round(stop_s * target.sample_rate)
        shown = replace(target, samples=target.samples[:, a:b], start=target.start + a /
                        target.sample_rate, end=target.start + b / target.sample_rate)
        return replace(source, samples=frames, target=shown)
