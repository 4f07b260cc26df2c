"""Exact lengths of BigVGAN's Kaiser-sinc resamplers (stack.blocks.KaiserUpsample /
KaiserDownsample), as pure integer arithmetic with the numbers spelled out.

The planner uses these before anything is built, and describe() uses them on built modules, so
the padding and trimming that BigVGAN's UpSample1d / DownSample1d apply are written down once,
here, and read by blocks.py too.
"""

from __future__ import annotations

# BigVGAN's Activation1d: 2x up, activation, 2x down, with a 12-tap Kaiser sinc filter.
ANTI_ALIAS_RATIO = 2
ANTI_ALIAS_KERNEL = 12


def upsample_padding(ratio: int, kernel_size: int) -> tuple[int, int, int]:
    """(replicate pad each side, trim left, trim right) of UpSample1d."""
    pad = kernel_size // ratio - 1
    return (pad, pad * ratio + (kernel_size - ratio) // 2,
            pad * ratio + (kernel_size - ratio + 1) // 2)


def downsample_padding(kernel_size: int) -> tuple[int, int]:
    """(replicate pad left, right) of DownSample1d: k/2 - 1 and k/2 for an even kernel."""
    even = kernel_size % 2 == 0
    return kernel_size // 2 - int(even), kernel_size // 2


def kaiser_upsample_length(length: int, ratio: int, kernel_size: int) -> int:
    """Pad both sides, transposed conv (stride ratio), trim: ratio * L_in for a sane filter."""
    pad, left, right = upsample_padding(ratio, kernel_size)
    return max((length + 2 * pad - 1) * ratio + kernel_size - left - right, 0)


def kaiser_upsample_formula(length: int, ratio: int, kernel_size: int) -> str:
    pad, left, right = upsample_padding(ratio, kernel_size)
    out = kaiser_upsample_length(length, ratio, kernel_size)
    return (f"L_out = ({length} + 2*{pad} - 1)*{ratio} + {kernel_size} - {left} - {right} = {out}"
            " (replicate pad, transposed Kaiser sinc, trim)")


def kaiser_downsample_length(length: int, ratio: int, kernel_size: int) -> int:
    """Pad, then a strided conv: floor((L_in + pads - k) / ratio) + 1 = ceil(L_in / ratio)."""
    left, right = downsample_padding(kernel_size)
    return (length + left + right - kernel_size) // ratio + 1


def kaiser_downsample_formula(length: int, ratio: int, kernel_size: int) -> str:
    left, right = downsample_padding(kernel_size)
    out = kaiser_downsample_length(length, ratio, kernel_size)
    return (f"L_out = floor(({length} + {left} + {right} - {kernel_size}) / {ratio}) + 1 = {out}"
            " (replicate pad, strided Kaiser sinc)")
