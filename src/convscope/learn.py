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

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from torch import nn

from convscope.audio import Segment, load_segment
from convscope.config import LearnConfig, RunConfig
from convscope.evaluate import (Evaluation, EvaluationPlan, evaluate_output, format_metrics,
                                reference_signal, write_metrics, write_reference_audio)
from convscope.kernel_views import kernel_views
from convscope.layers import layer_rates, plan_stack
from convscope.metrics import trim_edges
from convscope.pipeline import PreparedStack, finish_run, prepare_stack
from convscope.trace import LayerTrace, pick_device, torch_threads, trace_stack

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
    if pick_device(cfg.device).type != "cpu":
        log.warning("learn: fitting runs on the CPU (device=%s is used by scripts/run.py only); "
                    "these stacks are small enough that it costs seconds", cfg.device)
    segment = load_segment(cfg.data, base_dir or Path.cwd())
    plans = plan_stack(cfg.model.layers, segment.shape)
    # Learning needs the reference even where `auto` would skip it (a rate-preserving stack).
    cfg = replace(cfg, evaluate=replace(cfg.evaluate, enabled="true"))
    prepared = prepare_stack(cfg, segment, plans)
    plan = prepared.evaluation
    reference = reference_signal(plan, segment.samples)
    x = torch.as_tensor(segment.samples[None], dtype=torch.float32)
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
    return LearnResult(out_dir, before, after, history)


def forward(stack: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The stack's output (channels, length) for one input, without gradients."""
    with torch.no_grad():
        return stack(x)[0].numpy()


def fit(stack: nn.Module, x: torch.Tensor, reference: np.ndarray, plan: EvaluationPlan,
        learn: LearnConfig) -> FitHistory:
    """Adam on the loss of output channel `plan.channel` against `reference` (no longer than the
    output), edges left out as in the metrics."""
    from tqdm import tqdm

    length = len(reference)
    target = torch.as_tensor(trim_edges(reference[:length], plan.edge), dtype=torch.float32)
    target_power = target.pow(2).mean().clamp_min(1e-12)
    spectra = target_spectra(target, learn.fft_sizes) if learn.spectral_weight > 0 else []
    optimizer = torch.optim.Adam(stack.parameters(), lr=learn.lr)
    losses, snrs = [], []
    started = time.perf_counter()
    bar = tqdm(range(learn.steps), desc="learn", disable=not learn.progress, leave=False)
    # These convolutions are tiny: with several threads, synchronisation costs more than it
    # saves, and on a shared machine oversubscribed threads made steps 5x slower.
    with torch_threads(1):
        for _ in bar:
            loss, snr = _step(stack, x, target, target_power, length, plan, learn, spectra,
                              optimizer)
            losses.append(loss)
            snrs.append(snr)
            bar.set_postfix(loss=f"{losses[-1]:.4g}", snr=f"{snrs[-1]:.1f} dB", refresh=False)
    return FitHistory(losses, snrs, time.perf_counter() - started)


def _step(stack: nn.Module, x: torch.Tensor, target: torch.Tensor, target_power: torch.Tensor,
          length: int, plan: EvaluationPlan, learn: LearnConfig, spectra: list[TargetSpectrum],
          optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    """One Adam step; returns the loss and the SNR (dB) before the step."""
    output = trim_edges(stack(x)[0, plan.channel, :length], plan.edge)
    error_power = (output - target).pow(2).mean() / target_power
    loss = learn.waveform_weight * error_power
    if spectra:
        loss = loss + learn.spectral_weight * spectral_loss(output, spectra)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), -10 * float(torch.log10(error_power.detach().clamp_min(1e-20)))


@dataclass(frozen=True)
class TargetSpectrum:
    """One STFT resolution of the (fixed) target, computed once before the steps."""

    n_fft: int
    window: torch.Tensor
    magnitude: torch.Tensor
    norm: torch.Tensor  # of magnitude, for spectral convergence
    floor: torch.Tensor  # LOG_MAGNITUDE_FLOOR below the loudest bin
    log_magnitude: torch.Tensor


def _stft_magnitude(signal: torch.Tensor, n_fft: int, window: torch.Tensor) -> torch.Tensor:
    return torch.stft(signal, n_fft, hop_length=max(1, n_fft // 4), window=window,
                      return_complex=True).abs()


def target_spectra(target: torch.Tensor, fft_sizes: list[int]) -> list[TargetSpectrum]:
    spectra = []
    for n_fft in fft_sizes:
        n_fft = min(n_fft, len(target))
        window = torch.hann_window(n_fft)
        magnitude = _stft_magnitude(target, n_fft, window)
        floor = magnitude.max().clamp_min(1e-12) * LOG_MAGNITUDE_FLOOR
        spectra.append(TargetSpectrum(n_fft, window, magnitude,
                                      torch.linalg.norm(magnitude).clamp_min(1e-12), floor,
                                      torch.log(magnitude + floor)))
    return spectra


def spectral_loss(output: torch.Tensor, spectra: list[TargetSpectrum]) -> torch.Tensor:
    """Mean over STFT sizes of spectral convergence plus log-magnitude L1 distance.

    Spectral convergence weighs the loud bins; the log term weighs every bin down to
    LOG_MAGNITUDE_FLOOR below the target's peak, so images 60 dB down still pull on the kernel.
    """
    total = output.new_zeros(())
    for spec in spectra:
        magnitude = _stft_magnitude(output, spec.n_fft, spec.window)
        convergence = torch.linalg.norm(spec.magnitude - magnitude) / spec.norm
        log_distance = (torch.log(magnitude + spec.floor) - spec.log_magnitude).abs().mean()
        total = total + convergence + log_distance
    return total / len(spectra)


def write_learned(out_dir: Path, cfg: RunConfig, segment: Segment, prepared: PreparedStack,
                  traces: list[LayerTrace], before: Evaluation, after: Evaluation,
                  history: FitHistory, command: Optional["RunCommand"] = None) -> None:
    """The usual run outputs for the learned stack, plus the learning's own; then finish_run."""
    from convscope.pipeline import write_audio, write_plots
    from convscope.quality_plots import plot_kernels, plot_loss, plot_spectrum

    plans, stack = prepared.plans, prepared.stack
    audio_info = None
    if cfg.audio.enabled:
        audio_info = write_audio(out_dir / "audio", segment, traces[-1], prepared.output_rate, cfg)
        write_reference_audio(out_dir / "audio" / "reference.wav", after, cfg.audio)
    if cfg.plots.enabled:
        plot_dir = out_dir / "plots"
        write_plots(plot_dir, segment, traces, layer_rates(plans, segment.sample_rate), cfg)
        plot_spectrum(plot_dir / "spectrum.png", after, cfg.plots)
        plot_spectrum(plot_dir / "spectrum_before.png", before, cfg.plots)
        plot_loss(plot_dir / "loss.png", history.losses, history.snrs, cfg.plots)
        plot_kernels(plot_dir / "kernels.png",
                     kernel_views(plans, stack, segment.sample_rate, after.plan.channel),
                     cfg.plots)
    write_metrics(out_dir / "metrics.json", {"before": before.as_json(), "after": after.as_json()})
    finish_run(cfg, out_dir, segment, prepared, audio_info, command)
