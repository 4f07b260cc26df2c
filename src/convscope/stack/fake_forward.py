"""A forward of any nn.Module at any input size without its memory: fake tensors (shapes and
dtypes, no storage) run the model's own ops, and a dispatch mode counts what they would allocate.

Each op's outputs are new storage unless they alias one already counted (views, in-place ops);
a storage is freed when the last tensor on it dies, which the Python refcount tells exactly as
it would in the real forward (no_grad: autograd keeps nothing). The peak is the largest live
total after any op, plus that op's transient workspace: torch's CPU convolution unfolds its
input into columns (im2col: C_in·k per output sample; col2im for a transposed conv: C_out·k
per input sample), a buffer the op frees before it returns. A pointwise conv (k = 1) is a plain
matrix product and needs none. MACs are torch's own FLOP formulas (FlopCounterMode's
registry), halved.

Cost: one pass over the model's ops at a few tens of microseconds each, whatever the length.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from convscope.stack.hooks import hooks_suspended
from convscope.stack.layers.flow import tensors_in


@dataclass(frozen=True)
class FakeForward:
    peak_bytes: int  # what the forward allocates at its peak (its output included)
    macs: int
    output_shape: tuple[int, ...]


class _LiveBytes(TorchDispatchMode):
    """Bytes of the storages the ops made that some tensor still holds, and their peak."""

    def __init__(self, count_macs: bool = True) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.holders: dict[int, list[int]] = {}  # storage key -> [tensors holding it, bytes]
        # torch's own FLOP formulas (FlopCounterMode's registry), applied op by op: the same
        # count without FlopCounterMode's module tracking, which costs more than the ops here
        self.flops = 0 if count_macs else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.flops is not None and (counter := _flop_rule(func)) is not None:
            self.flops += counter(*args, **kwargs, out_val=out)
        for tensor in tensors_in(out):
            storage = tensor.untyped_storage()
            key = storage._cdata  # the StorageImpl's address: one per storage while it lives
            if key not in self.holders:
                self.holders[key] = [0, storage.nbytes()]
                self.live += storage.nbytes()
            self.holders[key][0] += 1
            weakref.finalize(tensor, self._release, key)
        self.peak = max(self.peak, self.live + workspace_bytes(func, args, out))
        return out

    def _release(self, key: int) -> None:
        holders = self.holders[key]
        holders[0] -= 1
        if holders[0] == 0:
            self.live -= holders[1]
            del self.holders[key]


def workspace_bytes(func: Any, args: tuple, out: Any) -> int:
    """The column buffer torch's CPU convolution makes and frees inside the call."""
    if func is not torch.ops.aten.convolution.default or not isinstance(out, torch.Tensor):
        return 0
    inp, weight, transposed, groups = args[0], args[1], args[6], args[8]
    kernel = weight.shape[2:].numel()
    if kernel == 1:
        return 0
    batch = inp.shape[0] if inp.dim() == 3 else 1
    if transposed:  # weight: [C_in, C_out / groups, k]
        columns = weight.shape[1] * groups * kernel * inp.shape[-1]
    else:
        columns = inp.shape[-2] * kernel * out.shape[-1]
    return batch * columns * inp.element_size()


def fake_forward(model: nn.Module, shape: Sequence[int], dtype: torch.dtype,
                 device: torch.device, count_macs: bool = True) -> FakeForward:
    """Run `model` on a fake input of `shape` (eval mode, no grad, training flags restored).
    Raises what the forward raises (an op fake tensors cannot run: `.item()`, data-dependent
    shapes, a C++ extension without a meta kernel). The module's hooks do not run: this is
    not the user's forward. Without `count_macs`, macs is 0."""
    # imported here: `import convscope; convscope.describe` stays light (test_describe)
    from torch._subclasses.fake_tensor import FakeTensorMode

    modes = {m: m.training for m in model.modules()}
    live = _LiveBytes(count_macs)
    try:
        model.eval()
        with torch.no_grad(), hooks_suspended(model), FakeTensorMode(allow_non_fake_inputs=True):
            x = torch.empty(tuple(shape), dtype=dtype, device=device)  # fake: no storage
            with live:
                output = model(x)
            returned = tensors_in(output)
            out_shape = tuple(returned[0].shape) if returned else ()
            del output, returned, x
    finally:
        for m, training in modes.items():
            m.training = training
    return FakeForward(live.peak, (live.flops or 0) // 2, out_shape)


def _flop_rule(func: Any):
    """torch's FLOP formula for an aten op (torch.utils.flop_counter's registry), or None."""
    # imported here, as FakeTensorMode: `import convscope; convscope.describe` stays light
    from torch.utils.flop_counter import flop_registry

    return flop_registry.get(func._overloadpacket)
