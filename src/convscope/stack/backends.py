"""Keep torch off the CPU kernel that crashes on large-stride transposed convolutions.

torch 2.x sends a float32 ConvTranspose1d on the CPU to oneDNN (mkldnn) when it has more than
one input channel or more than 20480 input elements. With a stride far above the kernel span
(k_eff = d(k-1)+1) that kernel allocates several times the output and, from about stride 400 on
16000 samples with 2 input channels, segfaults (measured with torch 2.13: 16000 x 5 x 700 crashes
in 1 run of 3 at 1 thread and 3 of 3 at 2 threads; the native col2im kernel never did, is
bit-identical to an exact scatter of the kernel copies, and was faster: 0.13 s vs a crash, 0.04 s
vs 1.3 s at stride 50). A stack holding such a layer runs with oneDNN off for its forward.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def gapped_transposed_conv(module: nn.Module) -> bool:
    """A ConvTranspose1d whose stride exceeds its kernel span: its kernel copies do not touch,
    the shape class oneDNN mishandles."""
    if not isinstance(module, nn.ConvTranspose1d):
        return False
    (stride,), (kernel,), (dilation,) = module.stride, module.kernel_size, module.dilation
    return stride > 1 and stride > dilation * (kernel - 1) + 1


def needs_native_kernels(stack: nn.Module) -> bool:
    return any(gapped_transposed_conv(module) for module in stack.modules())


# A convolution with at most this many weights (C_out * C_in/groups * k) per output sample ran
# 1.5-3x faster on torch's native kernel than on oneDNN, whose per-call set-up dominates (1-s
# blocks of the reference stack, 1 thread), and a first call on a new shape costs oneDNN a
# kernel build (the reference example's one-shot forward: 145 ms vs 2.7 ms native); from ~100
# weights on oneDNN wins (2-7x at 32-128 channels), so a stack is run natively only when every
# conv in it is that small, one-shot or streamed.
SMALL_CONV_WEIGHTS = 64


def only_small_convs(stack: nn.Module) -> bool:
    convs = [m for m in stack.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    return bool(convs) and all(m.weight.numel() <= SMALL_CONV_WEIGHTS for m in convs)


@contextmanager
def safe_kernels(stack: nn.Module) -> Iterator[None]:
    """oneDNN off while `stack` runs, when it holds a gapped transposed conv (it can crash) or
    only small convs (native is faster); else nothing."""
    if not (needs_native_kernels(stack) or only_small_convs(stack)):
        yield
        return
    with native_kernels():
        yield


@contextmanager
def native_kernels() -> Iterator[None]:
    """oneDNN off inside the block, whatever the stack.

    oneDNN builds (JIT-compiles) a kernel for every new input shape and caches it by shape: a
    corpus, whose files each have their own length, pays that per file. Measured (torch 2.x, 1
    thread, 5 lengths near 100,000 samples): ConvTranspose1d(2, 3, 5, stride 2) 403 ms a call
    with oneDNN vs 3.8 ms native; (8, 8, 8, 4) on 20,000: 25 vs 6 ms; (64, 32, 8, 4) on 3,000:
    10.5 vs 6.3 ms; (512, 256, 16, 8) on 100 frames: 16 vs 15 ms. The native kernels are never
    slower there and never crash (see safe_kernels)."""
    with warnings.catch_warnings():  # torch warns about TF32 on Intel GPUs when flags change
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield
