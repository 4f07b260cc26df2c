"""The one-shot path: load the whole segment, one forward pass with hooks, then write.

Everything that can be wrong with the input is checked (load, features, plan) before any file is
written, and shapes.json then index.html are written last (stages.finish_run), so a run dir that
has shapes.json is a finished run.
"""

from __future__ import annotations

import logging
import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.audio.wav import clipping_gain, write_wav
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.cost import run_cost
from convscope.pipeline.evaluate import run_evaluation
from convscope.pipeline.figures import (
    LayerInput,
    chained_inputs,
    conv_candidates,
    conv_levels,
    layer_signals,
    module_geometry,
    plan_geometry,
    plotted_rows,
    short_name,
    submit_overview,
    zoom_start_seconds,
)
from convscope.pipeline.results import RunContext, RunResult
from convscope.pipeline.stages import (
    PreparedStack,
    finish_run,
    plan_evaluate_stage,
    prepare_stack,
    run_alignment,
    shapes_document,
)
from convscope.plots.background import figure_sink
from convscope.plots.figure_worker import FigureJob
from convscope.plots.zoom import ConvGeometry
from convscope.rundir import RunDir
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import Rate, exact_rate, integer_rate, layer_rates, rate_text
from convscope.stack.rows import LayerRow
from convscope.stack.trace import LayerTrace, trace_stack
from convscope.stack.user_module import run_user_module
from convscope.text import format_table

log = logging.getLogger("convscope")


def run_one_shot(ctx: RunContext, cfg: RunConfig, source: Segment | FeatureInput,
                 plans: list[LayerPlan], stack: nn.Sequential) -> RunResult:
    """A config stack (built from `plans` of the loaded `source`, its weights in) in one
    forward pass with hooks, as `ctx` decided: the figures and the evaluate stage it kept."""
    prepared = prepare_stack(cfg, source, plans, stack, ctx.model_label, ctx.device,
                             ctx.evaluate)
    started = time.perf_counter()
    traces = trace_stack(prepared.stack, source.samples[None], ctx.device)
    cost = run_cost(prepared.rows, traces[-1].output.shape[-1], prepared.exact_rate,
                    time.perf_counter() - started)
    log.info("output: shape %s at %s Hz", prepared.rows[-1].output_shape,
             rate_text(prepared.exact_rate))

    files = RunDir(ctx.out_dir)
    audio_info = write_audio(files, source, traces[-1], prepared.exact_rate, cfg) \
        if cfg.audio.enabled else None
    if cfg.plots.enabled:
        write_plots(files, source, traces, layer_rates(prepared.plans, prepared.input_rate), cfg,
                    {plan.index: g for plan in prepared.plans if (g := plan_geometry(plan))},
                    spectrogram=ctx.spectrogram)
    evaluation = prepared.evaluation
    if evaluation is not None:  # vs a real resampler: metrics.json, spectrum, reference.wav
        run_evaluation(evaluation, source.samples, traces[-1].output[0][evaluation.channel],
                       ctx.out_dir, cfg.audio, cfg.plots)
    extra = {"cost": cost.as_json(), **(ctx.decisions() if ctx.decision is not None else {})}
    shapes = finish_run(cfg, ctx.out_dir, source, prepared, audio_info, ctx.command,
                        extra=extra, weights_of=ctx.weights_of)
    return RunResult(ctx.out_dir, source, prepared.rows, traces, prepared.output_rate, shapes)


