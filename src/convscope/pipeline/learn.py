"""Learn stage: fit the stack's weights so an output channel matches a real resampler.

Random kernels give noise-like "upsampled" audio; vocoders (HiFi-GAN, MelGAN) learn theirs. Here
the target is the evaluate stage's reference (soxr_hq by default) of the loaded audio, and the
loss is the error power relative to the reference (1/SNR, exactly what the evaluation reports),
optionally plus a multi-resolution STFT distance (learn.spectral_weight), which keeps pushing on
images after they stop mattering to the waveform error. `run_learn` writes what a one-shot run
writes for the learned stack, plus the loss curve, the learned kernels and their frequency
responses, and metrics before and after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch

from convscope.audio.segment import Segment, load_segment
from convscope.board.export import export_tree
from convscope.config.schema import LearnConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.evaluate import write_metrics, write_reference_audio
from convscope.pipeline.figures import plan_geometry
from convscope.pipeline.oneshot import write_audio, write_plots
from convscope.pipeline.stages import PreparedStack, finish_run, prepare_stack
from convscope.quality.evaluate import Evaluation, evaluate_output, format_metrics, reference_signal
from convscope.quality.fit import FitHistory, fit, forward
from convscope.quality.kernel_views import kernel_views
from convscope.rundir import RunDir
from convscope.stack.preset_weights import build_with_weights, weights_to_save
from convscope.stack.backends import safe_kernels
from convscope.pipeline.preflight import check_parameters, machine_memory_bytes, memory_limit
from convscope.stack.budget import FLOAT32, Peak, numel
from convscope.stack.estimate import estimate
from convscope.stack.plan import LayerPlan, leaf_plans, plan_stack
from convscope.text import fmt_bytes
from convscope.stack.rates import layer_rates
from convscope.stack.trace import LayerTrace, pick_device, trace_stack

if TYPE_CHECKING:
    from convscope.report.page import RunCommand

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class LearnResult:
    out_dir: Path
    before: Evaluation
    after: Evaluation
    history: FitHistory


def run_learn(cfg: RunConfig, learn: LearnConfig, out_dir: Path, base_dir: Optional[Path] = None,
              command: Optional["RunCommand"] = None) -> LearnResult:
    out_dir = Path(out_dir)
    if cfg.data.features != "waveform":
        raise ConvscopeError(
            f"data.features={cfg.data.features}: learning fits a waveform stack to the reference "
            "resampler, which has no counterpart for a feature input; use data.features=waveform")
    if pick_device(cfg.device).type != "cpu":
        log.warning("learn: fitting runs on the CPU (device=%s is used by scripts/run.py only); "
                    "these stacks are small enough that it costs seconds", cfg.device)
    segment = load_segment(cfg.data, base_dir or Path.cwd())
    plans = plan_stack(cfg.model.layers, segment.shape, causal=cfg.model.causal)
    check_parameters(cfg.limits, plans)  # building allocates the weights: refused before
    stack = build_with_weights(plans, cfg.seed, cfg.model)
    check_learn_memory(cfg, plans, stack)
    # Learning needs the reference even where `auto` would skip it (a rate-preserving stack).
    cfg = replace(cfg, evaluate=replace(cfg.evaluate, enabled="true"))
    prepared = prepare_stack(cfg, segment, plans, stack, cfg.model.name, torch.device("cpu"))
    plan = prepared.evaluation
    reference = reference_signal(plan, segment.samples)
    x = torch.as_tensor(segment.samples[None], dtype=torch.float32)
    with safe_kernels(prepared.stack):  # forwards and backwards off oneDNN where it hangs
        before = evaluate_output(plan, forward(prepared.stack, x)[plan.channel], reference)
        log.info("%s", format_metrics(before, " before learning"))
        length = min(plans[-1].output_shape[-1], len(reference))
        history = fit(prepared.stack, x, reference[:length], plan, learn)
    traces = trace_stack(prepared.stack, segment.samples[None], torch.device("cpu"))
    after = evaluate_output(plan, traces[-1].output[0][plan.channel], reference)
    log.info("%s", format_metrics(after, " after learning"))
    log.info("learned in %.1f s (%d steps): SNR %.2f -> %.2f dB", history.seconds,
             learn.steps, before.metrics.snr_db, after.metrics.snr_db)
    write_learned(out_dir, cfg, segment, prepared, traces, before, after, history, command)
    if cfg.tensorboard:  # the learned run's files, as convscope-run's (corpus/jobs.py)
        export_tree(out_dir)
    return LearnResult(out_dir, before, after, history)


# Output-sized arrays quality.fit's waveform loss keeps for the backward pass: the error, its
# square, and a gradient of each
LOSS_ARRAYS = 4


def learn_bytes(plans: list[LayerPlan], stack: torch.nn.Module) -> Peak:
    """A fitting step's peak: autograd keeps every leaf's output for the backward pass, which
    makes a gradient of each beside it, and the loss's LOSS_ARRAYS, on top of the forward's own
    peak (convscope.estimate of `stack` on the planned input: its live outputs and the largest
    call's workspace). Named after the largest leaf output."""
    leaves = leaf_plans(plans)
    kept = 2 * sum(numel(leaf.output_shape) for leaf in leaves) \
        + LOSS_ARRAYS * numel(plans[-1].output_shape)
    largest = max(leaves, key=lambda leaf: numel(leaf.output_shape))
    forward = estimate(stack, plans[0].input_shape, sample_rate=None).one_shot_bytes
    return Peak(FLOAT32 * kept + forward, largest.key)


def check_learn_memory(cfg: RunConfig, plans: list[LayerPlan], stack: torch.nn.Module) -> None:
    """The learn stage's pre-flight: refused before the first step when a step would not fit."""
    limit, how = memory_limit(cfg.limits, machine_memory_bytes())
    need = learn_bytes(plans, stack)
    if limit is not None and need.bytes > limit:
        raise ConvscopeError(
            f"{need.key}: each learning step keeps every layer's output and its gradient, "
            f"~{fmt_bytes(need.bytes)}, more than the memory limit {fmt_bytes(limit)} ({how}); "
            "shorten the segment (data.end) or use fewer channels")
    log.info("learn: each step needs ~%s (every layer's output and its gradient)",
             fmt_bytes(need.bytes))


def write_learned(out_dir: Path, cfg: RunConfig, segment: Segment, prepared: PreparedStack,
                  traces: list[LayerTrace], before: Evaluation, after: Evaluation,
                  history: FitHistory, command: Optional["RunCommand"] = None) -> None:
    """The usual run outputs for the learned stack, plus the learning's own; then finish_run."""
    from convscope.plots.quality import plot_kernels, plot_loss, plot_spectrum  # matplotlib

    plans, stack = prepared.plans, prepared.stack
    files = RunDir(out_dir)
    audio_info = None
    if cfg.audio.enabled:
        audio_info = write_audio(files, segment, traces[-1], prepared.exact_rate, cfg)
        write_reference_audio(files.reference_wav, after, cfg.audio)
    if cfg.plots.enabled:
        write_plots(files, segment, traces, layer_rates(plans, segment.sample_rate), cfg,
                    {plan.index: g for plan in plans if (g := plan_geometry(plan))})
        plot_spectrum(files.spectrum, after, cfg.plots)
        plot_spectrum(files.spectrum_before, before, cfg.plots)
        plot_loss(files.loss_plot, history.losses, history.snrs, cfg.plots)
        plot_kernels(files.kernels_plot,
                     kernel_views(plans, stack, segment.sample_rate, after.plan.channel),
                     cfg.plots)
    write_metrics(files.metrics, {"before": before.as_json(), "after": after.as_json()})
    finish_run(cfg, out_dir, segment, prepared, audio_info, command,
               weights_of=partial(weights_to_save, model=cfg.model))
