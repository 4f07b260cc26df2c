"""The one-shot path: any model, one forward pass with hooks over the whole input, then write.

Everything that can be wrong with the input is checked (load, features, plan) before any file is
written, and shapes.json then index.html are written last (stages.finish_run), so a run dir that
has shapes.json is a finished run.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import replace
from fractions import Fraction
from typing import Mapping, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrize import type_before_parametrizations

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
    run_alignment,
    shapes_document,
)
from convscope.plots.background import figure_sink
from convscope.plots.figure_worker import FigureJob
from convscope.plots.zoom import ConvGeometry
from convscope.rundir import RunDir
from convscope.stack.backends import safe_kernels
from convscope.stack.rates import Rate, exact_rate, integer_rate, rate_text
from convscope.stack.rows import LayerRow
from convscope.stack.trace import LayerTrace, check_finite
from convscope.stack.user_module import run_user_module
from convscope.text import format_table

log = logging.getLogger("convscope")


def run_one_shot(ctx: RunContext, cfg: RunConfig, module: nn.Module,
                 x: torch.Tensor) -> RunResult:
    """Any model in one forward pass, as `ctx` decided, whatever it came from (a config stack
    built from its plan, a preset, a checkpoint, model=module, a Python object): describe()'s
    rows of that pass (stack.user_module.run_user_module; with a config's keys, ctx.keys), the
    outputs the figures draw (ctx.figures) and the output waveform; then the sinks every run
    shares: the WAVs, the figures, the evaluate stage and finish_run (weights.pt, shapes.json
    with the estimate and the decision, the report)."""
    source, input_rate, label = ctx.source, ctx.input_rate, ctx.model_label
    each_layer = ctx.figures == "each layer"
    calls = cfg.plots.enabled and not each_layer  # a deep model's figures: chosen conv calls
    candidates = conv_candidates(module, cfg.plots, x, input_rate, label) if calls else set()
    levels, handles = conv_levels(module) if calls else ([], [])
    layers = ChildOutputs(module) if each_layer else None
    try:
        with safe_kernels(module), layers or nullcontext():
            ran = run_user_module(module, x, label, input_rate,
                                  keep=lambda leaf: id(leaf) in candidates,
                                  input_channels=cfg.plots.max_channels, key=ctx.model_key)
    finally:
        for handle in handles:
            handle.remove()
    rows = [replace(row, key=ctx.keys.get(row.name, row.key)) for row in
            ran.passed.description.rows]
    if not rows:
        raise ConvscopeError(f"{ctx.model_key}: {label} ran no nn.Module layer (only "
                             "functions?): there is nothing to describe")
    if layers is not None:  # the first layer whose output is not finite is the culprit
        layers.check_finite(ctx.keys, ctx.model_key)
    check_finite(ran.output, ctx.model_key, label)
    exact_output_rate = output_rate_of(rows, ran.output.shape[-1])
    output_rate = integer_rate(exact_output_rate)  # WAVs need one; None: no output WAV
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, label,
             format_table(rows, names=not ctx.keys, rates=True))
    log.info("output: shape %s at %s Hz", ran.returned_shape, rate_text(exact_output_rate))
    cost = run_cost(rows, ran.output.shape[-1], exact_output_rate, ran.passed.seconds)
    alignment = run_alignment(module, rows, source, ran.output.shape[-1],
                              exact_output_rate / input_rate)
    layer_traces = layers.traces(rows) if layers is not None else []
    upsampling = upsampling_of(rows) if layers is None else layers.upsampling(rows, input_rate)
    evaluation = plan_evaluate_stage(cfg, ran.output.shape[1], upsampling, input_rate,
                                     exact_output_rate, isinstance(source, FeatureInput),
                                     ctx.evaluate)
    final = layer_traces[-1] if layer_traces else \
        LayerTrace(rows[-1].index, rows[-1].type, ran.output.numpy())
    files = RunDir(ctx.out_dir)
    audio_info = write_audio(files, source, final, exact_output_rate, cfg) if cfg.audio.enabled \
        else None
    if each_layer:
        traces = layer_traces
        if cfg.plots.enabled:
            write_plots(files, source, traces, layers.rates(rows), cfg, layers.geometries(),
                        spectrogram=ctx.spectrogram)
    else:
        traces = [LayerTrace(i, rows[i].type, ran.passed.kept[i].numpy())
                  for i in plotted_rows(rows, ran.passed.kept, cfg.plots)] \
            if cfg.plots.enabled else []
        if cfg.plots.enabled:
            submit_overview(files.layers_overview, rows, levels, [t.index for t in traces],
                            f"{short_name(label)}: every conv call", cfg.plots)
            write_module_plots(files, source, traces, final, rows, exact_output_rate, cfg,
                               module, ran.passed.kept_inputs, label, ctx.spectrogram)
        traces = [*traces, final]
    if evaluation is not None:
        run_evaluation(evaluation, source.samples, final.output[0][evaluation.channel],
                       ctx.out_dir, cfg.audio, cfg.plots)
    prepared = PreparedStack(plans=[], exact_rate=exact_output_rate, output_rate=output_rate,
                             evaluation=evaluation, stack=module, rows=rows,
                             input_rate=input_rate, alignment=alignment)  # rows: from the pass
    extra = {"cost": cost.as_json(), **ctx.decisions()}
    if ctx.model_info is not None:
        extra["model"] = ctx.model_info
    if ran.returned_shape != rows[-1].output_shape:  # ops after the last layer (squeeze, trim)
        output = shapes_document(source, rows, exact_output_rate, audio_info)["output"]
        extra["output"] = {**output, "shape": ran.returned_shape}
    shapes = finish_run(cfg, ctx.out_dir, source, prepared, audio_info, ctx.command, extra=extra,
                        weights_of=ctx.weights_of)
    return RunResult(ctx.out_dir, source, rows, traces, output_rate, shapes)


class ChildOutputs:
    """Hooks that keep the output of each child of a model (an nn.Sequential's layers, drawn
    each with its input: ctx.figures="each layer"), first call only, as float32 on the CPU."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.children = list(model.named_children()) or [("0", model)]  # a layer alone
        self.outputs: dict[int, torch.Tensor] = {}
        self.handles: list = []

    def __enter__(self) -> "ChildOutputs":
        for index, (_, child) in enumerate(self.children):
            self.handles.append(child.register_forward_hook(self._keep(index)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()

    def _keep(self, index: int):
        def hook(_module, _args, output):
            if index not in self.outputs and isinstance(output, torch.Tensor):
                self.outputs[index] = output.detach().to("cpu", torch.float32, copy=True)
        return hook

    def check_finite(self, keys: Mapping[str, str], model_key: str) -> None:
        for index, (name, child) in enumerate(self.children):
            if index in self.outputs:
                check_finite(self.outputs[index], keys.get(name, f"{model_key}.{name}"),
                             type_before_parametrizations(child).__name__)

    def last_rows(self, rows: list[LayerRow]) -> list[int]:
        """Each child's last row (its output's rate): the row named by it or inside it."""
        if self.children[0][1] is self.model:
            return [rows[-1].index]
        last = {}
        for row in rows:
            last[row.name.split(".", 1)[0]] = row.index
        return [last[name] for name, _ in self.children if name in last]

    def rates(self, rows: list[LayerRow]) -> list[Fraction]:
        return [rows[i].rate_out for i in self.last_rows(rows)]

    def upsampling(self, rows: list[LayerRow], input_rate: Fraction) -> int:
        """The product of the layers' up factors (the stride tone sits at the output rate over
        it): each layer's, not each call's (an anti-aliased activation's x2 and /2 cancel)."""
        factor, rate = 1, input_rate
        for out_rate in self.rates(rows):
            factor *= (out_rate / rate).numerator
            rate = out_rate
        return factor

    def traces(self, rows: list[LayerRow]) -> list[LayerTrace]:
        return [LayerTrace(index, type_before_parametrizations(child).__name__,
                           self.outputs[index].numpy())
                for index, (_, child) in enumerate(self.children) if index in self.outputs]

    def geometries(self) -> dict[int, ConvGeometry]:
        return {index: geometry for index, (_, child) in enumerate(self.children)
                if (geometry := module_geometry(child)) is not None}


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
