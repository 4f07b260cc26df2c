"""Everything that looks at a streamed run's samples, each holding a bounded amount of them:
WAV writers, min/max envelopes for the feature-map plots, and one window of input and
output for the spectrogram and the evaluate stage.

FeatureConsumers: those of a streamed feature input (data.features=stft|mel|log_mel), as a
waveform's except for the input side, which is what a one-shot feature run writes for it. The
frames and their target audio are in memory already (10 min of log-mel at hop 256 x 80 bands
is ~16 MB, the audio ~50 MB): input.wav is the target audio written once, the stack input is
drawn as the image of its frames (no envelope, no zoom panel, as one-shot), and the spectrogram
figure shows the frames and target audio of the plots window beside the output window."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from convscope.audio.background import WriteBehind
from convscope.audio.blockio import SegmentSpan, WavWriters
from convscope.audio.features import FeatureInput
from convscope.config.schema import RunConfig
from convscope.pipeline.evaluate import run_evaluation
from convscope.pipeline.figures import plan_geometry, zoom_start_seconds
from convscope.plots.background import figure_sink
from convscope.plots.envelopes import EnvelopeAccumulator, WindowCapture
from convscope.plots.figure_worker import FigureJob
from convscope.plots.signals import LayerSignals
from convscope.plots.zoom import ZoomWindow, auto_zoom_start, zoom_data, zoom_window
from convscope.quality.evaluate import EvaluationPlan
from convscope.rundir import RunDir
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import layer_rates
from convscope.stack.trace import check_finite

log = logging.getLogger("convscope")


PROGRESS_MIN_SECONDS = 30.0  # shorter segments finish before a progress bar says anything


class Consumers:
    """Everything that looks at the streamed samples, each holding a bounded amount of them."""

    def __init__(self, cfg: RunConfig, out_dir: Path, span: SegmentSpan, plans: list[LayerPlan],
                 output_rate: Optional[int], spectrogram: bool = True, evaluate: bool = True):
        """`spectrogram`, `evaluate`: False where the run's decision turned that stage off."""
        self.cfg, self.span, self.plans, self.output_rate = cfg, span, plans, output_rate
        self.spectrogram = cfg.plots.enabled and cfg.plots.spectrogram and spectrogram
        self.evaluates = cfg.evaluate.enabled != "false" and evaluate
        self.rates = layer_rates(plans, span.sample_rate)
        self.files = RunDir(out_dir)
        max_bins = int(cfg.plots.width_inches * cfg.plots.dpi)
        shown = cfg.plots.max_channels
        # feature-map plots only: one envelope for the input, one per layer (drawn channels only);
        # layer i's figure draws layer i-1's envelope as its input
        self.input_envelope = EnvelopeAccumulator(min(span.channels, shown), span.length,
                                                  span.sample_rate, max_bins) \
            if cfg.plots.enabled else None
        # zoom panels: channel 0 of each layer's input and output over a few dozen samples, set
        # up when the first input block shows where the loudest sample is (plots.zoom_start=null)
        self.zooms: Optional[list[tuple[ZoomWindow, WindowCapture, WindowCapture]]] = None
        self.zoom_start = cfg.plots.zoom_start
        self.zoom_origin = "centred on the loudest sample of the first input block"
        self.envelopes = [EnvelopeAccumulator(min(p.output_shape[1], shown), p.output_shape[-1],
                                              rate, max_bins) for p, rate in zip(plans, self.rates)
                          ] if cfg.plots.enabled else []
        # the output window keeps what the spectrogram draws and the channel the evaluate stage
        # compares, not all of a wide last layer
        out_channels = plans[-1].output_shape[1]
        drawn = list(range(cfg.plots.spectrogram_channels(out_channels)))
        evaluated = min(cfg.evaluate.channel, out_channels - 1)
        self.windows = (self._window(list(range(span.channels)), span.length, span.sample_rate),
                        self._window(drawn + [evaluated] * (evaluated not in drawn),
                                     plans[-1].output_shape[-1], self.rates[-1]))
        self.peaks = [0.0, 0.0]  # input, output
        self.clipped = 0
        self.subtype = cfg.stream.subtype
        self.last = len(plans) - 1
        self.progress = None
        self._writers: list[WavWriters] = []
        self._behind: Optional[WriteBehind] = None
        self._open = ExitStack()  # closes (and cleans up) whatever was opened, even on failure

    def _window(self, channels: list[int], length: int, rate: float) -> WindowCapture:
        first = min(length, round(self.cfg.plots.spectrogram_start * rate))
        stop = min(length, first + round(self.cfg.plots.spectrogram_seconds * rate))
        if not self.spectrogram and not self.evaluates:
            stop = first  # nothing reads the window: at 32 MHz, 10 s of it are gigabytes
        return WindowCapture(channels, first, stop)

    def __enter__(self) -> "Consumers":
        if self.cfg.audio.enabled:
            out = self.plans[-1].output_shape
            outputs = [self.files.channel_wav(self.last, k) for k in range(out[1])]
            self._writers = [self._input_writer()]
            if self.output_rate is not None:  # None: not a whole number of Hz, no WAV holds it
                self._writers.append(WavWriters(outputs, self.output_rate, self.subtype, out[-1]))
        for writer in self._writers:
            self._open.enter_context(writer)
        # entered last, left first: every queued block is written (or dropped, on failure)
        # before the WAVs are finished or removed
        self._behind = self._open.enter_context(WriteBehind()) \
            if self._writers and self.cfg.stream.background_io else None
        seconds = self.span.end - self.span.start
        if seconds >= PROGRESS_MIN_SECONDS:
            from tqdm import tqdm  # only for segments long enough to show a bar

            # disable=None: no bar when stderr is not a terminal (logs, sweeps, cluster jobs)
            self.progress = tqdm(total=round(seconds, 1), unit="s", desc="streaming",
                                 mininterval=0.5, disable=None,
                                 bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} audio s "
                                            "[{elapsed}<{remaining}]")
        return self

    def _input_writer(self) -> WavWriters:
        # input.wav keeps all loaded channels in one file, as the one-shot path writes it
        return WavWriters([self.files.input_wav], self.span.sample_rate, self.subtype,
                          self.span.length, channels=self.span.channels)

    def __exit__(self, *exc_info) -> bool:
        if self.progress is not None:
            self.progress.close()
        return self._open.__exit__(*exc_info)

    def tap_input(self, blocks: Iterator[np.ndarray], device: torch.device
                  ) -> Iterator[torch.Tensor]:
        """Pass input blocks on to the stack, feeding input.wav, its envelope and window."""
        start = 0
        for block in blocks:
            if self.input_envelope is not None:
                self.input_envelope.add(start, block[: self.input_envelope.low.shape[0]])
                if self.zooms is None and self.cfg.plots.zoom_samples:
                    self._start_zooms(block)
                if self.zooms:
                    self.zooms[0][1].add(start, block)
            self.windows[0].add(start, block)
            self.peaks[0] = max(self.peaks[0], _peak(block))
            if self._writers:
                self._write(self._writers[0], self._for_wav(block))
            start += block.shape[-1]
            yield torch.from_numpy(block)[None].to(device)

    def _start_zooms(self, first_block: np.ndarray) -> None:
        """Each layer's zoom window, the same time in every layer: plots.zoom_start, or centred
        on the loudest sample of the first input block (the whole segment is not seen yet)."""
        n = self.cfg.plots.zoom_samples
        if self.zoom_start is None:
            self.zoom_start = auto_zoom_start(first_block, self.span.sample_rate, n)
        rates = [self.span.sample_rate, *self.rates]
        lengths = [self.span.length, *(p.output_shape[-1] for p in self.plans)]
        self.zooms = []
        for i in range(len(self.plans)):
            window = zoom_window(self.zoom_start, n, lengths[i], lengths[i + 1], rates[i],
                                 rates[i + 1])
            self.zooms.append((window, WindowCapture([0], window.input_start, window.input_stop),
                               WindowCapture([0], window.output_start, window.output_stop)))

    def on_output(self, layer: int, start: int, samples: torch.Tensor) -> None:
        # every layer's block, in stack order: the first non-finite one names its layer
        check_finite(samples, self.plans[layer].key, self.plans[layer].type, start)
        if self.zooms:
            self._capture_zoom(layer, start, samples)
        if layer != self.last:  # intermediate layers only feed the feature-map envelopes
            if self.envelopes:
                envelope = self.envelopes[layer]
                # slice on the device: only the drawn channels cross to the host
                envelope.add(start, _host(samples[0, : envelope.low.shape[0]]))
            return
        block = _host(samples[0])
        if self.envelopes:
            self.envelopes[layer].add(start, block[: self.envelopes[layer].low.shape[0]])
        self.windows[1].add(start, block)
        self.peaks[1] = max(self.peaks[1], _peak(block))
        if len(self._writers) > 1:
            self._write(self._writers[1], self._for_wav(block))
        if self.progress is not None:
            self.progress.update(block.shape[-1] / self.rates[-1])

    def _capture_zoom(self, layer: int, start: int, samples: torch.Tensor) -> None:
        """Layer `layer`'s output is its own zoom's output and the next layer's zoom input:
        only the few samples in those windows cross to the host."""
        wanted = [self.zooms[layer][2]] + ([self.zooms[layer + 1][1]]
                                           if layer + 1 < len(self.zooms) else [])
        for capture in wanted:
            lo, hi = max(start, capture.first), min(start + samples.shape[-1], capture.stop)
            if hi > lo:
                capture.add(lo, _host(samples[0, :1, lo - start: hi - start]))

    def _write(self, writers: WavWriters, block: np.ndarray) -> None:
        """On the write-behind thread when there is one: `block` is never changed afterwards
        (each block is a new array)."""
        if self._behind is None:
            writers.write(block)
        else:
            self._behind.submit(writers.write, block)

    def _for_wav(self, block: np.ndarray) -> np.ndarray:
        if self.subtype in ("FLOAT", "DOUBLE"):
            return block
        # PCM can't hold |x| > 1 and no global gain is known yet: clip, and count what was clipped
        over = np.abs(block) > 1
        if over.any():
            self.clipped += int(over.sum())
            return np.clip(block, -1, 1)
        return block

    def audio_info(self) -> Optional[dict]:
        if not self.cfg.audio.enabled:
            return None
        if self.output_rate is None:
            reason = f"output rate {self.rates[-1]} Hz is not an integer; no WAV written"
            log.info("audio: %s; streamed %s input.wav in %s", reason, self.subtype,
                     self.files.audio_dir)
            return {"input_gain": 1.0, "input_peak": self.peaks[0], "output_peak": self.peaks[1],
                    "subtype": self.subtype, "streamed": True, "output_wavs": reason,
                    "files": [self.files.relative(self.files.input_wav)]}
        if self.clipped:
            log.warning("audio: %d samples beyond +-1 were clipped in the %s WAVs; use "
                        "stream.subtype=FLOAT to keep them", self.clipped, self.subtype)
        log.info("audio: streamed %s WAVs (%s), gain 1.0 (no global peak scaling); input peak "
                 "%.4f, output peak %.4f; in %s", self.subtype, self._writers[1].format,
                 self.peaks[0], self.peaks[1], self.files.audio_dir)
        return {"gain": 1.0, "gain_db": 0.0, "output_peak": self.peaks[1], "input_gain": 1.0,
                "input_peak": self.peaks[0], "subtype": self.subtype,
                "format": self._writers[1].format, "streamed": True,
                "clipped_samples": self.clipped,
                "files": [self.files.relative(path)
                          for path in [self.files.input_wav, *self._writers[1].paths]]}

    def evaluate(self, plan: EvaluationPlan, out_dir: Path) -> None:
        """The evaluate stage on the captured window: whole-signal metrics would need it all."""
        window_in, window_out = self.windows
        rate = self.span.sample_rate
        log.info("evaluate: streamed run, metrics over %.3f-%.3f s of the file (the plots window)",
                 self.span.start + window_in.first / rate, self.span.start + window_in.stop / rate)
        output = window_out.samples[window_out.channels.index(plan.channel)]
        run_evaluation(plan, window_in.samples, output, out_dir, self.cfg.audio, self.cfg.plots)

    def write_plots(self) -> None:
        sink = figure_sink(self.cfg.plots)  # a figure worker draws them while the run goes on
        cfg, span, files = self.cfg.plots, self.span, self.files
        inputs = [self._drawn_input(), *(e.envelopes() for e in self.envelopes)]
        shapes = [list(span.shape), *(list(p.output_shape) for p in self.plans)]
        rates = [span.sample_rate, *self.rates]
        for i, plan in enumerate(self.plans):
            zoom = None
            if self.zooms and self._zoomed(i):
                window, captured_in, captured_out = self.zooms[i]
                zoom = zoom_data(window, captured_in.samples[0], captured_out.samples[0],
                                 rates[i], rates[i + 1], shapes[i][-1], plan_geometry(plan))
            name = "the stack input" if i == 0 else f"layer {i - 1}'s output"
            layer = LayerSignals(plan.index, plan.type, inputs[i], shapes[i], rates[i], name,
                                 inputs[i + 1], shapes[i + 1], rates[i + 1], zoom)
            sink.submit(FigureJob("layer", files.layer_plot(plan.index, plan.type), (layer, cfg)))
        if self.spectrogram:
            window_in, window_out = self.windows
            drawn = cfg.spectrogram_channels(self.plans[-1].output_shape[1])
            sink.submit(FigureJob("spectrogram", files.spectrogram,
                                  (self._spectrogram_input(), span.sample_rate,
                                   window_out.samples[:drawn], self.rates[-1], cfg)))
            log.info("spectrogram of %.3f-%.3f s of the segment (plots.spectrogram_start, "
                     "plots.spectrogram_seconds)", window_in.first / span.sample_rate,
                     window_in.stop / span.sample_rate)
        if self.zooms:
            log.info("zoom panels from %.4f s of the segment (%s)", self.zoom_start,
                     "plots.zoom_start" if cfg.zoom_start is not None else self.zoom_origin)
        log.info("plots in %s", files.plots_dir)

    # what the figures draw of the stack input (FeatureConsumers draws frames instead)
    def _drawn_input(self):
        return self.input_envelope.envelopes()

    def _zoomed(self, layer: int) -> bool:
        return True

    def _spectrogram_input(self):
        return self.windows[0].samples[0]


def _peak(block: np.ndarray) -> float:
    """max |x| by two reductions, without np.abs's temporary copy of the block."""
    return float(max(block.max(), -block.min())) if block.size else 0.0


def _host(samples: torch.Tensor) -> np.ndarray:
    return samples.to("cpu", torch.float32).numpy()


class FeatureConsumers(Consumers):
    """Consumers of a streamed run whose stack input is `source`'s frames."""

    def __init__(self, cfg: RunConfig, out_dir: Path, source: FeatureInput,
                 plans: list[LayerPlan], output_rate: Optional[int], spectrogram: bool = True,
                 evaluate: bool = True):
        super().__init__(cfg, out_dir, source, plans, output_rate, spectrogram, evaluate)
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
