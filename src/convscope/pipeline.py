"""load → plan → build → trace → write: the whole run as plain function calls.

`run(cfg, out_dir)` is what scripts/run.py and the tests call. Everything that can be wrong with
the input is checked (load, plan) before any file is written, and shapes.json is written last, so
a run dir that has shapes.json is a finished run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from convscope.atomic import atomic_path
from convscope.audio import Segment, clipping_gain, load_segment, write_wav
from convscope.config import RunConfig
from convscope.evaluate import plan_evaluation, run_evaluation
from convscope.layers import build_stack, output_sample_rate, plan_stack
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

    streamed = maybe_run_streamed(cfg, out_dir, base_dir or Path.cwd(), command)
    if streamed is not None:
        return streamed
    segment = load_segment(cfg.data, base_dir or Path.cwd())
    log.info("input: %s, %.3f-%.3f s at %d Hz, shape %s", segment.path, segment.start,
             segment.end, segment.sample_rate, list(segment.shape))
    plans = plan_stack(cfg.model.layers, segment.shape)
    exact_rate = output_sample_rate(plans, segment.sample_rate)
    output_rate = int(round(exact_rate))
    evaluation_plan = plan_evaluation(cfg.evaluate, plans, segment.sample_rate, output_rate)
    stack = build_stack(plans, cfg.seed)
    traces = trace_stack(stack, segment.samples[None], device)
    rows = layer_rows(plans, stack)
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, cfg.model.name, format_table(rows))
    log.info("output: shape %s at %s Hz", rows[-1].output_shape, _rate_text(exact_rate))

    audio_info = write_audio(out_dir / "audio", segment, traces[-1], output_rate, cfg) \
        if cfg.audio.enabled else None
    if cfg.plots.enabled:
        write_plots(out_dir / "plots", segment, traces, plans_rates(plans, segment.sample_rate), cfg)
    if cfg.save.weights:
        with atomic_path(out_dir / "weights.pt") as tmp:
            torch.save(stack.state_dict(), tmp)
    if evaluation_plan is not None:  # vs a real resampler: metrics.json, spectrum, reference.wav
        run_evaluation(evaluation_plan, segment, traces[-1].output[0], out_dir, cfg.audio,
                       cfg.plots)
    shapes = shapes_document(segment, rows, output_rate, audio_info)
    if exact_rate != output_rate:
        shapes["output"]["sample_rate_exact"] = exact_rate
    if cfg.save.shapes:
        write_shapes(out_dir / "shapes.json", shapes)
    if cfg.report:  # after shapes.json: the page reads the files the run left on disk
        write_report(out_dir, shapes, command)
    log.info("outputs written to %s", out_dir)
    return RunResult(out_dir, segment, rows, traces, output_rate, shapes)


def _rate_text(rate: float) -> str:
    return f"{rate:g}" if rate == int(rate) else f"{rate:.3f} (WAVs use {round(rate)})"


def plans_rates(plans, input_rate: int) -> list[float]:
    """Each layer's output sample rate, in order."""
    rates, rate = [], float(input_rate)
    for plan in plans:
        up, down = plan.stride_ratio
        rate = rate * up / down
        rates.append(rate)
    return rates


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
