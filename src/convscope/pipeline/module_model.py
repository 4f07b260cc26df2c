"""model=module: the user's own nn.Module through the one-shot pipeline.

One forward pass (stack.user_module.run_user_module, through describe) gives the rows (the table
and shapes.json's layers, with exact rates), the outputs of the conv calls that get a figure, and
the output waveform. The rest is the one-shot path's own: write_audio, write_plots, the evaluate
stage, finish_run (weights.pt, shapes.json with a `model` section, index.html).

Not streamed: block-by-block streaming needs each layer's context arithmetic, which convscope
knows for the layers of a config stack only (logged once per run).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from convscope.audio.features import FeatureInput, check_frame_channels
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.aligned import run_alignment
from convscope.pipeline.cost import run_cost
from convscope.pipeline.evaluate import run_evaluation
from convscope.pipeline.figures import (
    LayerInput,
    detailed_rows,
    module_geometry,
    submit_overview,
)
from convscope.pipeline.oneshot import stack_input, write_audio, write_plots
from convscope.pipeline.results import RunResult
from convscope.pipeline.shapes import shapes_document
from convscope.pipeline.stages import PreparedStack, finish_run, plan_evaluate_stage
from convscope.report.page import RunCommand
from convscope.rundir import RunDir
from convscope.stack.rates import exact_rate, integer_rate, rate_text
from convscope.stack.rows import LayerRow
from convscope.stack.trace import LayerTrace
from convscope.plots.selection import requested_names
from convscope.stack.analysis import leaves
from convscope.stack.describe import describe
from convscope.stack.user_module import load_user_module, resolve, run_user_module
from convscope.stack.user_streams import user_code_contained
from convscope.text import format_table

log = logging.getLogger("convscope")
PLOTTED = (nn.Conv1d, nn.ConvTranspose1d)  # weight_norm's Parametrized* classes subclass them
SHORT_EXAMPLE = 64  # input samples of the pass that reads plots.layers' row indices


def run_module(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
               command: Optional[RunCommand] = None) -> RunResult:
    target = cfg.model.target
    # what the one-shot path feeds a config stack: the segment, or its frames
    source = stack_input(cfg, base_dir)
    input_rate = exact_rate(source.sample_rate, "data.sr")
    _log_not_streamed(cfg, source.end - source.start)
    log.info("input: %s, %.3f-%.3f s at %s Hz, shape %s", source.path, source.start, source.end,
             rate_text(input_rate), list(source.shape))
    if isinstance(source, FeatureInput):
        log.info("input: %s", source.summary())
    log.info("device: %s", device)
    module = load_user_module(cfg.model, base_dir, cfg.seed).to(device)
    if isinstance(source, FeatureInput):
        first = next((m for m in module.modules() if isinstance(m, PLOTTED)), None)
        if first is not None:  # registration order: the first conv of most generators
            check_frame_channels(source, first.in_channels, f"{target}'s first conv")
    log.info("model: %s(%s), your own code (model=module), %d parameters, weights %s", target,
             ", ".join(f"{k}={v!r}" for k, v in cfg.model.kwargs.items()),
             sum(p.numel() for p in module.parameters()), cfg.model.weights or f"seed {cfg.seed}")
    x = torch.as_tensor(source.samples[None], dtype=_float_dtype(module), device=device)
    candidates = _conv_candidates(module, cfg, x, input_rate) if cfg.plots.enabled else set()
    levels, handles = _conv_levels(module) if cfg.plots.enabled else ([], [])
    try:
        ran = run_user_module(module, x, target, input_rate,
                              keep=lambda leaf: id(leaf) in candidates,
                              input_channels=cfg.plots.max_channels)
    finally:
        for handle in handles:
            handle.remove()
    rows = ran.passed.description.rows
    if not rows:
        raise ConvscopeError(f"model.target: {target} ran no nn.Module layer (only functions?): "
                             "there is nothing to describe")
    exact_output_rate = output_rate_of(rows, ran.output.shape[-1])
    output_rate = integer_rate(exact_output_rate)  # WAVs need one; None: no output WAV
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, target,
             format_table(rows, names=True, rates=True))
    log.info("output: shape %s at %s Hz", ran.returned_shape, rate_text(exact_output_rate))
    cost = run_cost(rows, ran.output.shape[-1], exact_output_rate, ran.passed.seconds)
    alignment = run_alignment(module, rows, source, ran.output.shape[-1],
                              exact_output_rate / input_rate)

    evaluation = plan_evaluate_stage(cfg, ran.output.shape[1], _upsampling(rows), input_rate,
                                     exact_output_rate, isinstance(source, FeatureInput))
    final = LayerTrace(rows[-1].index, rows[-1].type, ran.output.numpy())
    files = RunDir(out_dir)
    audio_info = write_audio(files, source, final, exact_output_rate, cfg) if cfg.audio.enabled \
        else None
    traces = [LayerTrace(i, rows[i].type, ran.passed.kept[i].numpy())
              for i in _plotted_rows(rows, ran.passed.kept, cfg)] if cfg.plots.enabled else []
    if cfg.plots.enabled:
        submit_overview(files.layers_overview, rows, levels, [t.index for t in traces],
                        f"{short_name(target)}: every conv call", cfg.plots)
        _write_plots(files, source, traces, final, rows, exact_output_rate, cfg, module,
                     ran.passed.kept_inputs)
    if evaluation is not None:
        run_evaluation(evaluation, source.samples, final.output[0][evaluation.channel], out_dir,
                       cfg.audio, cfg.plots)
    prepared = PreparedStack(plans=[], exact_rate=exact_output_rate, output_rate=output_rate,
                             evaluation=evaluation, stack=module, rows=rows,
                             input_rate=input_rate, alignment=alignment)  # rows: from the pass
    extra = {"cost": cost.as_json(), "model": {"target": target, "kwargs": dict(cfg.model.kwargs),
                       "weights": None if cfg.model.weights is None
                       else str(resolve(cfg.model.weights, base_dir))}}
    if ran.returned_shape != rows[-1].output_shape:  # ops after the last layer (squeeze, trim)
        output = shapes_document(source, rows, exact_output_rate, audio_info)["output"]
        extra["output"] = {**output, "shape": ran.returned_shape}
    shapes = finish_run(cfg, out_dir, source, prepared, audio_info, command, extra=extra)
    return RunResult(out_dir, source, rows, [*traces, final], output_rate, shapes)


def output_rate_of(rows: list[LayerRow], length: int) -> Fraction:
    """The output's exact rate: that of the last layer call with the output's length (what
    follows it, a tanh or a residual add, keeps the rate), else of the last call."""
    for row in reversed(rows):
        if row.output_shape and row.output_shape[-1] == length and row.rate_out is not None:
            return row.rate_out
    return rows[-1].rate_out


def _conv_candidates(module: nn.Module, cfg: RunConfig, x: torch.Tensor,
                     input_rate: Fraction) -> set[int]:
    """ids of the modules whose outputs the pass keeps, chosen before it runs so memory stays
    at the drawn layers' outputs: by default the convs whose stride changes the rate; with
    plots.layers, the modules its rows name (row indices are read off describe() of a short
    stretch of the input: the rows do not depend on the length)."""
    modules = dict(module.named_modules())
    requested = cfg.plots.layers
    if requested is None:
        convs = [m for m in modules.values() if isinstance(m, PLOTTED)]
        changing = [m for m in convs if m.stride[0] != 1] or convs[:1] + convs[-1:]
        return {id(m) for m in changing}
    names = {str(item) for item in requested if not str(item).isdigit()}
    leaf_names = [name for name, _ in leaves(module)]
    unknown = sorted(names - set(leaf_names))
    if unknown:  # refused before the forward, not after it
        convs = [name for name in leaf_names if isinstance(modules[name], PLOTTED)]
        raise ConvscopeError(f"plots.layers: {_unknown_text(unknown)} no layer of "
                             f"{cfg.model.target}; its conv layers are {_listed(convs)}")
    if len(names) < len(requested):  # row indices: a short pass names their modules
        with user_code_contained():
            rows = describe(module, x[..., :SHORT_EXAMPLE], sample_rate=input_rate).rows
        names = requested_names(rows, requested)
    return {id(modules[name]) for name in names if name in modules}


def _conv_levels(module: nn.Module) -> tuple[list[float], list]:
    """Forward hooks recording every conv call's output RMS, in call order (the overview
    figure's bars); returns the list they fill and the handles to remove."""
    levels: list[float] = []

    def hook(_module, _args, output):
        if isinstance(output, torch.Tensor):
            levels.append(float(output.detach().double().pow(2).mean().sqrt()))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, PLOTTED)]
    return levels, handles


