"""Fitting a stack's weights to a reference signal with Adam: the waveform loss (1/SNR)
and an optional multi-resolution STFT distance."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from convscope.config.schema import LearnConfig
from convscope.quality.evaluate import EvaluationPlan
from convscope.quality.metrics import trim_edges
from convscope.stack.trace import torch_threads

if TYPE_CHECKING:
    pass


LOG_MAGNITUDE_FLOOR = 1e-5  # relative to the target's loudest STFT bin: -100 dB


@dataclass(frozen=True)
class FitHistory:
    losses: list[float]
    snrs: list[float]  # SNR (dB) of the fitted channel against the reference, per step
    seconds: float


def forward(stack: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The stack's output (channels, length) for one input, without gradients."""
    with torch.no_grad():
        return stack(x)[0].numpy()


def fit(stack: nn.Module, x: torch.Tensor, reference: np.ndarray, plan: EvaluationPlan,
        learn: LearnConfig) -> FitHistory:
    """Adam on the loss of output channel `plan.channel` against `reference` (no longer than the
    output), edges left out as in the metrics."""
    from tqdm import tqdm  # only when fitting: the metrics and the rest of quality/ need none

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