def run_model_one_shot(ctx: RunContext, cfg: RunConfig, module: nn.Module,
                       x: torch.Tensor) -> RunResult:
    """Any nn.Module in one forward pass (stack.user_module.run_user_module, through describe):
    the rows (the table and shapes.json's layers, with exact rates), the outputs of the conv
    calls that get a figure, and the output waveform; then this path's own write_audio,
    write_plots, the evaluate stage and finish_run (with `model`, estimate and decision)."""
    source, input_rate, target = ctx.source, ctx.input_rate, ctx.model_label
    candidates = conv_candidates(module, cfg.plots, x, input_rate, target) \
        if cfg.plots.enabled else set()
    levels, handles = conv_levels(module) if cfg.plots.enabled else ([], [])
    try:
        ran = run_user_module(module, x, target, input_rate,
                              keep=lambda leaf: id(leaf) in candidates,
                              input_channels=cfg.plots.max_channels)
    finally:
        for handle in handles:
            handle.remove()
    rows = ran.passed.description.rows
    if not rows:
        raise ConvscopeError(f"{ctx.model_key}: {target} ran no nn.Module layer (only "
                             "functions?): there is nothing to describe")
    exact_output_rate = output_rate_of(rows, ran.output.shape[-1])
    output_rate = integer_rate(exact_output_rate)  # WAVs need one; None: no output WAV
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, target,
             format_table(rows, names=True, rates=True))
    log.info("output: shape %s at %s Hz", ran.returned_shape, rate_text(exact_output_rate))
    cost = run_cost(rows, ran.output.shape[-1], exact_output_rate, ran.passed.seconds)
    alignment = run_alignment(module, rows, source, ran.output.shape[-1],
                              exact_output_rate / input_rate)

    evaluation = plan_evaluate_stage(cfg, ran.output.shape[1], upsampling_of(rows), input_rate,
                                     exact_output_rate, isinstance(source, FeatureInput),
                                     ctx.evaluate)
    final = LayerTrace(rows[-1].index, rows[-1].type, ran.output.numpy())
    files = RunDir(ctx.out_dir)
    audio_info = write_audio(files, source, final, exact_output_rate, cfg) if cfg.audio.enabled \
        else None
    traces = [LayerTrace(i, rows[i].type, ran.passed.kept[i].numpy())
              for i in plotted_rows(rows, ran.passed.kept, cfg.plots)] if cfg.plots.enabled else []
    if cfg.plots.enabled:
        submit_overview(files.layers_overview, rows, levels, [t.index for t in traces],
                        f"{short_name(target)}: every conv call", cfg.plots)
        write_module_plots(files, source, traces, final, rows, exact_output_rate, cfg, module,
                           ran.passed.kept_inputs, target, ctx.spectrogram)
    if evaluation is not None:
        run_evaluation(evaluation, source.samples, final.output[0][evaluation.channel],
                       ctx.out_dir, cfg.audio, cfg.plots)
    prepared = PreparedStack(plans=[], exact_rate=exact_output_rate, output_rate=output_rate,
                             evaluation=evaluation, stack=module, rows=rows,
                             input_rate=input_rate, alignment=alignment)  # rows: from the pass
    extra = {"cost": cost.as_json(), "model": ctx.model_info, **ctx.decisions()}
    if ran.returned_shape != rows[-1].output_shape:  # ops after the last layer (squeeze, trim)
        output = shapes_document(source, rows, exact_output_rate, audio_info)["output"]
        extra["output"] = {**output, "shape": ran.returned_shape}
    shapes = finish_run(cfg, ctx.out_dir, source, prepared, audio_info, ctx.command, extra=extra,
                        weights_of=ctx.weights_of)
    return RunResult(ctx.out_dir, source, rows, [*traces, final], output_rate, shapes)


def write_audio(files: RunDir, source: Segment | FeatureInput, last: LayerTrace,
                output_rate: Rate, cfg: RunConfig) -> dict:
    """input.wav plus one WAV per channel of the last layer, all channels scaled by one gain.

    One gain for every channel keeps their relative loudness; the gain only ever scales down, to
    keep PCM from clipping, and is reported so a listener knows the level was changed. input.wav
    is the loaded audio (a feature input's target). A WAV header holds a whole number of Hz: at
    any other output rate no output WAV is written, and the log and shapes.json say so.
    """
    audio = source.target if isinstance(source, FeatureInput) else source
    sub, target = cfg.audio.subtype, cfg.audio.peak
    written = []
    if audio is None:  # precomputed frames: no audio they were computed from
        log.info("audio: no input.wav: precomputed frames have no target audio")
        input_peak = input_gain = None
    else:
        input_peak = float(np.max(np.abs(audio.samples)))
        input_gain = clipping_gain(input_peak, target)
        write_wav(files.input_wav, audio.samples, audio.sample_rate, sub, input_gain)
        written.append(files.input_wav)
    info = {"input_gain": input_gain, "input_peak": input_peak, "subtype": sub}
    outputs = last.output[0]
    output_peak = float(np.max(np.abs(outputs)))
    rate = exact_rate(output_rate, "output sample rate")
    wav_rate = integer_rate(rate)
    if wav_rate is None:
        reason = f"output rate {rate} Hz is not an integer; no WAV written"
        log.info("audio: %s; input gain %s; %s input.wav in %s", reason, input_gain, sub,
                 files.audio_dir)
        return {**info, "output_peak": output_peak, "output_wavs": reason,
                "files": [files.relative(path) for path in written]}
    gain = clipping_gain(output_peak, target)
    for channel, samples in enumerate(outputs):
        path = files.channel_wav(last.index, channel)
        write_wav(path, samples, wav_rate, sub, gain)
        written.append(path)
    log.info("audio: output peak %.4f, gain %.4f applied to every output channel (%.2f dB); "
             "input gain %s; %s WAVs in %s", output_peak, gain, 20 * np.log10(gain),
             "none" if input_gain is None else f"{input_gain:.4f}", sub, files.audio_dir)
    return {"gain": gain, "gain_db": float(20 * np.log10(gain)), "output_peak": output_peak,
            **info, "files": [files.relative(path) for path in written]}


