"""One source, one model, one run dir: streamed or one-shot, decided here (preflight.decide).

`run(cfg, out_dir)` is what scripts/run.py (through corpus.jobs.run_job), a corpus's files, the
Python API and the tests call. Any nn.Module (model=module, convscope.run(model=...)) is
estimated and decided by module_model.run_module; a config stack's waveform or feature input
(data.features=stft|mel|log_mel: the frames are computed from the whole segment, ~16 MB for 10
min of log-mel at hop 256 x 80 bands) by pipeline.preflight here. Long inputs go block by block
in bounded memory with the same results (streamed.py); the rest in one forward pass
(oneshot.py). Both share prepare_stack and finish_run (stages.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.config.schema import RunConfig
from convscope.pipeline.module_model import run_module
from convscope.errors import ConvscopeError
from convscope.pipeline.oneshot import run_one_shot, stack_input
from convscope.pipeline.preflight import preflight
from convscope.pipeline.results import RunResult, StreamedRun
from convscope.pipeline.streamed import (
    device_blocks,
    readable_span,
    run_streamed,
    run_streamed_features,
)
from convscope.report.page import RunCommand
from convscope.stack.plan import plan_stack
from convscope.stack.streaming import unsupported_reason
from convscope.stack.trace import pick_device

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
    if cfg.data.features != "waveform":  # frames of the whole segment, then as a waveform's
        return run_features(cfg, out_dir, base_dir, device, command)
    span = readable_span(cfg, base_dir)
    if span is None:  # the one-shot loader words the error, or decodes it with librosa
        return run_one_shot(cfg, out_dir, base_dir, device, command)
    plans = plan_stack(cfg.model.layers, span.shape, causal=cfg.model.causal)
    blocker = None if cfg.stream.mode == "stateful" else unsupported_reason(plans)
    cfg = device_blocks(cfg, device)
    checked = preflight(cfg, span, plans, out_dir, blocker)
    cfg = checked.cfg
    extra = {"estimate": checked.estimate.as_json(), "decision": checked.decision.as_json()}
    if checked.streamed:
        return run_streamed(cfg, out_dir, span, plans, device, command,
                            checked.estimate.block_samples, extra)
    return run_one_shot(cfg, out_dir, base_dir, device, command, extra)


def run_features(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
                 command: Optional[RunCommand] = None) -> RunResult | StreamedRun:
    source = stack_input(cfg, base_dir)
    plans = plan_stack(cfg.model.layers, source.shape, causal=cfg.model.causal)
    blocker = unsupported_reason(plans) or (
        "precomputed frames run one shot (the streamed writers follow a target audio they "
        "lack)" if source.target is None else None)
    cfg = device_blocks(cfg, device)
    checked = preflight(cfg, source, plans, out_dir, blocker)
    cfg = checked.cfg
    extra = {"estimate": checked.estimate.as_json(), "decision": checked.decision.as_json()}
    if checked.streamed:
        if cfg.stream.mode == "stateful":
            raise ConvscopeError(
                f"stream.mode=stateful: data.features={cfg.data.features} frames stream only "
                "with stream.mode=overlap (the stateful cells take waveform chunks); set "
                "stream.mode=overlap, or stream.enabled=false for one shot")
        log.info("streaming block by block over %s frames", cfg.data.features)
        return run_streamed_features(cfg, out_dir, source, plans, device, command,
                                     checked.estimate.block_samples, extra)
    return run_one_shot(cfg, out_dir, base_dir, device, command, extra, source=source)
