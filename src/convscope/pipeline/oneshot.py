"""The one-shot path: load the whole segment, one forward pass with hooks, then write.

Everything that can be wrong with the input is checked (load, plan) before any file is written,
and shapes.json then index.html are written last (stages.finish_run), so a run dir that has
shapes.json is a finished run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from convscope.audio.segment import Segment, load_segment
from convscope.audio.wav import clipping_gain, write_wav
from convscope.config.schema import RunConfig
from convscope.pipeline.evaluate import run_evaluation
from convscope.pipeline.results import RunResult
from convscope.pipeline.stages import _rate_text, finish_run, prepare_stack
from convscope.report.page import RunCommand
from convscope.rundir import RunDir
from convscope.stack.plan import plan_stack
from convscope.stack.rates import layer_rates
from convscope.stack.trace import LayerTrace, trace_stack

log = logging.getLogger("convscope")


def run_one_shot(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
                 command: Optional[RunCommand] = None) -> RunResult:
    segment = load_segment(cfg.data, base_dir)
    prepared = prepare_stack(cfg, segment, plan_stack(cfg.model.layers, segment.shape), device)
    traces = trace_stack(prepared.stack, segment.samples[None], device)
    log.info("output: shape %s at %s Hz", prepared.rows[-1].output_shape,
             _rate_text(prepared.exact_rate))

    files = RunDir(out_dir)
    audio_info = write_audio(files, segment, traces[-1], prepared.output_rate, cfg) \
        if cfg.audio.enabled else None
    if cfg.plots.enabled:
        write_plots(files, segment, traces,
                    layer_rates(prepared.plans, segment.sample_rate), cfg)
    evaluation = prepared.evaluation
    if evaluation is not None:  # vs a real resampler: metrics.json, spectrum, reference.wav
        run_evaluation(evaluation, segment.samples, traces[-1].output[0][evaluation.channel],
                       out_dir, cfg.audio, cfg.plots)
    shapes = finish_run(cfg, out_dir, segment, prepared, audio_info, command)
    return RunResult(out_dir, segment, prepared.rows, traces, prepared.output_rate, shapes)


def write_audio(files: RunDir, segment: Segment, last: LayerTrace, output_rate: int,
                cfg: RunConfig) -> dict:
    """input.wav plus one WAV per channel of the last layer, all channels scaled by one gain.

    One gain for every channel keeps their relative loudness; the gain only ever scales down, to
    keep PCM from clipping, and is reported so a listener knows the level was changed.
    """
    sub, target = cfg.audio.subtype, cfg.audio.peak
    input_peak = float(np.max(np.abs(segment.samples)))
    input_gain = clipping_gain(input_peak, target)
    write_wav(files.input_wav, segment.samples, segment.sample_rate, sub, input_gain)
    outputs = last.output[0]
    output_peak = float(np.max(np.abs(outputs)))
    gain = clipping_gain(output_peak, target)
    written = [files.input_wav]
    for channel, samples in enumerate(outputs):
        path = files.channel_wav(last.index, channel)
        write_wav(path, samples, output_rate, sub, gain)
        written.append(path)
    log.info("audio: output peak %.4f, gain %.4f applied to every output channel (%.2f dB); "
             "input gain %.4f; %s WAVs in %s", output_peak, gain, 20 * np.log10(gain), input_gain,
             sub, files.audio_dir)
    return {"gain": gain, "gain_db": float(20 * np.log10(gain)), "output_peak": output_peak,
            "input_gain": input_gain, "input_peak": input_peak, "subtype": sub,
            "files": [files.relative(path) for path in written]}


def write_plots(files: RunDir, segment: Segment, traces: list[LayerTrace], rates: list[float],
                cfg: RunConfig) -> None:
    from convscope.plots.layers import plot_layer, plot_spectrograms  # matplotlib: plots only

    input_signal = segment.samples[0]
    for trace, rate in zip(traces, rates):
        title = (f"layer {trace.index}: {trace.type}  {list(trace.output.shape)} at {rate:g} Hz  "
                 f"(input {list(segment.shape)} at {segment.sample_rate} Hz)")
        plot_layer(files.layer_plot(trace.index, trace.type), title, input_signal,
                   segment.sample_rate, trace.output[0], rate, cfg.plots)
    if cfg.plots.spectrogram:
        plot_spectrograms(files.spectrogram, input_signal, segment.sample_rate,
                          traces[-1].output[0], rates[-1], cfg.plots)
    log.info("plots in %s", files.plots_dir)
