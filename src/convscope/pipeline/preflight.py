"""Before the forward runs: the run's resource estimate (pipeline/sizing.py: the forward's
figures from convscope.estimate, the stages' from stack.budget), the choice between one shot and
streaming made from it (`decide`, the one place every run's choice is made, config stack or the
user's module), and the refusal of what would not fit the limits. One `preflight` for every run.

A run whose estimated peak memory exceeds `limits.memory_fraction` of the machine's RAM (or
`limits.memory_gb`), whose forward would take more than `limits.max_gmacs` billion MACs, or whose
WAVs would exceed `limits.max_output_gb` or the free disk space is refused with exit 2, naming the
layer key and the figure, before a file is written: the alternative is the OOM killer, a full
disk or hours of compute.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from convscope.config.checks import check_spectrogram_window
from convscope.config.schema import LimitsConfig, RunConfig, StreamConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.sizing import (
    Source,
    Subject,
    capped_block,
    module_kept_bytes,
    probe_block,
    stack_ratio,
    stage_estimate,
)
from convscope.stack import budget
from convscope.stack.analysis import ForwardFailed
from convscope.stack.budget import Estimate, Peak
from convscope.stack.estimate import EstimateFailed
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import exact_rate
from convscope.text import fmt_bytes

log = logging.getLogger("convscope")


GPU_BLOCK_FACTOR = 16


@dataclass(frozen=True)
class BlockSize:
    """How long a streamed block may be on the run's device: stream.block_seconds and
    limits.block_mb, times `factor` on a GPU (device_blocks). Decided, never written back."""

    seconds: float
    mb: float
    factor: int = 1

    def as_json(self) -> dict:
        return {"block_seconds": self.seconds, "block_mb": self.mb, "factor": self.factor}


@dataclass(frozen=True)
class Decision:
    """One shot or streamed, and why (logged once, saved in shapes.json["decision"]), with
    what the chosen path changed: the optional stages it could not afford (`turned_off`, their
    names in `off`) and the block size on the device."""

    streamed: bool
    why: str
    turned_off: tuple[str, ...] = ()  # optional stages the chosen path could not afford
    off: frozenset[str] = frozenset()  # their names: "spectrogram", "evaluate"
    blocks: BlockSize | None = None  # a config stack's blocks on the device
    engine: str | None = None  # what streams it (ENGINES); None: one shot

    def as_json(self) -> dict:
        doc = {"streamed": self.streamed, "why": self.why}
        if self.engine is not None:
            doc["engine"] = self.engine
        if self.turned_off:
            doc["turned_off"] = list(self.turned_off)
        if self.blocks is not None and self.blocks.factor != 1:
            doc["device_blocks"] = self.blocks.as_json()
        return doc


@dataclass(frozen=True)
class Preflight:
    estimate: Estimate | None  # None: a module whose forward fake tensors cannot run
    limit_bytes: int | None
    decision: Decision

    @property
    def streamed(self) -> bool:
        return self.decision.streamed


def device_blocks(stream: StreamConfig, limits: LimitsConfig, device: torch.device) -> BlockSize:
    """On a GPU, blocks GPU_BLOCK_FACTOR times longer, and as many MB (limits.block_mb): a
    kernel launch and a copy per layer per block cost the same whatever the block's length, and
    only the last layer's samples come back to host memory. Stateful chunks are the run's
    latency: left as configured."""
    if device.type != "cuda" or stream.mode != "overlap":
        return BlockSize(stream.block_seconds, limits.block_mb)
    seconds = stream.block_seconds * GPU_BLOCK_FACTOR
    block_mb = limits.block_mb * GPU_BLOCK_FACTOR
    log.info("device %s: streamed blocks of up to %g s and %g MB (stream.block_seconds and "
             "limits.block_mb x %d)", device, seconds, block_mb, GPU_BLOCK_FACTOR)
    return BlockSize(seconds, block_mb, GPU_BLOCK_FACTOR)


# What streams a model, by its structure: every leaf with a per-layer block rule (a config
# stack: stack/streaming.py, exact and fast for long files), else the overlap streamer over the
# analysis' context (stack/overlap.py); stream.mode=stateful: the cells (stack/stateful.py for
# a config stack, stack/module_cells.py for a module).
ENGINES = ("block rules", "overlap", "stateful")


def streaming_engine(stream: StreamConfig, block_rules: bool) -> str:
    """The engine a streamed run uses: a property of the model's structure (`block_rules`:
    every leaf has a block rule) and of stream.mode."""
    if stream.mode == "stateful":
        return "stateful"
    return "block rules" if block_rules else "overlap"


def stream_reason(stream: StreamConfig, seconds: float) -> str | None:
    """Why the config streams a segment of `seconds` (None: it does not ask to)."""
    mode = stream.enabled
    if mode == "true" or (mode == "auto" and seconds > stream.auto_seconds):
        return f"stream.enabled={mode}, segment of {seconds:.1f} s"
    return None


def decide(stream: StreamConfig, limits: LimitsConfig, seconds: float, one_shot_bytes: int,
           blocker: str | None, block_rules: bool = False) -> Decision:
    """One shot or streamed, for every run: streamed where the config asks (stream.enabled=true,
    or auto past stream.auto_seconds) or where `auto` finds the one-shot run heavier than
    limits.one_shot_gb, and the model can stream (`blocker`: why it cannot). Logged here, with
    the engine that streams it (streaming_engine; `block_rules`: every leaf has one)."""
    asked = stream_reason(stream, seconds)
    can_stream = stream.enabled != "false" and blocker is None
    too_big = one_shot_bytes > limits.one_shot_gb * 1e9
    heavy = (f"the one-shot run would need ~{fmt_bytes(one_shot_bytes)}, more than "
             f"limits.one_shot_gb={limits.one_shot_gb:g}")
    if can_stream and (asked is not None or (too_big and stream.enabled == "auto")):
        decision = Decision(True, asked or heavy,
                            engine=streaming_engine(stream, block_rules))
        log.info("streaming block by block (%s): %s", decision.engine, decision.why)
        return decision
    if asked is not None or (too_big and blocker is not None):
        decision = Decision(False, f"streaming off (one-shot forward): {blocker}"
                            if blocker else "stream.enabled=false")
        log.warning("%s", decision.why)
        return decision
    decision = Decision(False, "stream.enabled=false" if stream.enabled == "false" else
                        f"one shot: a segment of {seconds:.1f} s, ~{fmt_bytes(one_shot_bytes)}")
    log.info("%s", decision.why)
    return decision


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine (os.sysconf); None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(limits: LimitsConfig, machine: int | None) -> tuple[int | None, str]:
    """The byte budget and how it was set (for the error line)."""
    candidates = []
    if machine is not None:
        candidates.append((int(machine * limits.memory_fraction),
                           f"{limits.memory_fraction:g} of RAM"))
    if limits.memory_gb is not None:
        candidates.append((int(limits.memory_gb * 1e9), "limits.memory_gb"))
    if not candidates:
        return None, "no limit"
    return min(candidates)


def check_limits(cfg: RunConfig, estimate: Estimate, limit: int | None, how: str,
                 out_dir: Path, what_to_do: str, heaviest: str) -> None:
    """Refuse, naming the key and the figure, what exceeds a limit; `heaviest`: the key of the
    layer with the most MACs."""
    if limit is not None and estimate.peak_bytes > limit:
        peak = estimate.dominant()
        raise ConvscopeError(
            f"{peak.key}: the run needs ~{fmt_bytes(estimate.peak_bytes)} of memory "
            f"({estimate.summary()}; limit {fmt_bytes(limit)} = {how}); {what_to_do} or raise "
            "limits.memory_fraction / limits.memory_gb")
    if estimate.macs > cfg.limits.max_gmacs * 1e9:
        raise ConvscopeError(
            f"{heaviest}: the forward needs ~{estimate.macs / 1e9:.4g} GMAC, more "
            f"than limits.max_gmacs={cfg.limits.max_gmacs:g} (minutes to hours of compute); "
            "lower kernel_size/channels or shorten the segment (data.end), or raise "
            "limits.max_gmacs")
    if estimate.output_bytes > cfg.limits.max_output_gb * 1e9:
        raise ConvscopeError(
            f"{estimate.forward.key}: the WAVs would take ~{fmt_bytes(estimate.output_bytes)} on "
            f"disk, more than limits.max_output_gb={cfg.limits.max_output_gb:g}; lower the "
            "stride, shorten the segment (data.end), set audio.enabled=false or raise "
            "limits.max_output_gb")
    free = _free_disk(out_dir)
    if free is not None and estimate.output_bytes > free:
        raise ConvscopeError(
            f"{estimate.forward.key}: the WAVs would take ~{fmt_bytes(estimate.output_bytes)}, "
            f"more than the {fmt_bytes(free)} free where {out_dir} is; free some space, "
            "shorten the segment (data.end) or set audio.enabled=false")


def _free_disk(path: Path) -> int | None:
    for parent in (Path(path), *Path(path).parents):
        if parent.exists():
            try:
                return shutil.disk_usage(parent).free
            except OSError:
                return None
    return None


def check_parameters(limits: LimitsConfig, plans: list[LayerPlan]) -> None:
    """Refuse, before it is built, a config stack whose weights alone exceed the memory limit
    (a typo's kernel_size=10**11): building it is the allocation, so the estimate of its
    forward, which needs the built model, could not come first."""
    limit, how = memory_limit(limits, machine_memory_bytes())
    weights = budget.parameter_bytes(plans)
    if limit is not None and weights.bytes > limit:
        raise ConvscopeError(
            f"{weights.key}: the stack's weights alone would take ~{fmt_bytes(weights.bytes)}, "
            f"more than the memory limit {fmt_bytes(limit)} ({how}); lower kernel_size or "
            "channels")


def preflight(cfg: RunConfig, source: Source, subject: Subject, out_dir: Path,
              stream_blocker: str | None,
              device: torch.device = torch.device("cpu")) -> Preflight:
    """The estimate of this run and the choice one-shot / streamed, refused where over a limit,
    for every run: a config stack (`subject.plans`) or any nn.Module. The forward's figures are
    convscope.estimate's (sizing.Subject.estimated), the stages' follow from its output.

    `stream_blocker`: why a config stack cannot stream (None: it can); a module's is its
    estimate's (an unbounded context). `decide` makes the choice. `cfg` is read, never
    rewritten: the block size on `device` and the stages turned off are the returned
    Decision's (the run context carries them, shapes.json records them). A module whose
    forward fake tensors cannot run is decided without a figure (estimate None)."""
    limit, how = memory_limit(cfg.limits, machine_memory_bytes())
    input_rate, shape = exact_rate(source.sample_rate), tuple(source.shape)
    seconds, stack = source.end - source.start, subject.plans is not None
    blocks = device_blocks(cfg.stream, cfg.limits, device) if stack else None
    if stack:
        ratio = stack_ratio(subject.plans)
        probe = probe_block(blocks.seconds, input_rate, ratio, shape[-1])
    else:
        probe = min(max(1, round(cfg.stream.block_seconds * input_rate)), shape[-1])
    # a streamed block's figures cost fake forwards of their own (a second of a big generator's
    # CPU): asked for only where the config asks to stream, or once auto has decided to
    asked = cfg.stream.enabled != "false" and stream_reason(cfg.stream, seconds) is not None
    try:
        found = subject.estimated(shape, input_rate, probe if asked else None)
    except EstimateFailed as exc:  # an op that needs real values: decided without a figure
        if stack or isinstance(exc.__cause__, ForwardFailed):  # the model's own error
            raise
        log.warning("%s; decided without it", exc)
        return Preflight(None, limit, decide(cfg.stream, cfg.limits, seconds, 0,
                                             "no estimate of its context"))
    log.info("estimate: %s", found.summary())
    if not stack:  # stack.module_cells words what has no cell when it is asked to stream
        stream_blocker = None if cfg.stream.mode == "stateful" else found.unbounded_reason
    kept = budget.trace_kept_bytes(subject.plans) if stack \
        else module_kept_bytes(cfg, found, shape)
    whole = Peak(found.one_shot_bytes, subject.forward_key)
    one_shot = stage_estimate(cfg, source, found, whole, kept, streamed=False)
    # a config stack that streams has a block rule for every leaf (stream_blocker,
    # streaming.unsupported_reason, names one without)
    decision = decide(cfg.stream, cfg.limits, seconds, one_shot.peak_bytes, stream_blocker,
                      block_rules=stack)
    streamed, block = decision.streamed, None
    if streamed and found.block_bytes is None:  # auto found the one shot too heavy
        found = subject.estimated(shape, input_rate, probe)
        log.info("estimate of a streamed block: %s", found.summary())
    if streamed and stack:  # it draws plots.spectrogram_start.. of the segment, not all of it
        check_spectrogram_window(cfg.plots, shape[-1] / source.sample_rate)
        wanted = max(1, round(blocks.seconds * input_rate * ratio))
        block = capped_block(found, wanted, blocks.mb)
        if block < wanted:  # shorter than the probe, for limits.block_mb: its own figures
            found = subject.estimated(shape, input_rate, max(1, math.ceil(block / ratio)))
    forward = Peak(found.block_bytes or 0, subject.forward_key) if streamed else whole
    # the optional stages too heavy on the path taken are turned off, then the path is estimated
    off, turned_off = lighten(cfg, stage_estimate(cfg, source, found, forward, kept, streamed,
                                                  block))
    chosen = stage_estimate(cfg, source, found, forward, kept, streamed, block, off)
    if not stack and not streamed and limit is not None and found.one_shot_bytes > limit:
        why = (f"it cannot stream ({stream_blocker})" if stream_blocker else
               "stream it (stream.enabled=auto or true)")
        raise ConvscopeError(f"{subject.key}: {subject.label} needs "
                             f"~{fmt_bytes(found.one_shot_bytes)} for one forward of "
                             f"{list(shape)} (limit {fmt_bytes(limit)} = {how}); {why}, or "
                             "shorten the segment (data.end)")
    if streamed:
        what = "lower the stride/channels, plots.spectrogram_seconds or shorten the segment"
    else:
        what = ("stream it (stream.enabled=auto or true) or shorten the segment (data.end)"
                if stream_blocker is None else
                f"it cannot stream ({stream_blocker}): shorten the segment (data.end)")
    check_limits(cfg, chosen, limit, how, out_dir, what, subject.heaviest)
    log.info("run estimate: %s", chosen.summary())
    return Preflight(chosen, limit, replace(decision, turned_off=turned_off, off=off,
                                            blocks=blocks))


def lighten(cfg: RunConfig, estimate: Estimate) -> tuple[frozenset[str], tuple[str, ...]]:
    """The optional stages that alone would exceed limits.one_shot_gb, turned off: their names
    ("spectrogram", "evaluate") and a line each, logged, for shapes.json["decision"]["turned_off"]
    (the config is left as composed): the
    spectrogram figure (its window is plots.window_ms at the output rate, a megasample FFT at
    tens of MHz) and an `auto` evaluate stage (soxr to the output rate)."""
    cap = cfg.limits.one_shot_gb * 1e9
    off, names = [], set()
    if cfg.plots.enabled and cfg.plots.spectrogram and estimate.plots.bytes > cap:
        names.add("spectrogram")
        off.append(f"plots.spectrogram: off, the figure would need ~"
                   f"{fmt_bytes(estimate.plots.bytes)} (more than limits.one_shot_gb="
                   f"{cfg.limits.one_shot_gb:g}); lower plots.window_ms or "
                   "plots.spectrogram_seconds")
    if cfg.evaluate.enabled == "auto" and estimate.evaluate.bytes > cap:
        names.add("evaluate")
        off.append(f"evaluate: off, the reference at the output rate would need ~"
                   f"{fmt_bytes(estimate.evaluate.bytes)} (more than limits.one_shot_gb="
                   f"{cfg.limits.one_shot_gb:g}); evaluate.enabled=true insists")
    for line in off:
        log.warning("%s", line)
    return frozenset(names), tuple(off)
