"""A small HiFi-GAN-shaped generator written the way people write their own: a custom forward
with F.leaky_relu and residual adds, not a config stack. convscope runs it with

    python scripts/run.py model=module model.target=examples/tiny_vocoder.py:TinyVocoder ...

(model.target imports and runs this file: it is your code, with your permissions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """Two dilated convolutions, each added back onto its input (HiFi-GAN's ResBlock2)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilations=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2)
            for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, 0.1))
        return x


class TinyVocoder(nn.Module):
    """(1, n_mels, T) frames -> (1, 1, T x prod(rates)) samples."""

    def __init__(self, n_mels: int = 80, channels: int = 64, rates=(8, 8, 4), kernels=(16, 16, 8)):
        super().__init__()
        self.pre = nn.Conv1d(n_mels, channels, 7, padding=3)
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        for i, (u, k) in enumerate(zip(rates, kernels)):
            c_in, c_out = channels // 2 ** i, channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, k, stride=u, padding=(k - u) // 2))
            self.blocks.append(ResBlock(c_out))
        self.post = nn.Conv1d(channels // 2 ** len(rates), 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        for up, block in zip(self.ups, self.blocks):
            x = block(up(F.leaky_relu(x, 0.1)))
        return torch.tanh(self.post(F.leaky_relu(x)))
