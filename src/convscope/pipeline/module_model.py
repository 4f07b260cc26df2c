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
from convscope.audio.segment import Segment
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.cost import run_cost
from convscope.pipeline.evaluate import run_evaluation
from convscope.pipeline.figures import LayerInput, module_geometry
from convscope.pipeline.oneshot import stack_input, write_audio, write_plots
from convscope.pipeline.preflight import decide, machine_memory_bytes, memory_limit
from convscope.pipeline.results import RunContext, RunResult, StreamedRun
from convscope.pipeline.stages import (
    PreparedStack,
    finish_run,
    plan_evaluate_stage,
    run_alignment,
    shapes_document,
)
from convscope.pipeline.streamed import run_model_streamed
from convscope.report.page import RunCommand
from convscope.rundir import RunDir
from convscope.stack.estimate import EstimateFailed, estimate
from convscope.stack.rates import exact_rate, integer_rate, rate_text
from convscope.stack.rows import LayerRow
from convscope.stack.trace import LayerTrace
from convscope.stack.user_module import load_user_module, resolve, run_user_module
from convscope.text import fmt_bytes, format_table

log = logging.getLogger("convscope")
PLOTTED = (nn.Conv1d, nn.ConvTranspose1d)  # weight_norm's Parametrized* classes subclass them


def run_module(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
               command: Optional[RunCommand] = None, module: Optional[nn.Module] = None,
               source: Segment | FeatureInput | None = None) -> RunResult | StreamedRun:
    """Any nn.Module on a source: cfg.model.target's (imported and built here) or `module`, on
    data.path's segment or frames or `source` (convscope.run's array). Estimated, then one
    shot or streamed as preflight.decide says, once."""
    target = cfg.model.target if module is None else type(module).__name__
    # what the one-shot path feeds a config stack: the segment, or its frames
    source = stack_input(cfg, base_dir) if source is None else source
    input_rate = exact_rate(source.sample_rate, "data.sr")
    log.info("input: %s, %.3f-%.3f s at %s Hz, shape %s", source.path, source.start, source.end,
             rate_text(input_rate), list(source.shape))
    if isinstance(source, FeatureInput):
        log.info("input: %s", source.summary())
    log.info("device: %s", device)
    given = module is not None
    module = (module if given else load_user_module(cfg.model, base_dir, cfg.seed)).to(device)
    if isinstance(source, FeatureInput):
        first = next((m for m in module.modules() if isinstance(m, PLOTTED)), None)
        if first is not None:  # registration order: the first conv of most generators
            check_frame_channels(source, first.in_channels, f"{target}'s first conv")
    if given:
        model_info = {"object": target}
        log.info("model: %s, a Python object (convscope.run(model=...)), %d parameters", target,
                 sum(p.numel() for p in module.parameters()))
    else:
        model_info = {"target": target, "kwargs": dict(cfg.model.kwargs),
                      "weights": None if cfg.model.weights is None
                      else str(resolve(cfg.model.weights, base_dir))}
        log.info("model: %s(%s), your own code (model=module), %d parameters, weights %s",
                 target, ", ".join(f"{k}={v!r}" for k, v in cfg.model.kwargs.items()),
                 sum(p.numel() for p in module.parameters()),
                 cfg.model.weights or f"seed {cfg.seed}")
    x = torch.as_tensor(source.samples[None], dtype=_float_dtype(module), device=device)
    ctx = _decided(cfg, out_dir, source, input_rate, device, command, module, x,
                   "model.target" if not given else "model", target, model_info)
    if ctx.streamed:
        return run_model_streamed(ctx, cfg, module, x)
    candidates = _conv_candidates(module, cfg.plots.max_layers) if cfg.plots.enabled else set()
    x = torch.as_tensor(source.samples[None], dtype=_float_dtype(module), device=device)
    ran = run_user_module(module, x, target, input_rate,
                          keep=lambda leaf: id(leaf) in candidates,
                          input_channels=cfg.plots.max_channels)
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
              for i in _plotted_rows(rows, ran.passed.kept, cfg.plots.max_layers)]
    if cfg.plots.enabled:
        _write_plots(files, source, traces, final, rows, exact_output_rate, cfg, module,
                     ran.passed.kept_inputs)
    if evaluation is not None:
        run_evaluation(evaluation, source.samples, final.output[0][evaluation.channel], out_dir,
                       cfg.audio, cfg.plots)
    prepared = PreparedStack(plans=[], exact_rate=exact_output_rate, output_rate=output_rate,
                             evaluation=evaluation, stack=module, rows=rows,
                             input_rate=input_rate, alignment=alignment)  # rows: from the pass
    extra = {"cost": cost.as_json(), "model": model_info, **ctx.decisions()}
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


