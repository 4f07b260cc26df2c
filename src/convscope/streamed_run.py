"""The pipeline for long segments: the same outputs as pipeline.run, in bounded memory.

The input is read, resampled and mixed block by block (blockio), pushed through the stack block by
block with exact context (streaming), and every layer's samples are handed once, in order, to
bounded consumers: WAV writers, min/max envelopes for the feature-map plots, and one window of
input and output for the spectrogram. shapes.json reports the full shapes, as for short runs.

WAVs are float by default (`stream.subtype`): a PCM file needs one gain for the whole signal,
which is only known at the end. The subtype and the gain (1.0) are logged and saved.
"""

from __future__ import annotations

import logging
import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from convscope.audio import _check_segment, file_duration, read_header, resolve_path
from convscope.blockio import SegmentSpan, WavWriters, audio_blocks, segment_span
from convscope.config import RunConfig
from convscope.envelopes import EnvelopeAccumulator, WindowCapture
from convscope.evaluate import EvaluationPlan, run_evaluation
from convscope.layers import LayerPlan, layer_rates, plan_stack
from convscope.pipeline import finish_run, prepare_stack
from convscope.report import RunCommand
from convscope.streaming import layer_rules, stream_forward, unsupported_reason
from convscope.summary import LayerRow
from convscope.trace import torch_threads

log = logging.getLogger("convscope")
PROGRESS_MIN_SECONDS = 30.0  # shorter segments finish before a progress bar says anything
READ_BLOCK_SECONDS = 10.0


@dataclass(frozen=True)
class StreamedRun:
    """What a streamed run returns: like pipeline.RunResult, without whole-signal traces."""

    out_dir: Path
    span: SegmentSpan
    rows: list[LayerRow]
    output_rate: int
    shapes: dict


def streaming_decision(cfg: RunConfig, base_dir: Path) -> tuple[Optional[SegmentSpan], str]:
    """(span, reason) when this run should stream, (None, reason) when it should not."""
    mode = cfg.stream.enabled
    if mode == "false":
        return None, "stream.enabled=false"
    path = resolve_path(cfg.data.path, base_dir)
    header = read_header(path) if path.is_file() else None
    if header is None:  # the one-shot loader words the error, or decodes it with librosa
        return None, f"{path} is not a file soundfile can read block by block"
    duration = file_duration(path, header)
    end = duration if cfg.data.end is None else cfg.data.end
    _check_segment(path, cfg.data.start, end, duration)
    seconds = end - cfg.data.start
    if mode == "auto" and seconds <= cfg.stream.auto_seconds:
        return None, f"segment of {seconds:.1f} s <= stream.auto_seconds={cfg.stream.auto_seconds}"
    reason = f"stream.enabled={mode}, segment of {seconds:.1f} s"
    return segment_span(path, cfg.data, end, header), reason


def maybe_run_streamed(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
                       command: Optional[RunCommand] = None) -> Optional[StreamedRun]:
    """Run streamed when the config and the segment call for it; None means: run one-shot."""
    span, reason = streaming_decision(cfg, base_dir)
    if span is None:
        if cfg.stream.enabled == "true":
            log.warning("streaming off (one-shot forward): %s", reason)
        return None
    plans = plan_stack(cfg.model.layers, span.shape)
    unsupported = unsupported_reason(plans)
    if unsupported:
        log.warning("streaming off (one-shot forward of the whole segment): %s", unsupported)
        return None
    log.info("streaming block by block: %s", reason)
    return run_streamed(cfg, Path(out_dir), span, plans, device, command)


def run_streamed(cfg: RunConfig, out_dir: Path, span: SegmentSpan, plans: list[LayerPlan],
                 device: torch.device, command: Optional[RunCommand] = None) -> StreamedRun:
    prepared = prepare_stack(cfg, span, plans)
    stack = prepared.stack.to(device).eval()
    block_length = max(1, round(cfg.stream.block_seconds * prepared.exact_rate))
    consumers = Consumers(cfg, out_dir, span, plans, prepared.output_rate)
    with consumers, torch_threads(cfg.stream.threads):
        blocks = consumers.tap_input(audio_blocks(span, _read_block_frames(span)), device)
        stream_forward(layer_rules(plans, stack), blocks, block_length, consumers.on_output)
    n_blocks = math.ceil(plans[-1].output_shape[-1] / block_length)
    log.info("output: shape %s at %g Hz, %d blocks of %d samples", prepared.rows[-1].output_shape,
             prepared.exact_rate, n_blocks, block_length)
    audio_info = consumers.audio_info()
    if cfg.plots.enabled:
        consumers.write_plots(out_dir / "plots")
    if prepared.evaluation is not None:
        consumers.evaluate(prepared.evaluation, out_dir)
    stream_info = {"block_seconds": cfg.stream.block_seconds, "block_samples": block_length,
                   "blocks": n_blocks, "device": str(device)}
    shapes = finish_run(cfg, out_dir, span, prepared, audio_info, command,
                        extra={"stream": stream_info})
    return StreamedRun(out_dir, span, prepared.rows, prepared.output_rate, shapes)


def _read_block_frames(span: SegmentSpan) -> int:
    return max(1, int(READ_BLOCK_SECONDS * span.file_rate))


