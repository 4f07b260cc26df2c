"""Learn stage: fit the stack's weights so an output channel matches a real resampler.

Random kernels give noise-like "upsampled" audio; vocoders (HiFi-GAN, MelGAN) learn theirs. Here
the target is the evaluate stage's reference (soxr_hq by default) of the loaded audio, and the
loss is the error power relative to the reference (1/SNR, exactly what the evaluation reports),
optionally plus a multi-resolution STFT distance (learn.spectral_weight), which keeps pushing on
images after they stop mattering to the waveform error. `run_learn` writes what `pipeline.run`
writes for the learned stack, plus the loss curve, the learned kernels and their frequency
responses, and metrics before and after.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch import nn

from convscope.atomic import atomic_path, write_text
from convscope.audio import Segment, load_segment
from convscope.config import LearnConfig, RunConfig
from convscope.evaluate import (Evaluation, EvaluationPlan, evaluate_output, format_metrics,
                                plan_evaluation, reference_signal, write_reference_audio)
from convscope.kernel_views import kernel_views
from convscope.layers import LayerPlan, build_stack, output_sample_rate, plan_stack
from convscope.metrics import trim_edges

if TYPE_CHECKING:
    from convscope.report import RunCommand

log = logging.getLogger("convscope")
LOG_MAGNITUDE_FLOOR = 1e-5  # relative to the target's loudest STFT bin: -100 dB


@dataclass(frozen=True)
class FitHistory:
    losses: list[float]
    snrs: list[float]  # SNR (dB) of the fitted channel against the reference, per step
    seconds: float


@dataclass(frozen=True)
class LearnResult:
    out_dir: Path
    before: Evaluation
    after: Evaluation
    history: FitHistory


def run_learn(cfg: RunConfig, learn: LearnConfig, out_dir: Path, base_dir: Optional[Path] = None,
              command: Optional["RunCommand"] = None) -> LearnResult:
    out_dir = Path(out_dir)
    segment = load_segment(cfg.data, base_dir or Path.cwd())
    plans = plan_stack(cfg.model.layers, segment.shape)
    output_rate = int(round(output_sample_rate(plans, segment.sample_rate)))
    # Learning needs the reference even where `auto` would skip it (a rate-preserving stack).
    plan = plan_evaluation(replace(cfg.evaluate, enabled="true"), plans, segment.sample_rate,
                           output_rate)
    stack = build_stack(plans, cfg.seed)
    reference = reference_signal(plan, segment.samples)
    x = torch.as_tensor(segment.samples[None], dtype=torch.float32)
    before = evaluate_output(plan, forward(stack, x), reference)
    log.info("%s", format_metrics(before, " before learning"))
    history = fit(stack, x, reference, plan, learn)
    after = evaluate_output(plan, forward(stack, x), reference)
    log.info("%s", format_metrics(after, " after learning"))
    log.info("learned in %.1f s (%d steps): SNR %.2f -> %.2f dB", history.seconds,
             learn.steps, before.metrics.snr_db, after.metrics.snr_db)
    write_learned(out_dir, cfg, segment, plans, stack, before, after, history, command)
    return LearnResult(out_dir, before, after, history)


def forward(stack: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The stack's output (channels, length) for one input, without gradients."""
    with torch.no_grad():
        return stack(x)[0].numpy()


def fit(stack: nn.Module, x: torch.Tensor, reference: np.ndarray, plan: EvaluationPlan,
        learn: LearnConfig) -> FitHistory:
    """Adam on the loss of output channel `plan.channel`, edges left out as in the metrics."""
    from tqdm import tqdm

    with torch.no_grad():
        length = min(stack(x).shape[-1], len(reference))
    target = torch.as_tensor(trim_edges(reference[:length], plan.edge), dtype=torch.float32)
    target_power = target.pow(2).mean().clamp_min(1e-12)
    optimizer = torch.optim.Adam(stack.parameters(), lr=learn.lr)
    losses, snrs = [], []
    started = time.perf_counter()
    bar = tqdm(range(learn.steps), desc="learn", disable=not learn.progress, leave=False)
    # These convolutions are tiny: with several threads, synchronisation costs more than it
    # saves, and on a shared machine oversubscribed threads made steps 5x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in bar:
            loss, snr = _step(stack, x, target, target_power, length, plan, learn, optimizer)
            losses.append(loss)
            snrs.append(snr)
            bar.set_postfix(loss=f"{losses[-1]:.4g}", snr=f"{snrs[-1]:.1f} dB", refresh=False)
    finally:
        torch.set_num_threads(threads)
    return FitHistory(losses, snrs, time.perf_counter() - started)


