"""The layer catalogue: one module per layer family, each with the rules of the torch ops it
owns (which input samples output j reads, as a Relation with exact rates, or why no finite
set does), registered here by op name.

Adding a layer type is one module with an `OPS = {torch op name: rule}` table (and `MACS`,
for an op that multiplies; `LENGTH_RULES`, for a type a config stack can name), added to
FAMILIES. The rules see torch functions (F.conv1d, F.pad, torch.cat, Tensor.__getitem__...),
so every module built from those ops is known without a rule of its own.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from convscope.stack.layers import (
    combination,
    convolution,
    layout,
    normalisation,
    padding,
    pointwise,
    recurrent,
    resampling,
    transposed,
)
from convscope.stack.layers.flow import Op, Rule
from convscope.stack.layers.relation import Relation

FAMILIES = (convolution, transposed, resampling, pointwise, padding, layout, combination,
            normalisation, recurrent)
RULES: dict[str, Rule] = {}
for _family in FAMILIES:
    for _name, _rule in _family.OPS.items():
        assert _name not in RULES, f"two families claim the torch op {_name}"
        RULES[_name] = _rule


# the multiply-accumulates of the ops that do any (FlopCounterMode's flops / 2)
MACS: dict[str, Callable[[Op], int]] = {
    name: count for family in FAMILIES for name, count in getattr(family, "MACS", {}).items()}



def _by_planned_type(table: str) -> dict[str, Callable]:
    """The families' `table` dicts (planned layer type -> function), merged: one per type."""
    merged: dict[str, Callable] = {}
    for family in FAMILIES:
        for type_, function in getattr(family, table, {}).items():
            assert type_ not in merged, f"two families claim {table}[{type_!r}]"
            merged[type_] = function
    return merged


# planned layer type -> the family's length rule, (L_out, formula text), which stack.plan (a
# config's values) and stack.layer_formulas (a built layer's) both ask: one per type
LENGTH_RULES: dict[str, Callable[..., tuple[int, str]]] = _by_planned_type("LENGTH_RULES")


# built module class -> its Relation (stack.receptive asks, for a module running that class's
# own forward); checked in the families' order
MODULE_RELATIONS: dict[type, Callable[[Any], Optional[Relation]]] = {}
for _family in FAMILIES:
    for _cls, _relation in getattr(_family, "MODULE_RELATIONS", {}).items():
        assert _cls not in MODULE_RELATIONS, f"two families claim the module {_cls.__name__}"
        MODULE_RELATIONS[_cls] = _relation


def rule_for_op(name: str) -> Optional[Rule]:
    return RULES.get(name)