def _plotted_rows(rows: list[LayerRow], kept: dict, cfg: RunConfig) -> list[int]:
    chosen = detailed_rows(rows, kept, cfg.plots)
    why = "plots.layers" if cfg.plots.layers is not None else \
        "the calls whose rate changes; plots.layers picks others"
    log.info("plots: %d detailed layer figures (rows %s: %s); every conv call is in %s",
             len(chosen), _ranges(chosen) or "none", why, RunDir.LAYERS_OVERVIEW)
    return chosen


def _write_plots(files: RunDir, source, traces: list[LayerTrace], final: LayerTrace,
                 rows: list[LayerRow], exact_output_rate: Fraction, cfg: RunConfig,
                 module: nn.Module, kept_inputs: dict) -> None:
    """The conv figures as write_plots draws a config stack's layers, each with the input that
    call really got (the module's own, not the previous drawn call's output); its spectrogram
    compares the input with the module's output (after whatever follows the last conv)."""
    rates = [rows[trace.index].rate_out for trace in traces]
    modules = dict(module.named_modules())
    inputs, geometries = {}, {}
    for trace in traces:
        row = rows[trace.index]
        inputs[trace.index] = LayerInput(kept_inputs[trace.index][0].numpy(), row.input_shape,
                                         row.rate_in, f"its input in {short_name(cfg.model.target)}")
        if (geometry := module_geometry(modules.get(row.name))) is not None:
            geometries[trace.index] = geometry
    write_plots(files, source, traces, rates,
                replace(cfg, plots=replace(cfg.plots, spectrogram=False)), geometries, inputs)
    if cfg.plots.spectrogram:
        from convscope.plots.layers import plot_spectrograms  # matplotlib: plots only

        drawn_input = source if isinstance(source, FeatureInput) else source.samples[0]
        plot_spectrograms(files.spectrogram, drawn_input, exact_rate(source.sample_rate),
                          final.output[0], exact_output_rate, cfg.plots)


