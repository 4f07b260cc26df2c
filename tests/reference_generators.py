"""Independent plain-torch references of the published vocoder generators, for tests/test_presets.py.

Written from the published model code, kept in its structure (module lists, forward loops), so a
preset built by convscope from configs/model/*.yaml can be compared with it: parameter count, conv
shapes, output shape and, with the reference's weights copied in, the output itself. Nothing here
imports convscope. Hyper-parameters are transcribed again from the published configs (not taken
from scripts/make_presets.py) so a slip in either transcription shows.

- HiFi-GAN: github.com/jik876/hifi-gan models.py (Generator, ResBlock1, ResBlock2), config_v*.json
- MelGAN: github.com/descriptinc/melgan-neurips mel2wav/modules.py (Generator, ResnetBlock)
- BigVGAN v2: github.com/NVIDIA/BigVGAN bigvgan.py (BigVGAN, AMPBlock1), activations.py
  (SnakeBeta), alias_free_activation/torch/{act,resample,filter}.py,
  configs/bigvgan_v2_24khz_100band_256x.json
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# The generator keys of the published config files.
HIFIGAN_CONFIGS = {
    "hifigan_v1": {"resblock": "1", "upsample_rates": [8, 8, 2, 2],
                   "upsample_kernel_sizes": [16, 16, 4, 4], "upsample_initial_channel": 512,
                   "resblock_kernel_sizes": [3, 7, 11],
                   "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
    "hifigan_v2": {"resblock": "1", "upsample_rates": [8, 8, 2, 2],
                   "upsample_kernel_sizes": [16, 16, 4, 4], "upsample_initial_channel": 128,
                   "resblock_kernel_sizes": [3, 7, 11],
                   "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
    "hifigan_v3": {"resblock": "2", "upsample_rates": [8, 8, 4],
                   "upsample_kernel_sizes": [16, 16, 8], "upsample_initial_channel": 256,
                   "resblock_kernel_sizes": [3, 5, 7],
                   "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]]},
}
BIGVGAN_V2_24K = {"num_mels": 100, "upsample_rates": [4, 4, 2, 2, 2, 2],
                  "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "upsample_initial_channel": 1536,
                  "resblock_kernel_sizes": [3, 7, 11],
                  "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                  "snake_logscale": True, "use_tanh_at_final": False, "use_bias_at_final": False}
# mel2wav/interface.py: Generator(80, 32, 3); the ratios are fixed inside Generator.
MELGAN_ARGS = {"input_size": 80, "ngf": 32, "n_residual_layers": 3}
LRELU_SLOPE = 0.1
# Each generator's mel frontend: (sr, n_fft, hop, win, n_mels, fmin, fmax), from the same config
# files (sampling_rate, n_fft, hop_size, win_size, num_mels, fmin, fmax) and, for MelGAN,
# Audio2Mel's defaults in mel2wav/modules.py. None: up to sr / 2.
HIFIGAN_FRONTEND = (22050, 1024, 256, 1024, 80, 0, 8000)
FRONTENDS = {
    "hifigan_v1": HIFIGAN_FRONTEND, "hifigan_v2": HIFIGAN_FRONTEND,
    "hifigan_v3": HIFIGAN_FRONTEND,
    "melgan": (22050, 1024, 256, 1024, 80, 0, None),
    "bigvgan_v2_24k": (24000, 1024, 256, 1024, 100, 0, None),
}


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return int((kernel_size * dilation - dilation) / 2)


def wn_conv(*args, **kwargs) -> nn.Module:
    return weight_norm(nn.Conv1d(*args, **kwargs))


def wn_conv_transpose(*args, **kwargs) -> nn.Module:
    return weight_norm(nn.ConvTranspose1d(*args, **kwargs))


# --- HiFi-GAN ---

class HifiResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList([wn_conv(channels, channels, kernel_size, 1, dilation=d,
                                             padding=get_padding(kernel_size, d))
                                     for d in dilation])
        self.convs2 = nn.ModuleList([wn_conv(channels, channels, kernel_size, 1, dilation=1,
                                             padding=get_padding(kernel_size, 1))
                                     for _ in dilation])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class HifiResBlock2(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs = nn.ModuleList([wn_conv(channels, channels, kernel_size, 1, dilation=d,
                                            padding=get_padding(kernel_size, d))
                                    for d in dilation])

    def forward(self, x):
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class HifiGanGenerator(nn.Module):
    def __init__(self, h: dict):
        super().__init__()
        c0 = h["upsample_initial_channel"]
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.conv_pre = wn_conv(80, c0, 7, 1, padding=3)
        self.ups = nn.ModuleList([
            wn_conv_transpose(c0 // 2 ** i, c0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))])
        resblock = HifiResBlock1 if h["resblock"] == "1" else HifiResBlock2
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(resblock(ch, k, d))
        self.conv_post = wn_conv(ch, 1, 7, 1, padding=3)

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        x = F.leaky_relu(x)  # torch's default slope (0.01), as published
        return torch.tanh(self.conv_post(x))


# --- MelGAN ---

class MelGanResnetBlock(nn.Module):
    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2), nn.ReflectionPad1d(dilation),
            wn_conv(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(0.2), wn_conv(dim, dim, kernel_size=1))
        self.shortcut = wn_conv(dim, dim, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class MelGanGenerator(nn.Module):
    def __init__(self, input_size: int, ngf: int, n_residual_layers: int):
        super().__init__()
        ratios = [8, 8, 2, 2]
        mult = 2 ** len(ratios)
        model = [nn.ReflectionPad1d(3), wn_conv(input_size, mult * ngf, kernel_size=7, padding=0)]
        for r in ratios:
            model += [nn.LeakyReLU(0.2),
                      wn_conv_transpose(mult * ngf, mult * ngf // 2, kernel_size=r * 2, stride=r,
                                        padding=r // 2 + r % 2, output_padding=r % 2)]
            model += [MelGanResnetBlock(mult * ngf // 2, dilation=3 ** j)
                      for j in range(n_residual_layers)]
            mult //= 2
        model += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3),
                  wn_conv(ngf, 1, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


# --- BigVGAN v2 ---

class SnakeBeta(nn.Module):
    """x + 1/β · sin²(αx), α and β stored as logarithms (initialised to 0) with logscale."""

    def __init__(self, channels: int, logscale: bool):
        super().__init__()
        self.logscale = logscale
        start = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(start.clone())
        self.beta = nn.Parameter(start.clone())

    def forward(self, x):
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + 1.0 / (beta + 1e-9) * torch.sin(x * alpha) ** 2


def kaiser_sinc(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """filter.py's kaiser_sinc_filter1d: a Kaiser-windowed sinc, normalised to sum 1."""
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half) + 0.5
    else:
        time = torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x):
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1),
                                            stride=self.ratio, groups=channels)
        return x[..., self.pad_left:-self.pad_right]