def _step(stack: nn.Module, x: torch.Tensor, target: torch.Tensor, target_power: torch.Tensor,
          length: int, plan: EvaluationPlan, learn: LearnConfig,
          optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    """One Adam step; returns the loss and the SNR (dB) before the step."""
    output = trim_edges(stack(x)[0, plan.channel, :length], plan.edge)
    error_power = (output - target).pow(2).mean() / target_power
    loss = learn.waveform_weight * error_power
    if learn.spectral_weight > 0:
        loss = loss + learn.spectral_weight * spectral_loss(output, target, learn.fft_sizes)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), -10 * float(torch.log10(error_power.detach().clamp_min(1e-20)))


def spectral_loss(output: torch.Tensor, target: torch.Tensor, fft_sizes: list[int]) -> torch.Tensor:
    """Mean over STFT sizes of spectral convergence plus log-magnitude L1 distance.

    Spectral convergence weighs the loud bins; the log term weighs every bin down to
    LOG_MAGNITUDE_FLOOR below the target's peak, so images 60 dB down still pull on the kernel.
    """
    total = output.new_zeros(())
    for n_fft in fft_sizes:
        n_fft = min(n_fft, len(target))
        window = torch.hann_window(n_fft)
        out_mag, tgt_mag = (torch.stft(s, n_fft, hop_length=max(1, n_fft // 4), window=window,
                                       return_complex=True).abs() for s in (output, target))
        convergence = torch.linalg.norm(tgt_mag - out_mag) / torch.linalg.norm(tgt_mag).clamp_min(
            1e-12)
        floor = tgt_mag.max().clamp_min(1e-12) * LOG_MAGNITUDE_FLOOR
        log_distance = (torch.log(out_mag + floor) - torch.log(tgt_mag + floor)).abs().mean()
        total = total + convergence + log_distance
    return total / len(fft_sizes)


def write_learned(out_dir: Path, cfg: RunConfig, segment: Segment, plans: list[LayerPlan],
                  stack: nn.Sequential, before: Evaluation, after: Evaluation,
                  history: FitHistory, command: Optional["RunCommand"] = None) -> None:
    """The usual run outputs for the learned stack, then the learning's own; shapes.json last."""
    from convscope.pipeline import plans_rates, write_audio, write_plots
    from convscope.quality_plots import plot_kernels, plot_loss, plot_spectrum
    from convscope.summary import layer_rows, shapes_document, write_shapes
    from convscope.trace import trace_stack

    traces = trace_stack(stack, segment.samples[None], torch.device("cpu"))
    output_rate = after.plan.output_rate
    audio_info = None
    if cfg.audio.enabled:
        audio_info = write_audio(out_dir / "audio", segment, traces[-1], output_rate, cfg)
        write_reference_audio(out_dir / "audio" / "reference.wav", after, cfg.audio)
    if cfg.plots.enabled:
        plot_dir = out_dir / "plots"
        write_plots(plot_dir, segment, traces, plans_rates(plans, segment.sample_rate), cfg)
        plot_spectrum(plot_dir / "spectrum.png", after, cfg.plots)
        plot_spectrum(plot_dir / "spectrum_before.png", before, cfg.plots)
        plot_loss(plot_dir / "loss.png", history.losses, history.snrs, cfg.plots)
        plot_kernels(plot_dir / "kernels.png",
                     kernel_views(plans, stack, segment.sample_rate, after.plan.channel),
                     cfg.plots)
    if cfg.save.weights:
        with atomic_path(out_dir / "weights.pt") as tmp:
            torch.save(stack.state_dict(), tmp)
    document = {"before": before.as_json(), "after": after.as_json()}
    write_text(out_dir / "metrics.json", json.dumps(document, indent=2) + "\n")
    shapes = shapes_document(segment, layer_rows(plans, stack), output_rate, audio_info)
    if cfg.save.shapes:
        write_shapes(out_dir / "shapes.json", shapes)
    if cfg.report:  # after shapes.json, like a run: the page shows before/after side by side
        from convscope.report import write_report

        write_report(out_dir, shapes, command)
    log.info("outputs written to %s", out_dir)
