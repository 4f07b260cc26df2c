"""Array and argument plumbing shared by the NumPy reference's modules."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from convscope.errors import ConvscopeError

IntOrInts = int | Sequence[int]


Ints = tuple[int, ...]


def to_numpy(a) -> np.ndarray:
    """An array from a list, a NumPy array or a torch tensor (on any device, requiring grad or not).

    Tensors are recognised by their `detach` method, so the reference never imports torch.
    np.asarray alone refuses a tensor that requires grad (an nn.Parameter, say) or lives on a GPU.
    """
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        tensor = a.detach().cpu()
        try:
            return tensor.numpy()
        except TypeError:  # bfloat16 has no NumPy dtype; float32 holds every bfloat16 exactly
            return tensor.float().numpy()
    return np.asarray(a)


def _as_arrays(x, weight, bias) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    def as_float(a):
        a = to_numpy(a)
        return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)

    return as_float(x), as_float(weight), None if bias is None else as_float(bias)


def _ints(value: IntOrInts, dims: int, name: str) -> Ints:
    """An int, or one int per spatial axis, as a tuple of `dims` ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * dims
    try:
        values = tuple(int(v) for v in value)
    except TypeError:
        values = ()
    if len(values) != dims:
        raise ConvscopeError(f"{name} must be an int or {dims} ints, got {name}={value!r}")
    return values


def _dtype(*arrays: np.ndarray) -> np.dtype:
    return np.result_type(*arrays)


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is None:
        return y
    return y + bias.reshape(1, -1, *([1] * (y.ndim - 2)))
