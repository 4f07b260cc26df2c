"""The pipeline for long segments: the same outputs as the one-shot run, in bounded memory.

The input is read, resampled and mixed block by block (blockio), pushed through the stack block by
block with exact context (streaming), and every layer's samples are handed once, in order, to
bounded consumers: WAV writers, min/max envelopes for the feature-map plots, and one window of
input and output for the spectrogram. shapes.json reports the full shapes, as for short runs.

WAVs are float by default (`stream.subtype`): a PCM file needs one gain for the whole signal,
which is only known at the end. The subtype and the gain (1.0) are logged and saved.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Optional

import torch

from convscope.audio.blockio import SegmentSpan, audio_blocks, segment_span
from convscope.audio.segment import _check_segment, file_duration, read_header, resolve_path
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.consumers import Consumers
from convscope.pipeline.results import StreamedRun
from convscope.pipeline.stages import finish_run, prepare_stack
from convscope.report.page import RunCommand
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.streaming import (
    layer_rules,
    one_shot_peak_bytes,
    stream_forward,
    unsupported_reason,
)
from convscope.stack.trace import torch_threads

log = logging.getLogger("convscope")
READ_BLOCK_SECONDS = 10.0


def streaming_decision(cfg: RunConfig, base_dir: Path) -> tuple[Optional[SegmentSpan], str]:
    """(span, reason) when this run should stream, (None, reason) when it should not."""
    mode = cfg.stream.enabled
    if mode == "false":
        return None, "stream.enabled=false"
    path = resolve_path(cfg.data.path, base_dir)
    header = read_header(path) if path.is_file() else None
    if header is None:  # the one-shot loader words the error, or decodes it with librosa
        return None, f"{path} is not a file soundfile can read block by block"
    duration = file_duration(path, header)
    end = duration if cfg.data.end is None else cfg.data.end
    _check_segment(path, cfg.data.start, end, duration)
    seconds = end - cfg.data.start
    if mode == "auto" and seconds <= cfg.stream.auto_seconds:
        return None, f"segment of {seconds:.1f} s <= stream.auto_seconds={cfg.stream.auto_seconds}"
    reason = f"stream.enabled={mode}, segment of {seconds:.1f} s"
    return segment_span(path, cfg.data, end, header), reason


def maybe_run_streamed(cfg: RunConfig, out_dir: Path, base_dir: Path, device: torch.device,
                       command: Optional[RunCommand] = None) -> Optional[StreamedRun]:
    """Run streamed when the config and the segment call for it; None means: run one-shot."""
    span, reason = streaming_decision(cfg, base_dir)
    if span is None:
        if cfg.stream.enabled == "true":
            log.warning("streaming off (one-shot forward): %s", reason)
        return None
    plans = plan_stack(cfg.model.layers, span.shape, causal=cfg.model.causal)
    unsupported = unsupported_reason(plans)
    if unsupported:
        estimate = one_shot_peak_bytes(plans)
        check_one_shot_memory(estimate, available_memory_bytes(), unsupported)
        log.warning("streaming off (one-shot forward of the whole segment, about %.2f GB): %s",
                    estimate / 1e9, unsupported)
        return None
    log.info("streaming block by block: %s", reason)
    return run_streamed(cfg, Path(out_dir), span, plans, device, command)


def available_memory_bytes() -> Optional[int]:
    """Physical memory not in use now (os.sysconf); None where the system does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_one_shot_memory(estimate: int, available: Optional[int], reason: str) -> None:
    """Refuse, before anything is written, a one-shot fallback that would need more than half of
    the memory available now: swapping or the OOM killer would end the run much later."""
    if available is None or estimate <= available // 2:
        return
    raise ConvscopeError(
        f"stream.enabled: this stack cannot stream ({reason}), and the one-shot forward of the "
        f"segment would hold about {estimate / 1e9:.2f} GB (input and every layer's output), "
        f"more than half of the {available / 1e9:.2f} GB available; shorten the segment "
        "(data.end) or drop what cannot stream")


def run_streamed(cfg: RunConfig, out_dir: Path, span: SegmentSpan, plans: list[LayerPlan],
                 device: torch.device, command: Optional[RunCommand] = None) -> StreamedRun:
    prepared = prepare_stack(cfg, span, plans, device)
    stack = prepared.stack.to(device).eval()
    block_length = max(1, round(cfg.stream.block_seconds * prepared.exact_rate))
    consumers = Consumers(cfg, out_dir, span, plans, prepared.output_rate)
    with consumers, torch_threads(cfg.stream.threads):
        blocks = consumers.tap_input(audio_blocks(span, _read_block_frames(span)), device)
        stream_forward(layer_rules(plans, stack), blocks, block_length, consumers.on_output)
    n_blocks = math.ceil(plans[-1].output_shape[-1] / block_length)
    log.info("output: shape %s at %g Hz, %d blocks of %d samples", prepared.rows[-1].output_shape,
             prepared.exact_rate, n_blocks, block_length)
    audio_info = consumers.audio_info()
    if cfg.plots.enabled:
        consumers.write_plots()
    if prepared.evaluation is not None:
        consumers.evaluate(prepared.evaluation, out_dir)
    stream_info = {"block_seconds": cfg.stream.block_seconds, "block_samples": block_length,
                   "blocks": n_blocks, "device": str(device)}
    shapes = finish_run(cfg, out_dir, span, prepared, audio_info, command,
                        extra={"stream": stream_info})
    return StreamedRun(out_dir, span, prepared.rows, prepared.output_rate, shapes)


def _read_block_frames(span: SegmentSpan) -> int:
    return max(1, int(READ_BLOCK_SECONDS * span.file_rate))
