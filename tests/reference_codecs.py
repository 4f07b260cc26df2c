"""Independent plain-torch references of two published codec decoders, for the analysis tests
(tests/test_analysis_published.py), written in the structure of the published code (module
lists, the forward's own padding and cropping arithmetic), as tests/reference_generators.py is
for the vocoders. Nothing here imports convscope.

- DAC: github.com/descriptinc/descript-audio-codec dac/model/dac.py (Decoder, DecoderBlock,
  ResidualUnit with its crop `x[..., pad:-pad]`) and dac/nn/layers.py (Snake1d through a
  TorchScript `snake`, weight-normed convs), DAC 1.0: rates 8, 8, 4, 2, decoder_dim 1536.
- EnCodec: github.com/facebookresearch/encodec encodec/modules/seanet.py (SEANetDecoder,
  SEANetResnetBlock), conv.py (SConv1d's reflect padding with its extra right padding,
  SConvTranspose1d's trim), lstm.py (SLSTM: time first, skip add).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# --- DAC ---


@torch.jit.script
def snake(x, alpha):
    """Scripted as DAC scripts it: the forward the tracer cannot see into."""
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    x = x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)
    return x.reshape(shape)


class Snake1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x):
        return snake(x, self.alpha)


class DacResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        pad = ((7 - 1) * dilation) // 2
        self.block = nn.Sequential(
            Snake1d(dim), weight_norm(nn.Conv1d(dim, dim, 7, dilation=dilation, padding=pad)),
            Snake1d(dim), weight_norm(nn.Conv1d(dim, dim, 1)))

    def forward(self, x):
        y = self.block(x)
        pad = (x.shape[-1] - y.shape[-1]) // 2
        if pad > 0:
            x = x[..., pad:-pad]
        return x + y


class DacDecoderBlock(nn.Module):
    def __init__(self, input_dim: int, output_dim: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(input_dim),
            weight_norm(nn.ConvTranspose1d(input_dim, output_dim, 2 * stride, stride=stride,
                                           padding=math.ceil(stride / 2))),
            DacResidualUnit(output_dim, 1), DacResidualUnit(output_dim, 3),
            DacResidualUnit(output_dim, 9))

    def forward(self, x):
        return self.block(x)


class DacDecoder(nn.Module):
    def __init__(self, input_channel: int, channels: int, rates=(8, 8, 4, 2), d_out: int = 1):
        super().__init__()
        layers = [weight_norm(nn.Conv1d(input_channel, channels, 7, padding=3))]
        for i, stride in enumerate(rates):
            layers += [DacDecoderBlock(channels // 2 ** i, channels // 2 ** (i + 1), stride)]
        output_dim = channels // 2 ** len(rates)
        layers += [Snake1d(output_dim), weight_norm(nn.Conv1d(output_dim, d_out, 7, padding=3)),
                   nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


# --- EnCodec SEANet ---

def pad1d(x, paddings, mode="zero", value=0.0):
    """conv.py's pad1d: reflect padding of an input shorter than the padding pads zeros first."""
    length = x.shape[-1]
    left, right = paddings
    if mode == "reflect":
        max_pad = max(left, right)
        extra = max_pad - length + 1 if length <= max_pad else 0
        x = F.pad(x, (0, extra))
        padded = F.pad(x, paddings, mode, value)
        return padded[..., :padded.shape[-1] - extra]
    return F.pad(x, paddings, mode, value)


def unpad1d(x, paddings):
    left, right = paddings
    return x[..., left:x.shape[-1] - right]


class NormConv1d(nn.Module):
    """A weight-normed conv followed by its (identity) norm module, as EnCodec's NormConv1d."""

    def __init__(self, *args, transposed: bool = False, **kwargs):
        super().__init__()
        cls = nn.ConvTranspose1d if transposed else nn.Conv1d
        self.conv = torch.nn.utils.weight_norm(cls(*args, **kwargs))
        self.norm = nn.Identity()

    def forward(self, x):
        return self.norm(self.conv(x))


class SConv1d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1,
                 pad_mode="reflect"):
        super().__init__()
        self.conv = NormConv1d(in_channels, out_channels, kernel_size, stride,
                               dilation=dilation)
        self.pad_mode = pad_mode

    def forward(self, x):
        conv = self.conv.conv
        kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        stride = conv.stride[0]
        padding_total = kernel - stride
        frames = (x.shape[-1] - kernel + padding_total) / stride + 1
        extra = (math.ceil(frames) - 1) * stride + (kernel - padding_total) - x.shape[-1]
        right = padding_total // 2
        x = pad1d(x, (padding_total - right, right + extra), mode=self.pad_mode)
        return self.conv(x)


class SConvTranspose1d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1):
        super().__init__()
        self.convtr = NormConv1d(in_channels, out_channels, kernel_size, stride, transposed=True)

    def forward(self, x):
        conv = self.convtr.conv
        padding_total = conv.kernel_size[0] - conv.stride[0]
        right = padding_total // 2
        return unpad1d(self.convtr(x), (padding_total - right, right))


class SLSTM(nn.Module):
    def __init__(self, dimension: int, num_layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x):
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        return (y + x).permute(1, 2, 0)


class SEANetResnetBlock(nn.Module):
    def __init__(self, dim: int, kernel_sizes=(3, 1), dilations=(1, 1), compress: int = 2):
        super().__init__()
        hidden = dim // compress
        block = []
        for i, (kernel, dilation) in enumerate(zip(kernel_sizes, dilations)):
            in_chs = dim if i == 0 else hidden
            out_chs = dim if i == len(kernel_sizes) - 1 else hidden
            block += [nn.ELU(alpha=1.0), SConv1d(in_chs, out_chs, kernel, dilation=dilation)]
        self.block = nn.Sequential(*block)
        self.shortcut = SConv1d(dim, dim, 1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class SEANetDecoder(nn.Module):
    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32,
                 n_residual_layers: int = 1, ratios=(8, 5, 4, 2), lstm: int = 2):
        super().__init__()
        mult = 2 ** len(ratios)
        model = [SConv1d(dimension, mult * n_filters, 7)]
        if lstm:
            model += [SLSTM(mult * n_filters, num_layers=lstm)]
        for ratio in ratios:
            model += [nn.ELU(alpha=1.0),
                      SConvTranspose1d(mult * n_filters, mult * n_filters // 2, ratio * 2, ratio)]
            model += [SEANetResnetBlock(mult * n_filters // 2, dilations=(2 ** j, 1))
                      for j in range(n_residual_layers)]
            mult //= 2
        model += [nn.ELU(alpha=1.0), SConv1d(n_filters, channels, 7)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)
