"""Interpolating initialisers: kernels that make a conv layer's output real upsampled audio.

Geometry, shared by every initialiser. A ConvTranspose1d with stride s and padding p adds
`w[j] * x[i]` to output sample `i*s + j - p`, so tap j lands at *offset* `t = j - p` (in output
samples) from the position of the input sample that feeds it. Output sample n sits at time n/s
input samples, the same grid soxr/librosa use, so a kernel `w[j] = h(j - p)` built from an
interpolator h(t) is never delayed, whatever p is, as long as h's nonzero taps fit in the
kernel: `-p <= first` and `last <= kernel_size-1-p`. That is the check `check_init` makes.

    nearest   h(t) = 1 for 0 <= t < s                 torch's Upsample(mode="nearest")
              needs kernel_size >= padding + s; exact: k=s, p=0
    linear    h(t) = 1 - |t|/s for |t| < s             straight lines between samples
              needs padding >= s-1 and kernel_size >= padding + s; exact: k=2s-1, p=s-1,
              output_padding=s-1 (length L*s)
    sinc      h(t) = c*sinc(c*t/s) * window(t), |t| <= (k-1)/2, c = sinc_cutoff
              a windowed-sinc low-pass at c times the input Nyquist; uses every tap, so it
              needs an odd kernel_size and padding=(kernel_size-1)/2 (output_padding=s-1 for
              length L*s). With c=1, h(0)=1 and h(m*s)=0: input samples pass through exactly.
    identity  h(0) = 1 (stride 1 only)                 needs padding <= kernel_size-1
    box       every tap s/kernel_size (1/kernel_size for Conv1d): equal taps, no alignment
              requirement; shows whether the kernel's overlap is even (the checkerboard test)

Conv1d (a correlation: tap j reads input offset j - p) takes identity and box. Every input
channel of a group gets h divided by the group's input-channel count, so each output channel is
the average of its inputs, interpolated; biases are zeroed. Dilation must be 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.errors import ConvscopeError

INITS = ("default", "linear", "nearest", "sinc", "identity", "box")
TRANSPOSED_ONLY = ("linear", "nearest", "sinc")
SINC_WINDOWS = ("kaiser", "hann", "blackman", "rect")
SINC_PARAMS = ("sinc_window", "sinc_beta", "sinc_cutoff")
MAX_KAISER_BETA = 50.0  # beyond this the window is a spike and the kernel stops being a sinc


@dataclass(frozen=True)
class InitSpec:
    """How to initialise one conv layer; `default` keeps torch's seeded random weights."""

    name: str = "default"
    sinc_window: str = "kaiser"
    sinc_beta: float = 8.6  # Kaiser beta; 8.6 is close to a Blackman window
    sinc_cutoff: float = 1.0  # fraction of the input Nyquist

    @property
    def is_default(self) -> bool:
        return self.name == "default"


DEFAULT_INIT = InitSpec()


def init_spec(key: str, name: Optional[str], window: Optional[str], beta: Optional[float],
              cutoff: Optional[float]) -> InitSpec:
    """Validate the init keys of one layer config (`key` is e.g. model.layers.1)."""
    name = "default" if name is None else name
    if name not in INITS:
        raise ConvscopeError(f"{key}.init: {name!r} is not an initialiser; choose one of "
                             f"{', '.join(INITS)}")
    given = {"sinc_window": window, "sinc_beta": beta, "sinc_cutoff": cutoff}
    if name != "sinc":
        for param, value in given.items():
            if value is not None:
                raise ConvscopeError(f"{key}.{param}: only init=sinc uses it (init is {name!r}, "
                                     f"{param}={value!r})")
        return InitSpec(name)
    spec = InitSpec(name, *(DEFAULT_INIT.__dict__[p] if v is None else v
                            for p, v in given.items()))
    if spec.sinc_window not in SINC_WINDOWS:
        raise ConvscopeError(f"{key}.sinc_window: {spec.sinc_window!r} is not one of "
                             f"{', '.join(SINC_WINDOWS)}")
    if not 0 <= spec.sinc_beta <= MAX_KAISER_BETA:
        raise ConvscopeError(f"{key}.sinc_beta must be in [0, {MAX_KAISER_BETA:g}], got "
                             f"{spec.sinc_beta}")
    if not 0 < spec.sinc_cutoff <= 1:
        raise ConvscopeError(f"{key}.sinc_cutoff must be in (0, 1] (a fraction of the input "
                             f"Nyquist), got {spec.sinc_cutoff}")
    return spec


