"""One source, one model, one run dir: streamed or one-shot, decided here (preflight.decide).

`run(cfg, out_dir)` is what scripts/run.py (through corpus.jobs.run_job), a corpus's files, the
Python API and the tests call. The model is obtained first, however it comes: a config stack
built from its plan with its weights (run_stack), or any nn.Module (model=module,
convscope.run(model=...): run_module). Each is estimated on its source and decided once
(preflight.decide); what was decided goes down as a RunContext, the config as composed. One
shot, every model takes the same function (oneshot.run_one_shot: one forward with hooks, then
the sinks); streamed, the engine the decision named: a config stack's per-layer block rules
(streamed.py: exact for hours), any model's overlap blocks or stateful cells. A feature input's
frames (data.features=stft|mel|log_mel) are computed from the whole segment (~16 MB for 10 min
of log-mel at hop 256 x 80 bands). All paths end in stages.finish_run.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from convscope.audio.features import (
    FeatureInput,
    check_frame_channels,
    compute_features,
    load_precomputed,
)
from convscope.audio.segment import Segment, load_segment, resolve_path
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.figures import PLOTTED
from convscope.pipeline.oneshot import run_one_shot
from convscope.pipeline.preflight import (
    Preflight,
    check_parameters,
    machine_memory_bytes,
    memory_limit,
    preflight,
)
from convscope.pipeline.results import RunContext, RunResult, StreamedRun
from convscope.pipeline.sizing import Subject
from convscope.pipeline.stages import log_input
from convscope.pipeline.streamed import (
    readable_span,
    run_model_streamed,
    run_streamed,
    run_streamed_features,
)
from convscope.report.page import RunCommand
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.preset_weights import build_with_weights, weights_to_save
from convscope.stack.rates import exact_rate
from convscope.stack.rows import leaf_keys
from convscope.stack.streaming import unsupported_reason
from convscope.stack.trace import pick_device
from convscope.stack.user_module import load_user_module, resolve

log = logging.getLogger("convscope")


def run(cfg: RunConfig, out_dir: Path, base_dir: Optional[Path] = None,
        command: Optional[RunCommand] = None, *, model: Optional[nn.Module] = None,
        source: Segment | FeatureInput | None = None) -> RunResult | StreamedRun:
    """`model`: an nn.Module object instead of cfg.model (convscope.run(model=...));
    `source`: its input, loaded already (an array given to convscope.run), instead of
    data.path."""
    out_dir = Path(out_dir)
    base_dir = base_dir or Path.cwd()
    device = pick_device(cfg.device)
    if cfg.device == "auto":
        log.info("device=auto: %s", "cuda" if device.type == "cuda" else
                 "cpu (torch.cuda.is_available() is False)")
    if model is not None or cfg.model.target is not None:  # any nn.Module: estimate, decide
        return run_module(cfg, out_dir, base_dir, device, command, model, source)
    return run_stack(cfg, out_dir, base_dir, device, command)


def run_stack(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
              command: Optional[RunCommand] = None) -> RunResult | StreamedRun:
    """A config stack (model.layers, a preset, its model.weights) on data.path's segment or
    frames: planned on the input's shape, estimated (pipeline.preflight), decided once, then
    built with its weights; below this the run reads the RunContext, never cfg.model."""
    features = cfg.data.features != "waveform"
    # a feature input's frames are computed from the whole segment (~16 MB for 10 min of
    # log-mel); a waveform is located in its file and read block by block if streamed
    source = stack_input(cfg, base_dir) if features else readable_span(cfg, base_dir)
    if source is None:  # not a file soundfile reads block by block: librosa decodes it whole
        loaded = stack_input(cfg, base_dir)
        plans = plan_stack(cfg.model.layers, loaded.shape, causal=cfg.model.causal)
        check_parameters(cfg.limits, plans)
        stack = _build(cfg, plans)
        log_input(loaded, device)
        return run_decided(_stack_context(cfg, out_dir, loaded, device, command, None, plans,
                                          stack), cfg, stack, plans)
    plans = plan_stack(cfg.model.layers, source.shape, causal=cfg.model.causal)
    if features:
        blocker = unsupported_reason(plans) or (
            "precomputed frames run one shot (the streamed writers follow a target audio they "
            "lack)" if source.target is None else None)
    else:
        blocker = None if cfg.stream.mode == "stateful" else unsupported_reason(plans)
    check_parameters(cfg.limits, plans)  # building allocates the weights: refused before
    # the model, obtained (its weights loaded) before any file, and estimated as any module is
    stack = _build(cfg, plans)
    checked = preflight(cfg, source, Subject(stack, plans), out_dir, blocker, device)
    if features and checked.decision.engine == "stateful":
        raise ConvscopeError(
            f"stream.mode=stateful: data.features={cfg.data.features} frames stream only "
            "with stream.mode=overlap (the stateful cells take waveform chunks); set "
            "stream.mode=overlap, or stream.enabled=false for one shot")
    ctx = _stack_context(cfg, out_dir, source, device, command, checked, plans, stack)
    if not checked.streamed and not features:  # the whole segment (a span says where it lies)
        ctx = replace(ctx, source=stack_input(cfg, base_dir))
    if not checked.streamed:
        log_input(ctx.source, device)
    return run_decided(ctx, cfg, stack, plans)


def _build(cfg: RunConfig, plans) -> nn.Sequential:
    """The config stack as an nn.Module: seeded, then model.weights loaded into it."""
    return build_with_weights(plans, cfg.seed, cfg.model)


def run_decided(ctx: RunContext, cfg: RunConfig, model: nn.Module,
                plans: Optional[list[LayerPlan]] = None) -> RunResult | StreamedRun:
    """Below the decision, for every model: one shot through oneshot.run_one_shot on the whole
    ctx.source, or streamed by the engine decide() named. The per-layer engines (block rules,
    and the plan's stateful cells, which also take blocks and residual units) read the model's
    plan, so they stream what has one; the overlap streamer and the module cells stream any
    module from its analysis (run_model_streamed)."""
    if ctx.streamed and plans is not None and isinstance(ctx.source, FeatureInput):
        log.info("streaming block by block over %s frames", cfg.data.features)
        return run_streamed_features(ctx, cfg, ctx.source, plans, model)
    if ctx.streamed and plans is not None:
        return run_streamed(ctx, cfg, ctx.source, plans, model)
    model = model.to(ctx.device)
    x = torch.as_tensor(ctx.source.samples[None], dtype=_float_dtype(model), device=ctx.device)
    if ctx.streamed:
        return run_model_streamed(ctx, cfg, model, x)
    return run_one_shot(ctx, cfg, model, x)


def _stack_context(cfg: RunConfig, out_dir: Path, source, device: torch.device,
                   command: Optional[RunCommand], checked: Optional[Preflight],
                   plans: list[LayerPlan], stack: nn.Sequential) -> RunContext:
    """The RunContext of a config stack's run: what preflight decided (None: a file decoded
    whole, one shot without an estimate), the model's name, how weights.pt holds it, the
    config key of each of its layers and calls, and its figures: one per layer."""
    weights_of = partial(weights_to_save, model=cfg.model)
    rate = exact_rate(source.sample_rate, "data.sr")
    named = dict(model_key="model.layers", keys=leaf_keys(plans, stack), figures="each layer",
                 weights_of=weights_of)
    if checked is None:
        return RunContext(out_dir, source, rate, device, cfg.model.name, None, False,
                          "one shot: the file is decoded whole", command, **named)
    decision = checked.decision
    return RunContext(out_dir, source, rate, device, cfg.model.name, checked.estimate.as_json(),
                      decision.streamed, decision.why, command,
                      block_seconds=decision.blocks.seconds if decision.blocks else None,
                      block_samples=checked.estimate.block_samples,
                      spectrogram="spectrogram" not in decision.off,
                      evaluate="evaluate" not in decision.off,
                      decision=decision.as_json(), **named)


def run_module(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
               command: Optional[RunCommand] = None, module: Optional[nn.Module] = None,
               source: Segment | FeatureInput | None = None) -> RunResult | StreamedRun:
    """Any nn.Module on a source: cfg.model.target's (imported and built here) or `module`, on
    data.path's segment or frames or `source` (convscope.run's array). Estimated, then one
    shot or streamed as preflight.decide says, once."""
    target = cfg.model.target if module is None else type(module).__name__
    # what the one-shot path feeds a config stack: the segment, or its frames
    source = stack_input(cfg, base_dir) if source is None else source
    input_rate = log_input(source, device)
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
    key = "model.target" if not given else "model"
    ctx = _decided(cfg, out_dir, source, input_rate, device, command, module, key, target,
                   model_info)
    return run_decided(ctx, cfg, module)


def _decided(cfg: RunConfig, out_dir: Path, source, input_rate: Fraction, device: torch.device,
             command: Optional[RunCommand], module: nn.Module, key: str, label: str,
             model_info: dict) -> RunContext:
    """The pre-flight of the model on this input (pipeline.preflight, as a config stack's:
    convscope.estimate's forward, the stages, the limits) and preflight.decide's choice. A
    model that cannot stream (unbounded context) and whose one shot exceeds the memory limit is
    refused there, naming the row that makes the context unbounded."""
    checked = preflight(cfg, source, Subject(module, None, key, label), out_dir, None, device)
    decision = checked.decision
    return RunContext(out_dir, source, input_rate, device, label,
                      None if checked.estimate is None else checked.estimate.as_json(),
                      decision.streamed, decision.why, command, model_info,
                      spectrogram="spectrogram" not in decision.off,
                      evaluate="evaluate" not in decision.off, decision=decision.as_json(),
                      model_key=key,
                      weights_of=partial(weights_to_save, model=cfg.model))


def stack_input(cfg: RunConfig, base_dir: Path) -> Segment | FeatureInput:
    """What the stack takes in: the loaded segment, the frames `data.features` asks for
    (refused before they are made when they would not fit the memory limit), or precomputed
    frames read from data.path."""
    if cfg.data.features == "precomputed":
        frames = load_precomputed(resolve_path(cfg.data.path, base_dir), cfg.data)
        first = cfg.model.layers[0] if cfg.model.layers else None
        while first is not None and first.layers:  # a block: its first layer takes the input
            first = first.layers[0]
        if first is not None:
            check_frame_channels(frames, first.in_channels, f"the first layer ({first.type})")
        return frames
    segment = load_segment(cfg.data, base_dir)
    if cfg.data.features == "waveform":
        return segment
    limit, _ = memory_limit(cfg.limits, machine_memory_bytes())
    return compute_features(segment, cfg.data, limit)


def _float_dtype(module: nn.Module) -> torch.dtype:
    """The module's floating dtype (float64 or half models get input they can take)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
