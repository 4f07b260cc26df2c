"""What a tensor of a traced forward depends on (`Flow`), and what a family's rule is given (`Op`).

A Flow is the tensor's Reach over the model input along its time axis, or the reason there is
no finite one ("recurrent (LSTM): depends on every earlier sample"). A rule of the catalogue takes
an `Op` (the torch function's name, its arguments, its output and the flows of its tensor
arguments) and returns the output's Flow, or None when the output depends on no input sample.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import torch

from convscope.stack.layers.relation import Reach, Relation

NO_RULE = "no rule for torch op"  # the prefix of a reason that only means "not catalogued"


@dataclass(frozen=True)
class Flow:
    """One tensor's dependence on the model input: `reach` when finite, else `reason`; its time
    axis is `time_axis` (an index into its dims, non-negative)."""

    reach: Optional[Reach]
    time_axis: int
    reason: str = ""

    @property
    def finite(self) -> bool:
        return self.reach is not None

    @property
    def uncatalogued(self) -> bool:
        """True when the only thing unknown is an op the catalogue lacks (the probe may help)."""
        return self.reason.startswith(NO_RULE)

    def through(self, relation: Relation, time_axis: Optional[int] = None) -> Flow:
        """This flow after an op reading its time axis as `relation` says."""
        axis = self.time_axis if time_axis is None else time_axis
        if self.reach is None:
            return replace(self, time_axis=axis)
        return Flow(self.reach.through(relation), axis)

    def on_axis(self, time_axis: int) -> Flow:
        return replace(self, time_axis=time_axis)


def unresolved(reason: str, time_axis: int) -> Flow:
    return Flow(None, time_axis, reason)


def combined(flows: list[Flow], time_axis: int, what: str) -> Flow:
    """The flow of an output that mixes these flows sample by sample (an add, a channel concat,
    a mean of branches): the hull of their reaches; the first reason when one has no reach."""
    for flow in flows:
        if not flow.finite:
            return flow.on_axis(time_axis)
    reach = flows[0].reach
    for flow in flows[1:]:
        joined = reach.union(flow.reach)
        if joined is None:
            return unresolved(f"{what} joins paths at different rates ({reach.rate} and "
                              f"{flow.reach.rate} samples per input sample)", time_axis)
        reach = joined
    return Flow(reach, time_axis)


@dataclass
class Op:
    """One torch function call seen during the traced forward, as a rule sees it."""

    name: str  # the function's name, an in-place op's trailing "_" removed
    args: tuple
    kwargs: dict
    output: Any
    flow_of: Callable[[torch.Tensor], Optional[Flow]]  # None: the tensor reads no input sample

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """A positional-or-keyword argument, as torch's signature names it."""
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if index < len(self.args) else default

    def tracked(self) -> list[tuple[torch.Tensor, Flow]]:
        """The tensor arguments that depend on the input, with their flows, in argument order."""
        found = []
        for tensor in tensors_in((self.args, self.kwargs)):
            flow = self.flow_of(tensor)
            if flow is not None:
                found.append((tensor, flow))
        return found

    def first(self) -> tuple[torch.Tensor, Flow]:
        return self.tracked()[0]

    def out_tensor(self) -> Optional[torch.Tensor]:
        return next(iter(tensors_in(self.output)), None)


Rule = Callable[[Op], Optional[Flow]]


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor in a (nested) tuple, list or dict, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors_in(item)]
    return []


def axis_index(dim: int, ndim: int) -> int:
    """A dim argument (negative counts from the end) as a non-negative index."""
    return dim + ndim if dim < 0 else dim


def same_flow(op: Op) -> Optional[Flow]:
    """Layout ops that keep every axis where it is (contiguous, to, clone, detach...)."""
    tracked = op.tracked()
    return combined([flow for _, flow in tracked], tracked[0][1].time_axis, op.name)


def no_dependence(_op: Op) -> None:
    """Tensors made like another (zeros_like, new_zeros): no input sample reaches them."""
    return None
