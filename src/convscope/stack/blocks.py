"""The generator blocks a config stack can hold besides plain layers: residual and parallel
sub-stacks, Snake activations and BigVGAN's anti-aliased activation.

Each is a small nn.Module whose structure is visible from outside (`inner`, `branches`, `up`,
`act`, `down`), so the planner, receptive-field arithmetic and streaming can reason about it
without running it. The activations follow the published code (Ziyin et al. 2020's Snake;
BigVGAN's SnakeBeta and alias-free `Activation1d`) so a preset's arithmetic matches the paper's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from convscope.stack.kaiser_lengths import (
    ANTI_ALIAS_KERNEL,
    ANTI_ALIAS_RATIO,
    downsample_padding,
    upsample_padding,
)

REDUCTIONS = ("mean", "sum")


class Residual(nn.Module):
    """x + inner(x): the inner stack must keep the shape (HiFi-GAN's ResBlock, one dilation)."""

    def __init__(self, inner: nn.Sequential):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)


class Parallel(nn.Module):
    """Branches on the same input, combined by mean or sum (HiFi-GAN's multi-receptive-field
    fusion is the mean of its residual blocks)."""

    def __init__(self, branches: list[nn.Module], reduce: str = "mean"):
        super().__init__()
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.branches = nn.ModuleList(branches)
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = sum(branch(x) for branch in self.branches)
        return total / len(self.branches) if self.reduce == "mean" else total

    def extra_repr(self) -> str:
        return f"reduce={self.reduce!r}"


class Snake(nn.Module):
    """x + sin²(αx)/α per channel: a periodic inductive bias for audio (HiFi-GAN+ / BigVGAN v1).
    With `logscale`, α is stored as log α (initialised to log 1 = 0), as BigVGAN v2 does."""

    def __init__(self, channels: int, alpha: float = 1.0, logscale: bool = False):
        super().__init__()
        self.logscale = logscale
        start = math.log(alpha) if logscale else alpha
        self.alpha = nn.Parameter(torch.full((channels,), float(start)))

    def _param(self, p: torch.Tensor) -> torch.Tensor:
        p = p[None, :, None]
        return torch.exp(p) if self.logscale else p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self._param(self.alpha)
        # the published order of operations (BigVGAN activations.py), so a published checkpoint
        # gives its published output to the last bit, not within float rounding
        return x + (1.0 / (alpha + 1e-9)) * torch.sin(x * alpha) ** 2


class SnakeBeta(Snake):
    """x + sin²(αx)/β: Snake with the magnitude (β) learned apart from the frequency (α)."""

    def __init__(self, channels: int, alpha: float = 1.0, logscale: bool = False):
        super().__init__(channels, alpha, logscale)
        start = math.log(alpha) if logscale else alpha
        self.beta = nn.Parameter(torch.full((channels,), float(start)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self._param(self.alpha), self._param(self.beta)
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha) ** 2


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """BigVGAN's low-pass kernel (alias-free-torch): a Kaiser-windowed sinc summing to 1, with
    the Kaiser β from the usual attenuation estimate."""
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False, dtype=torch.float64)
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half, dtype=torch.float64) + 0.5
    else:
        time = torch.arange(kernel_size, dtype=torch.float64) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).float()


class KaiserUpsample(nn.Module):
    """BigVGAN's UpSample1d: replicate-pad, ratio × a depthwise transposed Kaiser sinc, trim.
    Output length is exactly ratio × input length."""

    def __init__(self, ratio: int = ANTI_ALIAS_RATIO, kernel_size: int = ANTI_ALIAS_KERNEL):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad, self.trim_left, self.trim_right = upsample_padding(ratio, kernel_size)
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size)
                             .view(1, 1, kernel_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1),
                                            stride=self.ratio, groups=channels)
        return x[..., self.trim_left:x.shape[-1] - self.trim_right]


class KaiserDownsample(nn.Module):
    """BigVGAN's DownSample1d: replicate-pad (k/2 − 1 left, k/2 right), depthwise Kaiser sinc
    with stride `ratio`. Output length is input length / ratio, rounded up (the pads add k − 1)."""

    def __init__(self, ratio: int = ANTI_ALIAS_RATIO, kernel_size: int = ANTI_ALIAS_KERNEL):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad_left, self.pad_right = downsample_padding(kernel_size)
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size)
                             .view(1, 1, kernel_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio,
                        groups=channels)


class AntiAliasedActivation(nn.Module):
    """BigVGAN's Activation1d: 2× up (Kaiser sinc), the activation, 2× down, so the harmonics a
    nonlinearity creates above the input Nyquist are filtered instead of folding back."""

    def __init__(self, act: nn.Module, ratio: int = ANTI_ALIAS_RATIO,
                 kernel_size: int = ANTI_ALIAS_KERNEL):
        super().__init__()
        self.up = KaiserUpsample(ratio, kernel_size)
        self.act = act
        self.down = KaiserDownsample(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))