class LowPassFilter1d(nn.Module):
    """filter.py's LowPassFilter1d (replicate padding, stride `ratio`): its taps are a buffer
    named `filter`, so a checkpoint holds them as `...downsample.lowpass.filter`."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        even = kernel_size % 2 == 0
        self.pad_left, self.pad_right = kernel_size // 2 - int(even), kernel_size // 2
        self.register_buffer("filter", kaiser_sinc(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x):
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio,
                        groups=channels)


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = LowPassFilter1d(ratio, kernel_size)

    def forward(self, x):
        return self.lowpass(x)


class Activation1d(nn.Module):
    def __init__(self, activation: nn.Module):
        super().__init__()
        self.act = activation
        self.upsample = UpSample1d(2, 12)
        self.downsample = DownSample1d(2, 12)

    def forward(self, x):
        return self.downsample(self.act(self.upsample(x)))


class AMPBlock1(nn.Module):
    def __init__(self, h: dict, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList([wn_conv(channels, channels, kernel_size, stride=1,
                                             dilation=d, padding=get_padding(kernel_size, d))
                                     for d in dilation])
        self.convs2 = nn.ModuleList([wn_conv(channels, channels, kernel_size, stride=1,
                                             dilation=1, padding=get_padding(kernel_size, 1))
                                     for _ in dilation])
        self.activations = nn.ModuleList([
            Activation1d(SnakeBeta(channels, h["snake_logscale"]))
            for _ in range(2 * len(dilation))])

    def forward(self, x):
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2):
            x = c2(a2(c1(a1(x)))) + x
        return x


class BigVGANGenerator(nn.Module):
    def __init__(self, h: dict):
        super().__init__()
        c0 = h["upsample_initial_channel"]
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.conv_pre = wn_conv(h["num_mels"], c0, 7, 1, padding=3)
        self.ups = nn.ModuleList([
            nn.ModuleList([wn_conv_transpose(c0 // 2 ** i, c0 // 2 ** (i + 1), k, u,
                                             padding=(k - u) // 2)])
            for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"]))])
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(AMPBlock1(h, ch, k, d))
        self.activation_post = Activation1d(SnakeBeta(ch, h["snake_logscale"]))
        self.conv_post = wn_conv(ch, 1, 7, 1, padding=3, bias=h["use_bias_at_final"])
        self.use_tanh_at_final = h["use_tanh_at_final"]

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            for layer in up:
                x = layer(x)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh_at_final else torch.clamp(x, min=-1.0, max=1.0)


def reference(name: str) -> tuple[nn.Module, int]:
    """The published generator for a preset name, and its mel bands."""
    if name in HIFIGAN_CONFIGS:
        return HifiGanGenerator(HIFIGAN_CONFIGS[name]), 80
    if name == "melgan":
        return MelGanGenerator(**MELGAN_ARGS), MELGAN_ARGS["input_size"]
    if name == "bigvgan_v2_24k":
        return BigVGANGenerator(BIGVGAN_V2_24K), BIGVGAN_V2_24K["num_mels"]
    raise KeyError(name)


def final_conv(model: nn.Module) -> nn.Module:
    """The generator's last conv (conv_post), which feeds its output squashing."""
    return model.model[-2] if isinstance(model, MelGanGenerator) else model.conv_post


