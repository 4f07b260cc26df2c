"""A feature input (data.features=stft|mel|log_mel), one-shot or streamed, decided as for waveforms.

The frames are computed from the whole segment (small: 10 min of log-mel at hop 256 x 80 bands is
~16 MB), then pipeline.preflight estimates the one-shot run, whose trace of every layer is what is
large (hifigan_v1: 512 channels at frame rate up to 32 at 22050 Hz, ~1 GB for 3.5 s). Streamed,
the stack runs block by block over the frames (stack.streaming, exact), with the waveform path's
consumers for its outputs (float WAVs written as they come, layer envelopes, the output window)
and a one-shot feature run's files for its input (input.wav, the frame image).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

import torch

from convscope.audio.features import FeatureInput
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.feature_consumers import FeatureConsumers
from convscope.pipeline.oneshot import run_one_shot, stack_input
from convscope.pipeline.preflight import preflight
from convscope.pipeline.results import RunResult, StreamedRun
from convscope.pipeline.stages import finish_run, prepare_stack
from convscope.pipeline.streamed import device_blocks, forward_blocks
from convscope.report.page import RunCommand
from convscope.stack.backends import safe_kernels
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.streaming import unsupported_reason
from convscope.stack.trace import torch_threads

log = logging.getLogger("convscope")


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
        return run_streamed_features(cfg, out_dir, source, plans, device, command,
                                     checked.estimate.block_samples, extra)
    return run_one_shot(cfg, out_dir, base_dir, device, command, extra, source=source)


def run_streamed_features(cfg: RunConfig, out_dir: Path, source: FeatureInput,
                          plans: list[LayerPlan], device: torch.device,
                          command: Optional[RunCommand], block_samples: Optional[int],
                          extra: dict) -> StreamedRun:
    """`block_samples`: output samples per block (pipeline.preflight bounds it by memory)."""
    prepared = prepare_stack(cfg, source, plans, device)
    stack = prepared.stack.to(device).eval()
    block_length = block_samples or max(1, round(cfg.stream.block_seconds * prepared.exact_rate))
    consumers = FeatureConsumers(cfg, out_dir, source, plans, prepared.output_rate)
    frames = torch.from_numpy(source.samples)[None]
    # input blocks of about one output block's frames: on CUDA each crosses the bus one ahead
    step = max(1, math.ceil(block_length * source.length / max(1, plans[-1].output_shape[-1])))
    blocks = (frames[..., i: i + step] for i in range(0, source.length, step))
    with consumers, torch_threads(cfg.stream.threads), safe_kernels(stack):
        forward_blocks(plans, stack, blocks, block_length, consumers.on_output, device,
                       all_layers=cfg.plots.enabled)
    n_blocks = math.ceil(plans[-1].output_shape[-1] / block_length)
    log.info("output: shape %s at %g Hz, %d blocks of %d samples",
             prepared.rows[-1].output_shape, prepared.exact_rate, n_blocks, block_length)
    audio_info = consumers.audio_info()
    if cfg.plots.enabled:
        consumers.write_plots()
    window, rate = consumers.windows[1], consumers.rates[-1]
    stream_info = {"mode": cfg.stream.mode, "block_seconds": cfg.stream.block_seconds,
                   "block_samples": block_length, "blocks": n_blocks, "device": str(device),
                   "input_frames_per_block": step,
                   "window_seconds": [float(window.first / rate), float(window.stop / rate)]}
    shapes = finish_run(cfg, out_dir, source, prepared, audio_info, command,
                        extra={"stream": stream_info, **extra})
    return StreamedRun(out_dir, source, prepared.rows, prepared.output_rate, shapes)
