"""The complete rows of a config stack: shapes, formulas and rates from its plan (stack.rows),
receptive field and lookahead from its module tree (stack.receptive). The pipeline's table and
shapes.json use this; tests hold it equal to describe() of the same stack."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

from torch import nn

from convscope.stack.plan import LayerPlan
from convscope.stack.receptive import with_receptive_fields
from convscope.stack.rows import LayerRow, layer_rows


def config_rows(plans: list[LayerPlan], stack: nn.Sequential,
                input_rate: Optional[Fraction] = None) -> list[LayerRow]:
    return with_receptive_fields(layer_rows(plans, stack, input_rate), stack,
                                 plans[0].input_shape)