def short_name(target: str) -> str:
    """model.target as a figure title names it: the class (path/to/gen.py:Generator -> Generator)."""
    return target.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def _upsampling(rows: list[LayerRow]) -> int:
    """The product of the calls' up factors, as rates.upsampling_factor for a config stack."""
    return math.prod((row.rate_out / row.rate_in).numerator for row in rows)


def _log_not_streamed(cfg: RunConfig, seconds: float) -> None:
    reason = ("model=module: one forward pass of the whole segment, not streamed (block by block "
              "needs each layer's context, which convscope knows for config stacks only)")
    if cfg.stream.enabled == "true" or (cfg.stream.enabled == "auto"
                                        and seconds > cfg.stream.auto_seconds):
        log.warning("%s; %.1f s of audio in memory at once", reason, seconds)
    else:
        log.info("%s", reason)


def _float_dtype(module: nn.Module) -> torch.dtype:
    """The module's floating dtype (float64 or half models get input they can take)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


def _unknown_text(unknown: list[str]) -> str:
    return f"{unknown[0]!r} is" if len(unknown) == 1 else f"{', '.join(map(repr, unknown))} are"


def _listed(names: list[str], shown: int = 8) -> str:
    return ", ".join(names[:shown]) + (f" (+{len(names) - shown} more)" if len(names) > shown
                                       else "")


def _ranges(indices: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