def randomise_(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Variance-keeping random weights, so the output depends on every layer: with torch's
    default init each conv shrinks the signal (about 1/sqrt(3) per layer) and a deep generator's
    output is mostly its last biases, which hides a wrong padding mode or slope in the middle.
    He-scaled conv weights (set through weight norm's right inverse), small biases, log-scale
    Snake parameters spread around 0 (each channel its own alpha and beta); then conv_post is
    scaled so that for `x` its output has std 0.5, leaving tanh / clamp mostly unsaturated."""
    generator = torch.Generator().manual_seed(seed)
    # He's gain 2 keeps the variance through a (leaky) ReLU; a Snake passes x on whole
    # (x + sin²(αx)/β), and a larger gain makes BigVGAN's activations grow into the thousands,
    # where sin(αx) turns float rounding into visible differences.
    gain = 1.0 if any(isinstance(m, SnakeBeta) for m in model.modules()) else 2.0

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                weight = module.weight
                if isinstance(module, nn.ConvTranspose1d):  # taps per output sample: k / stride
                    fan_in = weight.shape[0] * weight.shape[2] / module.stride[0]
                else:
                    fan_in = weight.shape[1] * weight.shape[2]
                module.weight = normal(weight.shape, math.sqrt(gain / fan_in))
                if module.bias is not None:
                    module.bias.copy_(normal(module.bias.shape, 0.01))
            elif isinstance(module, SnakeBeta):
                module.alpha.copy_(normal(module.alpha.shape, 0.5))
                module.beta.copy_(normal(module.beta.shape, 0.5))
        last = final_conv(model)
        seen = []
        hook = last.register_forward_hook(lambda _m, _i, out: seen.append(out))
        model(x)
        hook.remove()
        gain = 0.5 / seen[0].std()
        last.weight = last.weight * gain
        if last.bias is not None:
            last.bias.mul_(gain)
    return model
