"""A HiFi-GAN generator written in the published structure (jik876/hifi-gan models.py: Generator,
ResBlock1, ResBlock2, built from a config object `h`), with torch's current weight norm, for
docs/checkpoints.md: published checkpoints (old weight_g/weight_v keys or current ones) load into
it strictly, and `model=module model.target=examples/hifigan_generator.py:Generator
model.config_json=config_v2.json` runs it. Our own code, not a copy of the published file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def conv(channels: int, kernel_size: int, dilation: int) -> nn.Module:
    return weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation,
                                 padding=get_padding(kernel_size, dilation)))


class ResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList([conv(channels, kernel_size, d) for d in dilation])
        self.convs2 = nn.ModuleList([conv(channels, kernel_size, 1) for _ in dilation])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE)) + x
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs = nn.ModuleList([conv(channels, kernel_size, d) for d in dilation])

    def forward(self, x):
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class Generator(nn.Module):
    """Generator(h): h.upsample_rates, h.upsample_kernel_sizes, h.upsample_initial_channel,
    h.resblock ("1" or "2"), h.resblock_kernel_sizes, h.resblock_dilation_sizes."""

    def __init__(self, h):
        super().__init__()
        c0 = h.upsample_initial_channel
        self.num_kernels = len(h.resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(80, c0, 7, 1, padding=3))
        self.ups = nn.ModuleList([
            weight_norm(nn.ConvTranspose1d(c0 // 2 ** i, c0 // 2 ** (i + 1), k, u,
                                           padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(h.upsample_rates, h.upsample_kernel_sizes))])
        block = ResBlock1 if h.resblock == "1" else ResBlock2
        self.resblocks = nn.ModuleList([
            block(c0 // 2 ** (i + 1), k, d) for i in range(len(self.ups))
            for k, d in zip(h.resblock_kernel_sizes, h.resblock_dilation_sizes)])
        self.conv_post = weight_norm(nn.Conv1d(c0 // 2 ** len(self.ups), 1, 7, 1, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
