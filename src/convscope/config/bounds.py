"""Bounds every config value shares, whatever its key: floats are finite, integers fit 64 bits.

A NaN or an infinity in a config never means anything convscope can use (NaN passes every `<`
check unnoticed and reaches torch or matplotlib); an integer beyond 64 bits is not something torch,
numpy or libsndfile can take (`torch.manual_seed(2**70)`: "Overflow when unpacking long long").
`check_numbers` walks a converted config (dataclasses, lists, dicts) and names the first such
value's full key, so each schema's own checks (config.checks) only state its ranges. It only
raises, like every check here.
"""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from typing import Any, Optional

from convscope.errors import ConvscopeError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38  # a layer's float parameters become float32 tensors
# Free-form mappings (model.kwargs: the user's constructor arguments) are theirs to check
UNCHECKED = ("model.kwargs",)


def check_numbers(value: Any, key: str, float_limit: float = math.inf) -> None:
    """Raise naming `key` (dotted, list indexes included) for the first non-finite float,
    float beyond +-`float_limit` or integer outside int64 in `value`."""
    if key in UNCHECKED:
        return
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConvscopeError(f"{key} must be a finite number, got {value}")
        if abs(value) > float_limit:
            raise ConvscopeError(f"{key}: {value} is beyond +-{float_limit:.7g}, the largest "
                                 "float32 (what torch computes the stack in)")
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ConvscopeError(f"{key}: {value} does not fit a 64-bit integer (what torch, numpy "
                                 f"and libsndfile take); use a value below 2**63")
    elif is_dataclass(value):
        for item in fields(value):
            check_numbers(getattr(value, item.name), _join(key, item.name), float_limit)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_numbers(item, _join(key, str(index)), float_limit)
    elif isinstance(value, dict):
        for name, item in value.items():
            check_numbers(item, _join(key, str(name)), float_limit)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def in_range(key: str, value: Any, low: Optional[float] = None, high: Optional[float] = None,
             low_open: bool = False, what: str = "") -> None:
    """`value` within [low, high] ((low, high] with low_open); the error names key and range."""
    below = low is not None and (value <= low if low_open else value < low)
    if below or (high is not None and value > high):
        left = "(" if low_open else "["
        span = f"{left}{_bound(low, '-inf')}, {_bound(high, 'inf')}]"
        raise ConvscopeError(f"{key} must be in {span}{what}, got {value!r}")


def _bound(value: Optional[float], missing: str) -> str:
    if value is None:
        return missing
    return "2**63 - 1" if value == INT64_MAX else f"{value:g}"