class Consumers:
    """Everything that looks at the streamed samples, each holding a bounded amount of them."""

    def __init__(self, cfg: RunConfig, out_dir: Path, span: SegmentSpan, plans: list[LayerPlan],
                 output_rate: int):
        self.cfg, self.span, self.plans, self.output_rate = cfg, span, plans, output_rate
        self.rates = layer_rates(plans, span.sample_rate)
        self.audio_dir = out_dir / "audio"
        max_bins = int(cfg.plots.width_inches * cfg.plots.dpi)
        shown = cfg.plots.max_channels
        # feature-map plots only: one envelope for the input, one per layer (drawn channels only)
        self.input_envelope = EnvelopeAccumulator(1, span.length, span.sample_rate, max_bins) \
            if cfg.plots.enabled else None
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
        self._open = ExitStack()  # closes (and cleans up) whatever was opened, even on failure

    def _window(self, channels: list[int], length: int, rate: float) -> WindowCapture:
        first = min(length, round(self.cfg.plots.spectrogram_start * rate))
        stop = min(length, first + round(self.cfg.plots.spectrogram_seconds * rate))
        return WindowCapture(channels, first, stop)

    def __enter__(self) -> "Consumers":
        if self.cfg.audio.enabled:
            out = self.plans[-1].output_shape
            names = [f"layer{self.last}_ch{k}.wav" for k in range(out[1])]
            self._writers = [
                # input.wav keeps all loaded channels in one file, as the one-shot path writes it
                WavWriters([self.audio_dir / "input.wav"], self.span.sample_rate, self.subtype,
                           self.span.length, channels=self.span.channels),
                WavWriters([self.audio_dir / name for name in names], self.output_rate,
                           self.subtype, out[-1])]
        for writer in self._writers:
            self._open.enter_context(writer)
        seconds = self.span.end - self.span.start
        if seconds >= PROGRESS_MIN_SECONDS:
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal (logs, sweeps, cluster jobs)
            self.progress = tqdm(total=round(seconds, 1), unit="s", desc="streaming",
                                 mininterval=0.5, disable=None,
                                 bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} audio s "
                                            "[{elapsed}<{remaining}]")
        return self

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
                self.input_envelope.add(start, block[:1])
            self.windows[0].add(start, block)
            self.peaks[0] = max(self.peaks[0], float(np.abs(block).max()))
            if self._writers:
                self._writers[0].write(self._for_wav(block))
            start += block.shape[-1]
            yield torch.from_numpy(block)[None].to(device)

    def on_output(self, layer: int, start: int, samples: torch.Tensor) -> None:
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
        self.peaks[1] = max(self.peaks[1], float(np.abs(block).max()))
        if self._writers:
            self._writers[1].write(self._for_wav(block))
        if self.progress is not None:
            self.progress.update(block.shape[-1] / self.rates[-1])

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
        files = [w.name for w in self._writers[1].paths]
        if self.clipped:
            log.warning("audio: %d samples beyond +-1 were clipped in the %s WAVs; use "
                        "stream.subtype=FLOAT to keep them", self.clipped, self.subtype)
        log.info("audio: streamed %s WAVs (%s), gain 1.0 (no global peak scaling); input peak "
                 "%.4f, output peak %.4f; in %s", self.subtype, self._writers[1].format,
                 self.peaks[0], self.peaks[1], self.audio_dir)
        return {"gain": 1.0, "gain_db": 0.0, "output_peak": self.peaks[1], "input_gain": 1.0,
                "input_peak": self.peaks[0], "subtype": self.subtype,
                "format": self._writers[1].format, "streamed": True,
                "clipped_samples": self.clipped,
                "files": [f"audio/{name}" for name in ["input.wav", *files]]}

    def evaluate(self, plan: EvaluationPlan, out_dir: Path) -> None:
        """The evaluate stage on the captured window: whole-signal metrics would need it all."""
        window_in, window_out = self.windows
        rate = self.span.sample_rate
        log.info("evaluate: streamed run, metrics over %.3f-%.3f s of the file (the plots window)",
                 self.span.start + window_in.first / rate, self.span.start + window_in.stop / rate)
        output = window_out.samples[window_out.channels.index(plan.channel)]
        run_evaluation(plan, window_in.samples, output, out_dir, self.cfg.audio, self.cfg.plots)

    def write_plots(self, plot_dir: Path) -> None:
        from convscope.plots import plot_layer, plot_spectrograms

        cfg, span = self.cfg.plots, self.span
        input_envelope = self.input_envelope.envelopes()[0]
        for plan, envelope, rate in zip(self.plans, self.envelopes, self.rates):
            title = (f"layer {plan.index}: {plan.type}  {list(plan.output_shape)} at {rate:g} Hz  "
                     f"(input {list(span.shape)} at {span.sample_rate} Hz)")
            plot_layer(plot_dir / f"layer{plan.index}_{plan.type}.png", title, input_envelope,
                       span.sample_rate, envelope.envelopes(), rate, cfg, plan.output_shape[1])
        if cfg.spectrogram:
            window_in, window_out = self.windows
            drawn = cfg.spectrogram_channels(self.plans[-1].output_shape[1])
            plot_spectrograms(plot_dir / "spectrogram.png", window_in.samples[0], span.sample_rate,
                              window_out.samples[:drawn], self.rates[-1], cfg)
            log.info("spectrogram of %.3f-%.3f s of the segment (plots.spectrogram_start, "
                     "plots.spectrogram_seconds)", window_in.first / span.sample_rate,
                     window_in.stop / span.sample_rate)
        log.info("plots in %s", plot_dir)


def _host(samples: torch.Tensor) -> np.ndarray:
    return samples.to("cpu", torch.float32).numpy()