def check_init(key: str, spec: InitSpec, layer_type: str, kw: dict, p: int) -> None:
    """Reject an init the layer's geometry can't hold without truncating or delaying it.
    `p`: the layer's left padding in samples (LayerPlan.left_padding)."""
    if spec.is_default:
        return
    k, s = kw["kernel_size"], kw["stride"]
    where = f"{key}.init: {spec.name!r} on {layer_type}(kernel_size={k}, stride={s}, padding={p})"
    if layer_type != "ConvTranspose1d" and spec.name in TRANSPOSED_ONLY:
        raise ConvscopeError(f"{where}: {spec.name} interpolates by the stride, so it needs a "
                             f"ConvTranspose1d")
    if kw["dilation"] != 1:
        raise ConvscopeError(f"{where}: interpolating inits need dilation=1, got "
                             f"{kw['dilation']}")
    if spec.name == "identity" and s != 1:
        raise ConvscopeError(f"{where}: identity passes samples through, so it needs stride=1")
    if spec.name == "sinc" and (k % 2 == 0 or p != (k - 1) // 2):
        raise ConvscopeError(f"{where}: sinc uses every tap centred on the input sample, so it "
                             f"needs an odd kernel_size and padding=(kernel_size-1)/2 "
                             f"(e.g. kernel_size={k | 1}, padding={(k | 1) // 2})")
    if spec.name == "box":
        return
    first, last = support(spec.name, s, k)
    if -p > first or last > k - 1 - p:
        raise ConvscopeError(
            f"{where}: its taps sit at offsets {first}..{last} from each input sample but this "
            f"kernel covers {-p}..{k - 1 - p} (tap j is at offset j - padding); "
            f"{_suggestion(spec.name, s)}")


def support(name: str, stride: int, kernel_size: int) -> tuple[int, int]:
    """First and last offset (output samples) where the interpolator h(t) is nonzero."""
    if name == "nearest":
        return 0, stride - 1
    if name == "linear":
        return -(stride - 1), stride - 1
    if name == "sinc":
        return -(kernel_size - 1) // 2, (kernel_size - 1) // 2
    if name == "identity":
        return 0, 0
    raise ValueError(f"{name} has no fixed support")


def _suggestion(name: str, s: int) -> str:
    if name == "nearest":
        return f"use kernel_size={s}, padding=0"
    if name == "linear":
        return f"use kernel_size={2 * s - 1}, padding={s - 1}, output_padding={s - 1}"
    return "use padding=(kernel_size-1)/2"


def interpolator(spec: InitSpec, stride: int, kernel_size: int, padding: int,
                 transposed: bool = True) -> np.ndarray:
    """The kernel `w[j] = h(j - padding)`, j = 0..kernel_size-1, in float64."""
    t = np.arange(kernel_size) - padding
    s = stride
    if spec.name == "nearest":
        return ((t >= 0) & (t < s)).astype(float)
    if spec.name == "linear":
        return np.clip(1 - np.abs(t) / s, 0, None)
    if spec.name == "identity":
        return (t == 0).astype(float)
    if spec.name == "box":
        return np.full(kernel_size, (s if transposed else 1) / kernel_size)
    if spec.name == "sinc":
        c = spec.sinc_cutoff
        return c * np.sinc(c * t / s) * sinc_window(spec, kernel_size)
    raise ValueError(f"no kernel for init {spec.name!r}")


def sinc_window(spec: InitSpec, length: int) -> np.ndarray:
    if spec.sinc_window == "kaiser":
        return np.kaiser(length, spec.sinc_beta)
    if spec.sinc_window == "rect":
        return np.ones(length)
    # Symmetric windows whose end points are zero would waste the outer taps; numpy's are
    # symmetric and nonzero inside, which is what a centred kernel needs.
    return {"hann": np.hanning, "blackman": np.blackman}[spec.sinc_window](length + 2)[1:-1]


def apply_init(module: nn.Module, spec: InitSpec, p: int) -> None:
    """Overwrite a conv module's weights with the interpolator and zero its bias.
    `p`: the layer's left padding in samples (LayerPlan.left_padding)."""
    if spec.is_default:
        return
    transposed = isinstance(module, nn.ConvTranspose1d)
    k, s = module.kernel_size[0], module.stride[0]
    kernel = interpolator(spec, s, k, p, transposed)
    # Weight layouts: ConvTranspose1d (in, out/groups, k); Conv1d (out, in/groups, k).
    inputs_per_output = module.in_channels // module.groups
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(kernel / inputs_per_output,
                                            dtype=module.weight.dtype).expand_as(module.weight))
        if module.bias is not None:
            module.bias.zero_()
