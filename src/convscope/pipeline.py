"""load → plan → build → trace → write: the whole run as plain function calls.

`run(cfg, out_dir)` is what scripts/run.py and the tests call. Everything that can be wrong with
the input is checked (load, plan) before any file is written, and shapes.json then index.html
are written last (finish_run), so a run dir that has shapes.json is a finished run. The streamed
path (streamed_run) and the learn stage share prepare_stack and finish_run with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch import nn

from convscope.atomic import atomic_path
from convscope.audio import Segment, clipping_gain, load_segment, write_wav
from convscope.config import RunConfig
from convscope.evaluate import EvaluationPlan, plan_evaluation, run_evaluation
from convscope.layers import LayerPlan, build_stack, layer_rates, output_sample_rate, plan_stack
from convscope.report import RunCommand, write_report
from convscope.summary import LayerRow, format_table, layer_rows, shapes_document, write_shapes
from convscope.trace import LayerTrace, pick_device, trace_stack

if TYPE_CHECKING:  # streamed_run imports this module: no import cycle at run time
    from convscope.streamed_run import StreamedRun

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    segment: Segment
    rows: list[LayerRow]
    traces: list[LayerTrace]
    output_rate: int
    shapes: dict


def run(cfg: RunConfig, out_dir: Path, base_dir: Optional[Path] = None,
        command: Optional[RunCommand] = None) -> RunResult | StreamedRun:
    out_dir = Path(out_dir)
    device = pick_device(cfg.device)
    # Long segments go block by block in bounded memory, with the same results (streamed_run)
    from convscope.streamed_run import maybe_run_streamed

    streamed = maybe_run_streamed(cfg, out_dir, base_dir or Path.cwd(), device, command)
    if streamed is not None:
        return streamed
    segment = load_segment(cfg.data, base_dir or Path.cwd())
    prepared = prepare_stack(cfg, segment, plan_stack(cfg.model.layers, segment.shape))
    traces = trace_stack(prepared.stack, segment.samples[None], device)
    log.info("output: shape %s at %s Hz", prepared.rows[-1].output_shape,
             _rate_text(prepared.exact_rate))

    audio_info = write_audio(out_dir / "audio", segment, traces[-1], prepared.output_rate, cfg) \
        if cfg.audio.enabled else None
    if cfg.plots.enabled:
        write_plots(out_dir / "plots", segment, traces,
                    layer_rates(prepared.plans, segment.sample_rate), cfg)
    evaluation = prepared.evaluation
    if evaluation is not None:  # vs a real resampler: metrics.json, spectrum, reference.wav
        run_evaluation(evaluation, segment.samples, traces[-1].output[0][evaluation.channel],
                       out_dir, cfg.audio, cfg.plots)
    shapes = finish_run(cfg, out_dir, segment, prepared, audio_info, command)
    return RunResult(out_dir, segment, prepared.rows, traces, prepared.output_rate, shapes)


@dataclass(frozen=True)
class PreparedStack:
    """Everything known about a run before any sample goes through the stack."""

    plans: list[LayerPlan]
    exact_rate: float
    output_rate: int  # what WAVs can hold
    evaluation: Optional[EvaluationPlan]  # None: the evaluate stage is off
    stack: nn.Sequential
    rows: list[LayerRow]


def prepare_stack(cfg: RunConfig, source, plans: list[LayerPlan]) -> PreparedStack:
    """Output rate, evaluate plan, seeded stack and its table (logged) for checked `plans` of
    the input `source` (a loaded Segment or a streamed run's SegmentSpan)."""
    log.info("input: %s, %.3f-%.3f s at %d Hz, shape %s", source.path, source.start, source.end,
             source.sample_rate, list(source.shape))
    exact_rate = output_sample_rate(plans, source.sample_rate)
    output_rate = int(round(exact_rate))
    evaluation = plan_evaluation(cfg.evaluate, plans, source.sample_rate, output_rate)
    stack = build_stack(plans, cfg.seed)
    rows = layer_rows(plans, stack)
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, cfg.model.name, format_table(rows))
    return PreparedStack(plans, exact_rate, output_rate, evaluation, stack, rows)


def finish_run(cfg: RunConfig, out_dir: Path, source, prepared: PreparedStack,
               audio_info: Optional[dict], command: Optional[RunCommand] = None,
               extra: Optional[dict] = None) -> dict:
    """The end every run shares: weights.pt, then shapes.json (with `extra` sections), then the
    report page, which reads what the run left on disk. Returns the shapes document."""
    if cfg.save.weights:
        with atomic_path(out_dir / "weights.pt") as tmp:
            torch.save(prepared.stack.state_dict(), tmp)
    shapes = shapes_document(source, prepared.rows, prepared.exact_rate, audio_info)
    shapes.update(extra or {})
    if cfg.save.shapes:
        write_shapes(out_dir / "shapes.json", shapes)
    if cfg.report:
        write_report(out_dir, shapes, command)
    log.info("outputs written to %s", out_dir)
    return shapes


def _rate_text(rate: float) -> str:
    return f"{rate:g}" if rate == int(rate) else f"{rate:.3f} (WAVs use {round(rate)})"


def write_audio(audio_dir: Path, segment: Segment, last: LayerTrace, output_rate: int,
                cfg: RunConfig) -> dict:
    """input.wav plus one WAV per channel of the last layer, all channels scaled by one gain.

    One gain for every channel keeps their relative loudness; the gain only ever scales down, to
    keep PCM from clipping, and is reported so a listener knows the level was changed.
    """
    sub, target = cfg.audio.subtype, cfg.audio.peak
    input_peak = float(np.max(np.abs(segment.samples)))
    input_gain = clipping_gain(input_peak, target)
    write_wav(audio_dir / "input.wav", segment.samples, segment.sample_rate, sub, input_gain)
    outputs = last.output[0]
    output_peak = float(np.max(np.abs(outputs)))
    gain = clipping_gain(output_peak, target)
    files = ["input.wav"]
    for channel, samples in enumerate(outputs):
        name = f"layer{last.index}_ch{channel}.wav"
        write_wav(audio_dir / name, samples, output_rate, sub, gain)
        files.append(name)
    log.info("audio: output peak %.4f, gain %.4f applied to every output channel (%.2f dB); "
             "input gain %.4f; %s WAVs in %s", output_peak, gain, 20 * np.log10(gain), input_gain,
             sub, audio_dir)
    return {"gain": gain, "gain_db": float(20 * np.log10(gain)), "output_peak": output_peak,
            "input_gain": input_gain, "input_peak": input_peak, "subtype": sub,
            "files": [f"audio/{name}" for name in files]}


def write_plots(plot_dir: Path, segment: Segment, traces: list[LayerTrace], rates: list[float],
                cfg: RunConfig) -> None:
    from convscope.plots import plot_layer, plot_spectrograms

    input_signal = segment.samples[0]
    for trace, rate in zip(traces, rates):
        title = (f"layer {trace.index}: {trace.type}  {list(trace.output.shape)} at {rate:g} Hz  "
                 f"(input {list(segment.shape)} at {segment.sample_rate} Hz)")
        plot_layer(plot_dir / f"layer{trace.index}_{trace.type}.png", title, input_signal,
                   segment.sample_rate, trace.output[0], rate, cfg.plots)
    if cfg.plots.spectrogram:
        plot_spectrograms(plot_dir / "spectrogram.png", input_signal, segment.sample_rate,
                          traces[-1].output[0], rates[-1], cfg.plots)
    log.info("plots in %s", plot_dir)
