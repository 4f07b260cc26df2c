"""Resampling family, streamed: Upsample (nearest, nearest-exact, linear; integer scale) and
BigVGAN's Kaiser up- and downsamplers (replicate padding: clamped indices).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convscope.stack.layers.block_rule import LayerRule, Range, reads
from convscope.stack.layers.convolution import kaiser_downsample_module
from convscope.stack.layers.transposed import kaiser_upsample_module


class UpsampleRule(LayerRule):
    """Integer scale s. nearest(-exact): output j copies input j // s. linear (torch's
    align_corners=False): j reads source (j + 0.5)/s - 0.5, clamped to the signal, and its
    right-hand neighbour."""

    @property
    def scale(self) -> int:
        return self.plan.kwargs["scale_factor"]

    def needed_input(self, out: Range) -> Range:
        a, b = out
        if b <= a:
            return (0, 0)
        if self.plan.kwargs["mode"] != "linear":
            return (a // self.scale, (b - 1) // self.scale + 1)
        left, right, _ = self._source(torch.tensor([a, b - 1]))  # monotone in j
        return (int(left[0]), int(right[1]) + 1)

    def _source(self, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left and right input index and the right one's weight, computed as torch does:
        in float32 from the float scale 1/s (which loses precision past ~2**24 samples)."""
        source = ((j.float() + 0.5) * (1.0 / self.scale) - 0.5).clamp(min=0)
        left = source.long()
        right = (left + 1).clamp(max=self.input_length - 1)
        return left, right, (source - left.float()).clamp(0, 1)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        a, b = out
        j = torch.arange(a, b, device=x.device)
        if self.plan.kwargs["mode"] != "linear":
            return x.index_select(-1, j // self.scale - x_start)
        left, right, weight = self._source(j)
        weight = weight.to(x.dtype)
        return (x.index_select(-1, left - x_start) * (1 - weight)
                + x.index_select(-1, right - x_start) * weight)


def _clamped(x: torch.Tensor, x_start: int, lo: int, hi: int, length: int) -> torch.Tensor:
    """Input samples [lo, hi) with replicate padding: indices past either edge repeat the edge."""
    where = torch.arange(lo, hi, device=x.device).clamp(0, length - 1) - x_start
    return x.index_select(-1, where)


def _clamp_range(lo: int, hi: int, length: int) -> Range:
    """The real samples that replicate-padded indices [lo, hi) read."""
    if hi <= lo:
        return (0, 0)
    return (min(max(lo, 0), length - 1), min(max(hi - 1, 0), length - 1) + 1)


class KaiserUpsampleRule(LayerRule):
    """BigVGAN's UpSample1d as a transposed conv over the replicate-extended input: extended
    sample i (from -pad to L + pad) adds filter tap t into output j = i*r + t - P, where
    P = trim_left - pad*r is what the trim removes beyond the padding's own outputs."""

    def _source(self, out: Range) -> Range:
        """The extended-input span outputs [a, b) read: the family's relation
        (transposed.kaiser_upsample_module), within the replicate padding."""
        m = self.module
        lo, hi = reads(kaiser_upsample_module(m), out)
        return max(lo, -m.pad), min(hi, self.input_length + m.pad)

    def needed_input(self, out: Range) -> Range:
        return (0, 0) if out[1] <= out[0] else _clamp_range(*self._source(out), self.input_length)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        m, (a, b) = self.module, out
        if b <= a:
            return x.new_zeros((*x.shape[:-1], 0))
        lo, hi = self._source(out)
        extended = _clamped(x, x_start, lo, hi, self.input_length)
        channels = x.shape[1]
        y = m.ratio * F.conv_transpose1d(extended, m.filter.expand(channels, -1, -1),
                                         stride=m.ratio, groups=channels)
        first = lo * m.ratio - (m.trim_left - m.pad * m.ratio)  # output index of y[..., 0]
        return y[..., a - first: b - first]


class KaiserDownsampleRule(LayerRule):
    """BigVGAN's DownSample1d: output j reads replicate-padded input j*r - pad_left + t."""

    def _source(self, out: Range) -> Range:
        return reads(kaiser_downsample_module(self.module), out)

    def needed_input(self, out: Range) -> Range:
        return (0, 0) if out[1] <= out[0] else _clamp_range(*self._source(out), self.input_length)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        m = self.module
        if out[1] <= out[0]:
            return x.new_zeros((*x.shape[:-1], 0))
        padded = _clamped(x, x_start, *self._source(out), self.input_length)
        channels = x.shape[1]
        return F.conv1d(padded, m.filter.expand(channels, -1, -1), stride=m.ratio,
                        groups=channels)


BLOCK_RULES = {"Upsample": UpsampleRule, "KaiserUpsample": KaiserUpsampleRule,
               "KaiserDownsample": KaiserDownsampleRule}
