"""Keep torch off the oneDNN kernels that crash or hang on transposed convolutions.

torch 2.x sends a float32 ConvTranspose1d on the CPU to oneDNN (mkldnn) when it has more than
one input channel or more than 20480 input elements. With a stride far above the kernel span
(k_eff = d(k-1)+1) that kernel allocates several times the output and, from about stride 400 on
16000 samples with 2 input channels, segfaults (measured with torch 2.13: 16000 x 5 x 700 crashes
in 1 run of 3 at 1 thread and 3 of 3 at 2 threads; the native col2im kernel never did, is
bit-identical to an exact scatter of the kernel copies, and was faster: 0.13 s vs a crash, 0.04 s
vs 1.3 s at stride 50). A stack holding such a layer runs with oneDNN off for its forward.

Strided transposed convs whose kernel covers the stride hang instead (issue 24): oneDNN 3.12's
strided brgemm deconvolution (`brg_deconv+brgconv_strided`) took 0.2 s to beyond 60 s on its
first call, ignoring SIGTERM, where the native kernel took 0.01-0.7 s. See
`native_transposed_convs` for the measurement and the rule.
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
    only small convs (native is faster); else off around each strided transposed conv's call
    (it can hang: native_transposed_convs), the other layers keeping oneDNN."""
    if needs_native_kernels(stack) or only_small_convs(stack):
        with native_kernels():
            yield
        return
    with native_transposed_convs(stack):
        yield


def hangs_on_onednn(module: nn.Module) -> bool:
    """A ConvTranspose1d with a stride: the shape class routed to the native kernel."""
    return isinstance(module, nn.ConvTranspose1d) and module.stride[0] > 1


@contextmanager
def native_transposed_convs(stack: nn.Module) -> Iterator[None]:
    """oneDNN off during each call of a strided ConvTranspose1d in `stack` (forward hooks), on
    for everything else (its Conv1d layers, where oneDNN is up to 2x faster: a HiFi-GAN-like
    stack of 512 channels on 200 frames, first call, ran 1.3-1.6 s with oneDNN, 1.8-3.5 s
    without, 1.1-1.3 s routed per layer).

    Measured with torch 2.13 (oneDNN 3.12), 2 threads on this 2-core machine (shared: load 5-7,
    so times are noisy), the first call of one ConvTranspose1d in a fresh process ended after
    4 s, over 110 shapes: 1 to 64 channels, kernels s to 4s, strides 2 to 400, 1,000 to
    160,000 input samples. oneDNN passed 4 s in 29 of them, at every stride tried (stride 2:
    1 channel, k=4 on 160,000 samples; 4 -> 4 channels, k=256, stride 64 on 8,000 samples) and
    was slower than native in 102; it was faster in 7, by at most 0.03 s. Native took at most
    1.05 s (the issue's 4 -> 4, k=800, stride 400 on 41,600 samples, which oneDNN never
    finished). The hang is not monotonic in any one of kernel, stride, channels or length
    (4 -> 4 on 8,000 samples, stride 32: k=96 0.06 s, k=64 3.95 s), and a built kernel is no faster than native
    on later calls (512 -> 256, k=16, stride 8 on 200 frames: 80 vs 56 ms; 16 -> 16, k=64,
    stride 32 on 4,000: first call 11.7 s, then 0.19 vs 0.10 s), so every strided transposed
    conv is routed, not a band of shapes. Stride 1 keeps oneDNN: 5 shapes (1 to 64 channels,
    k=3 and 7, 4,000 to 160,000 samples) took 0.08-0.15 s, native 0.03-0.15 s, none hung.
    The grid: scripts/bench_onednn_transposed.py."""
    layers = [module for module in stack.modules() if hangs_on_onednn(module)]
    if not layers:
        yield
        return
    states: list[bool] = []

    def before(module, args):
        states.append(torch.backends.mkldnn.enabled)
        torch.backends.mkldnn.enabled = False

    def after(module, args, output):
        torch.backends.mkldnn.enabled = states.pop()

    original = torch.backends.mkldnn.enabled
    handles = []
    try:
        for module in layers:
            handles += [module.register_forward_pre_hook(before),
                        module.register_forward_hook(after)]
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.mkldnn.enabled = original  # a forward that raised skipped `after`


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