def write_plots(files: RunDir, source: Segment | FeatureInput, traces: list[LayerTrace],
                rates: list[Fraction], cfg: RunConfig,
                geometries: Optional[dict[int, ConvGeometry]] = None,
                inputs: Optional[dict[int, LayerInput]] = None, spectrogram: bool = True) -> list:
    """A figure per layer (that layer's own input above its output channels, then the zoom
    panel) and the spectrogram figure; a feature input is drawn as an image of its frames.
    `inputs` default: a config stack's chain (the stack input, then each layer's output);
    `geometries` give conv layers' tap counts in the zoom. Returns the saved figures (layers,
    then the spectrogram) when drawn in this process, for callers that look at them (tests);
    with a figure worker (plots.workers) they are drawn there while the run goes on.
    `spectrogram`: False where the run's decision turned that figure off."""
    sink = figure_sink(cfg.plots)
    input_rate = exact_rate(source.sample_rate, "data.sr")
    inputs = chained_inputs(source, traces, rates) if inputs is None else inputs
    zoom_start = zoom_start_seconds(source, cfg.plots)
    figures = []
    for trace, rate in zip(traces, rates):
        given = inputs[trace.index]
        layer = layer_signals(trace.index, trace.type, given.samples, given.shape,
                              given.rate, given.name, trace.output[0],
                              list(trace.output.shape), rate, cfg.plots, zoom_start,
                              (geometries or {}).get(trace.index))
        figures.append(sink.submit(FigureJob("layer", files.layer_plot(trace.index, trace.type),
                                             (layer, cfg.plots))))
    if cfg.plots.spectrogram and spectrogram:
        drawn_input = source if isinstance(source, FeatureInput) else source.samples[0]
        figures.append(sink.submit(FigureJob(
            "spectrogram", files.spectrogram,
            (drawn_input, input_rate, traces[-1].output[0], rates[-1], cfg.plots))))
    no_audio = isinstance(source, FeatureInput) and source.target is None
    log.info("plots in %s (zoom panels from %.4f s: %s)", files.plots_dir, zoom_start,
             "plots.zoom_start" if cfg.plots.zoom_start is not None
             else "the start: precomputed frames have no audio" if no_audio
             else "centred on the loudest input sample")
    return [figure for figure in figures if figure is not None]


def output_rate_of(rows: list[LayerRow], length: int) -> Fraction:
    """The output's exact rate: that of the last layer call with the output's length (what
    follows it, a tanh or a residual add, keeps the rate), else of the last call."""
    for row in reversed(rows):
        if row.output_shape and row.output_shape[-1] == length and row.rate_out is not None:
            return row.rate_out
    return rows[-1].rate_out


def write_module_plots(files: RunDir, source, traces: list[LayerTrace], final: LayerTrace,
                       rows: list[LayerRow], exact_output_rate: Fraction, cfg: RunConfig,
                       module: nn.Module, kept_inputs: dict, label: str,
                       spectrogram: bool = True) -> None:
    """The conv figures as write_plots draws a config stack's layers, each with the input that
    call really got (the module's own, not the previous drawn call's output); its spectrogram
    compares the input with the module's output (after whatever follows the last conv)."""
    rates = [rows[trace.index].rate_out for trace in traces]
    modules = dict(module.named_modules())
    inputs, geometries = {}, {}
    for trace in traces:
        row = rows[trace.index]
        inputs[trace.index] = LayerInput(kept_inputs[trace.index][0].numpy(), row.input_shape,
                                         row.rate_in, f"its input in {short_name(label)}")
        if (geometry := module_geometry(modules.get(row.name))) is not None:
            geometries[trace.index] = geometry
    write_plots(files, source, traces, rates, cfg, geometries, inputs, spectrogram=False)
    if cfg.plots.spectrogram and spectrogram:
        from convscope.plots.layers import plot_spectrograms  # matplotlib: plots only

        drawn_input = source if isinstance(source, FeatureInput) else source.samples[0]
        plot_spectrograms(files.spectrogram, drawn_input, exact_rate(source.sample_rate),
                          final.output[0], exact_output_rate, cfg.plots)


def upsampling_of(rows: list[LayerRow]) -> int:
    """The product of the calls' up factors, as rates.upsampling_factor for a config stack."""
    return math.prod((row.rate_out / row.rate_in).numerator for row in rows)
