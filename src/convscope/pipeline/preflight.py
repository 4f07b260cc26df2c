"""Before anything is built: the run's resource estimate (stack.budget), the choice between one
shot and streaming made from it (`decide`, the one place every run's choice is made, config
stack or the user's module), and the refusal of what would not fit the limits.

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
from fractions import Fraction
from pathlib import Path

import torch

from convscope.audio.blockio import SegmentSpan
from convscope.audio.features import FeatureInput
from convscope.config.checks import check_spectrogram_window
from convscope.config.schema import LimitsConfig, RunConfig, StreamConfig
from convscope.errors import ConvscopeError
from convscope.stack import budget
from convscope.stack.budget import Estimate, Peak
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import layer_rates
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
    estimate: Estimate
    limit_bytes: int | None
    decision: Decision

    @property
    def streamed(self) -> bool:
        return self.estimate.streamed


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


def estimate_run(cfg: RunConfig, span: SegmentSpan | FeatureInput, plans: list[LayerPlan],
                 streamed: bool, block_samples: int | None = None,
                 off: frozenset[str] = frozenset()) -> Estimate:
    """The estimate of this run, one-shot or streamed in blocks of `block_samples`, without the
    stages named in `off` (lighten's: "spectrogram", "evaluate"). A feature
    input's frames are the stack input; its target audio is what input.wav and the
    spectrogram's input panel hold, and it has no evaluate stage (stages.plan_evaluate_stage)."""
    features = isinstance(span, FeatureInput)
    draws = cfg.plots.enabled and cfg.plots.spectrogram and "spectrogram" not in off
    evaluate_on = cfg.evaluate.enabled != "false" and "evaluate" not in off
    rates = layer_rates(plans, Fraction(span.sample_rate))
    out_rate = rates[-1]
    out_channels, out_length = plans[-1].output_shape[1], plans[-1].output_shape[-1]
    forward = (budget.block_forward(plans, block_samples) if streamed
               else budget.one_shot_forward(plans))
    # what plots and evaluate see: everything one-shot, the plots window when streamed
    seconds = cfg.plots.spectrogram_seconds if streamed else math.inf
    shown_out = int(min(out_length, seconds * out_rate))
    shown_in = int(min(span.length, seconds * span.sample_rate))
    audio = span.target if features else span  # the audio input.wav holds
    audio_samples = (0 if audio is None else audio.samples.size) if features \
        else span.channels * span.length
    plots = 0
    if draws:
        panel_in = [] if audio is None else [
            (int(min(audio.samples.shape[-1], seconds * audio.sample_rate)), audio.sample_rate)
            if features else (shown_in, span.sample_rate)]
        panels = panel_in + [(shown_out, float(out_rate))] \
            * cfg.plots.spectrogram_channels(out_channels)
        plots = budget.spectrogram_figure_bytes(panels, cfg.plots.window_ms)
    evaluates = evaluate_on and out_rate != span.sample_rate \
        and out_rate.denominator == 1 and not features
    evaluate = shown_out * budget.EVALUATE_BYTES_PER_SAMPLE if evaluates else 0
    wav_sub = cfg.stream.subtype if streamed else cfg.audio.subtype
    output = 0
    wav = 0
    if cfg.audio.enabled:
        output += audio_samples * budget.subtype_bytes(cfg.audio.subtype)
        if out_rate.denominator == 1:
            output += out_channels * out_length * budget.subtype_bytes(wav_sub)
        wav = 0 if streamed else out_channels * out_length * budget.WAV_BYTES_PER_SAMPLE
    if evaluates:
        output += shown_out * budget.subtype_bytes(cfg.audio.subtype)  # reference.wav
    # one-shot: the trace; streamed: the window the spectrogram and evaluate read (pipeline.
    # consumers keeps the drawn channels and the evaluated one, input and output)
    window = (span.channels * shown_in + (cfg.plots.spectrogram_channels(out_channels) + 1)
              * shown_out) * budget.FLOAT32 if draws or evaluate_on \
        else 0
    kept = window if streamed else forward.bytes
    return Estimate(forward, streamed, block_samples if streamed else None,
                    Peak(plots, "plots.spectrogram" if not streamed
                         else "plots.spectrogram_seconds"),
                    Peak(evaluate, "evaluate.enabled"), wav, kept, output,
                    budget.macs(plans))


def block_samples(blocks: BlockSize, plans: list[LayerPlan], output_rate: Fraction) -> int:
    """Output samples per streamed block: `blocks.seconds` of output, cut so that one block's
    arrays stay within `blocks.mb` however far the stack upsamples."""
    wanted = max(1, round(blocks.seconds * output_rate))
    per_sample = budget.elements_per_output_sample(plans) * budget.FLOAT32 * 2
    cap = max(1, int(blocks.mb * 1e6 / max(per_sample, 1e-9)))
    return min(wanted, cap)


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


def heaviest_layer(plans: list[LayerPlan]) -> str:
    """The key of the top-level layer with the most MACs (what a time refusal names)."""
    return max(plans, key=budget.count_macs).key


def _free_disk(path: Path) -> int | None:
    for parent in (Path(path), *Path(path).parents):
        if parent.exists():
            try:
                return shutil.disk_usage(parent).free
            except OSError:
                return None
    return None


def preflight(cfg: RunConfig, span: SegmentSpan | FeatureInput, plans: list[LayerPlan],
              out_dir: Path, stream_blocker: str | None,
              device: torch.device = torch.device("cpu")) -> Preflight:
    """The estimate of this run and the choice one-shot / streamed, refused where over a limit.

    `stream_blocker`: why this stack cannot stream (None: it can); `decide` makes the choice.
    `cfg` is read, never rewritten: the block size on `device` and the stages turned off are
    the returned Decision's (the run context carries them, shapes.json records them)."""
    limit, how = memory_limit(cfg.limits, machine_memory_bytes())
    one_shot = estimate_run(cfg, span, plans, streamed=False)
    decision = decide(cfg.stream, cfg.limits, span.end - span.start,
                      # a config stack that streams has a block rule for every leaf
                      # (stream_blocker, streaming.unsupported_reason, names one without)
                      one_shot.peak_bytes, stream_blocker, block_rules=True)
    streamed = decision.streamed
    if streamed:  # a streamed run draws plots.spectrogram_start.. of the segment, not all of it
        check_spectrogram_window(cfg.plots, span.length / span.sample_rate)
    rate = layer_rates(plans, Fraction(span.sample_rate))[-1]
    blocks = device_blocks(cfg.stream, cfg.limits, device)
    block = block_samples(blocks, plans, rate) if streamed else None
    # the optional stages too heavy on the path taken are turned off, then the path is estimated
    off, turned_off = lighten(cfg, estimate_run(cfg, span, plans, streamed, block))
    chosen = estimate_run(cfg, span, plans, streamed, block, off)
    if streamed:
        what = "lower the stride/channels, plots.spectrogram_seconds or shorten the segment"
    else:
        what = ("stream it (stream.enabled=auto or true) or shorten the segment (data.end)"
                if stream_blocker is None else
                f"it cannot stream ({stream_blocker}): shorten the segment (data.end)")
    check_limits(cfg, chosen, limit, how, out_dir, what, heaviest_layer(plans))
    log.info("estimate: %s", chosen.summary())
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
