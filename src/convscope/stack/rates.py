"""How a planned stack scales the sample rate."""

from __future__ import annotations

from convscope.stack.plan import LayerPlan


def layer_rates(plans: list[LayerPlan], input_rate: float) -> list[float]:
    """Each layer's output sample rate: transposed strides and Upsample multiply, Conv1d
    strides divide."""
    rates, rate = [], float(input_rate)
    for plan in plans:
        up, down = plan.stride_ratio
        rate = rate * up / down
        rates.append(rate)
    return rates


def output_sample_rate(plans: list[LayerPlan], input_rate: float) -> float:
    """Input rate x product of upsampling strides / product of Conv1d strides."""
    return layer_rates(plans, input_rate)[-1] if plans else float(input_rate)


def upsampling_factor(plans: list[LayerPlan]) -> int:
    """Product of the upsampling strides: the stride tone sits at output_rate / this."""
    factor = 1
    for plan in plans:
        factor *= plan.stride_ratio[0]
    return factor
