"""How a planned stack scales the sample rate, and rates as exact fractions."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Optional, Union

from convscope.errors import ConvscopeError
from convscope.stack.plan import LayerPlan

Rate = Union[int, float, str, Fraction]


def layer_rates(plans: list[LayerPlan], input_rate: Rate) -> list[Fraction]:
    """Each layer's exact output sample rate: transposed strides and Upsample multiply, Conv1d
    strides divide (16000 through a stride-3 Conv1d is 16000/3 Hz, not 5333.33)."""
    rates, rate = [], exact_rate(input_rate)
    for plan in plans:
        up, down = plan.stride_ratio
        rate = rate * up / down
        rates.append(rate)
    return rates


def output_sample_rate(plans: list[LayerPlan], input_rate: Rate) -> Fraction:
    """Input rate x product of upsampling strides / product of Conv1d strides, exactly."""
    return layer_rates(plans, input_rate)[-1] if plans else exact_rate(input_rate)


def integer_rate(rate: Fraction) -> Optional[int]:
    """The rate as an int when it is a whole number of Hz (what a WAV header holds), else None."""
    return int(rate) if rate.denominator == 1 else None


def rate_json(rate: Fraction, key: str = "sample_rate") -> dict:
    """shapes.json's way to write a rate: the number (an int when whole) and the exact fraction
    text, e.g. {"sample_rate": 86.1328125, "sample_rate_fraction": "11025/128"}."""
    return {key: int(rate) if rate.denominator == 1 else float(rate),
            f"{key}_fraction": str(rate)}


def rate_text(rate: Fraction) -> str:
    """A rate for logs and titles as text.rate_text writes table cells: `16000`, or
    `11025/128 (86.1328)` when it is not a whole number."""
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{rate} ({float(rate):.6g})"


def upsampling_factor(plans: list[LayerPlan]) -> int:
    """Product of the upsampling strides: the stride tone sits at output_rate / this."""
    factor = 1
    for plan in plans:
        factor *= plan.stride_ratio[0]
    return factor


def exact_rate(value: Union[int, float, str, Fraction], name: str = "sample_rate") -> Fraction:
    """A rate as an exact Fraction: 22050, Fraction(22050, 256), "22050/256" or 86.1328125.

    A float becomes the simplest fraction (denominator up to a million) that is the same float,
    so 16000 / 3 gives 16000/3 rather than the binary float's 53-bit fraction; a float that no
    such fraction matches is kept exactly.
    """
    if isinstance(value, bool):
        raise ConvscopeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, Fraction):
        rate = value
    elif isinstance(value, numbers.Integral):
        rate = Fraction(int(value))
    elif isinstance(value, numbers.Real):
        rate = _simplest_fraction(float(value), name)
    elif isinstance(value, str):
        try:
            rate = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ConvscopeError(
                f"{name} must be a number or a fraction like '22050/256', got {value!r}") from None
    else:
        raise ConvscopeError(f"{name} must be an int, Fraction, float or str, got {value!r}")
    if rate <= 0:
        raise ConvscopeError(f"{name} must be > 0, got {value!r}")
    return rate


def _simplest_fraction(value: float, name: str) -> Fraction:
    if not math.isfinite(value):
        raise ConvscopeError(f"{name} must be finite, got {value!r}")
    simple = Fraction(value).limit_denominator(1_000_000)
    return simple if float(simple) == value else Fraction(value)