def choose_evenly(items: list[int], first_choice: set[int], cap: int) -> list[int]:
    """At most `cap` of `items`, in order: those in `first_choice` and the first and last item
    come first (spread evenly if even they are too many), the rest spread evenly over the
    slots left."""
    if len(items) <= cap:
        return list(items)
    must = [i for i in items if i in first_choice or i in (items[0], items[-1])]
    if len(must) >= cap:
        return _spread(must, cap)
    others = [i for i in items if i not in must]
    return sorted(must + _spread(others, cap - len(must)))


def _spread(items: list[int], count: int) -> list[int]:
    """`count` of `items`, evenly spaced (the middle of each of `count` equal stretches)."""
    return [items[int((k + 0.5) * len(items) / count)] for k in range(count)]


def _conv_candidates(module: nn.Module, cap: int) -> set[int]:
    """ids of the conv modules whose outputs the pass keeps, chosen before it runs so memory stays
    at `cap` layers' outputs: by registration order, which is call order in most generators;
    _plotted_rows then applies the same rule to the calls that really happened."""
    convs = [m for m in module.modules() if isinstance(m, PLOTTED)]
    changing = {i for i, m in enumerate(convs) if m.stride[0] != 1}
    return {id(convs[i]) for i in choose_evenly(list(range(len(convs))), changing, cap)}


def _plotted_rows(rows: list[LayerRow], kept: dict, cap: int) -> list[int]:
    # row.conv is set for every instance of Conv1d/ConvTranspose1d, subclasses included; the
    # class name (row.type) of a user's subclass is its own
    conv_rows = [row.index for row in rows if row.conv is not None]
    changing = {i for i in conv_rows if rows[i].rate_in != rows[i].rate_out}
    chosen = choose_evenly([i for i in conv_rows if i in kept], changing, cap)
    skipped = [i for i in conv_rows if i not in chosen]
    if kept and skipped:
        log.info("plots: %d of %d conv calls drawn (plots.max_layers=%d); left out rows %s",
                 len(chosen), len(conv_rows), cap, _ranges(skipped))
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
                                         row.rate_in, f"its input in {cfg.model.target or type(module).__name__}")
        if (geometry := module_geometry(modules.get(row.name))) is not None:
            geometries[trace.index] = geometry
    write_plots(files, source, traces, rates,
                replace(cfg, plots=replace(cfg.plots, spectrogram=False)), geometries, inputs)
    if cfg.plots.spectrogram:
        from convscope.plots.layers import plot_spectrograms  # matplotlib: plots only

        drawn_input = source if isinstance(source, FeatureInput) else source.samples[0]
        plot_spectrograms(files.spectrogram, drawn_input, exact_rate(source.sample_rate),
                          final.output[0], exact_output_rate, cfg.plots)


def _upsampling(rows: list[LayerRow]) -> int:
    """The product of the calls' up factors, as rates.upsampling_factor for a config stack."""
    return math.prod((row.rate_out / row.rate_in).numerator for row in rows)


def _decided(cfg: RunConfig, out_dir: Path, source, input_rate: Fraction, device: torch.device,
             command: Optional[RunCommand], module: nn.Module, x: torch.Tensor, key: str,
             label: str, model_info: dict) -> RunContext:
    """The estimate of the model on this input (stack.estimate: fake tensors at full size, the
    context from one small real forward), and preflight.decide's choice. A model that cannot
    stream (unbounded context) and whose one shot exceeds the memory limit is refused here,
    naming the row that makes the context unbounded."""
    block = max(1, round(cfg.stream.block_seconds * input_rate))
    try:
        found = estimate(module, tuple(x.shape), sample_rate=input_rate,
                         block_samples=min(block, x.shape[-1]))
    except EstimateFailed as exc:  # an op that needs real values: decided without a figure
        log.warning("%s; decided without it", exc)
        found = None
    if found is not None:
        log.info("estimate: %s", found.summary())
    one_shot = 0 if found is None else found.one_shot_bytes
    blocker = ("no estimate of its context" if found is None else found.unbounded_reason)
    if cfg.stream.mode == "stateful" and found is not None:
        blocker = None  # stack.module_cells words what has no cell when it is asked to stream
    decision = decide(cfg.stream, cfg.limits, source.end - source.start, one_shot, blocker)
    limit, how = memory_limit(cfg.limits, machine_memory_bytes())
    if not decision.streamed and limit is not None and one_shot > limit:
        why = (f"it cannot stream ({blocker})" if blocker else
               "stream it (stream.enabled=auto or true)")
        raise ConvscopeError(f"{key}: {label} needs ~{fmt_bytes(one_shot)} for one forward of "
                             f"{list(x.shape)} (limit {fmt_bytes(limit)} = {how}); {why}, or "
                             "shorten the segment (data.end)")
    return RunContext(out_dir, source, input_rate, device, label,
                      None if found is None else found.as_json(), decision.streamed,
                      decision.why, command, model_info)


def _float_dtype(module: nn.Module) -> torch.dtype:
    """The module's floating dtype (float64 or half models get input they can take)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


def _ranges(indices: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
