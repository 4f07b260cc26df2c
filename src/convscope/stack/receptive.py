"""Receptive field and lookahead of every layer call of a module, by arithmetic over its tree.

For output sample j of a layer, `Reach` gives the first and last *stack-input* index it depends
on, away from the edges (the stack extended to infinity both ways, so padding only shifts
indices). receptive_field = last - first + 1 (max over output phases); lookahead = how many of
those indices lie after the output's own time j / F, F = the layer's rate over the stack input's.

Computed, not run: Conv1d, ConvTranspose1d (weight_norm too; their causal versions from
stack.causal, whose lookahead is 0), Upsample (integer scale, nearest
or linear), pools, padding layers, pointwise activations, and the containers whose forward is
known (nn.Sequential; blocks.Residual, Parallel, AntiAliasedActivation with its Kaiser filters).
"Depends" is exact: a tap that is zero in exact arithmetic (linear interpolation hitting an input
sample) is no dependency. A module whose forward is its own (HiFi-GAN's ResBlock calling
F.leaky_relu and adding) is measured instead, with an impulse probe (`probe_relations`): the
numbers are those of the module as built, whatever it does.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Iterable, Optional, Sequence

import torch
from torch import nn

from convscope.stack.blocks import AntiAliasedActivation, Parallel, Residual
from convscope.stack.layers import MODULE_RELATIONS
from convscope.stack.layers.relation import STACK_INPUT, Reach, Relation
from convscope.stack.probe import PROBE_MAX_LENGTH, _run_with_hooks, probe_relations
from convscope.stack.rows import LayerRow


def leaf_relation(module: nn.Module) -> Optional[Relation]:
    """The relation of a layer the catalogue knows (its family's MODULE_RELATIONS), None for
    any other module (including a subclass of a known layer that brings its own forward)."""
    for base, relation in MODULE_RELATIONS.items():
        if isinstance(module, base) and type(module).forward is base.forward:
            return relation(module)
    return None


# --- walking a module tree ------------------------------------------------------------------------

Reaches = dict[str, list[Optional[Reach]]]  # qualified name -> one Reach per call, in call order


def receptive_reaches(model: nn.Module,
                      example_shape: Optional[Sequence[int]] = None) -> Reaches:
    """The reach of every module call of `model` (leaves and containers, by qualified name, in
    call order) from its input. A module the arithmetic does not know is measured with
    probe_relations, on an input shaped like the one it gets from `example_shape` (the model's
    input); without an example its calls get None."""
    walker = _Walker(model, example_shape)
    walker.walk(model, STACK_INPUT)
    return walker.reaches


class _Walker:
    def __init__(self, model: nn.Module, example_shape: Optional[Sequence[int]]):
        self.model, self.example_shape = model, example_shape
        # a module registered twice answers to its first name, as describe's hooks name it
        self.names = {id(m): name for name, m in model.named_modules(remove_duplicate=True)}
        self.reaches: Reaches = {}
        self._input_shapes: Optional[dict[int, list[int]]] = None

    def record(self, name: str, reach: Optional[Reach]) -> Optional[Reach]:
        self.reaches.setdefault(name, []).append(reach)
        return reach

    def walk(self, module: nn.Module, reach: Optional[Reach]) -> Optional[Reach]:
        """Record the reach of every call inside `module` and of its own; return the latter."""
        name = self.names[id(module)]

        def known(base: type) -> bool:
            return isinstance(module, base) and type(module).forward is base.forward

        if known(nn.Sequential):
            out = reach
            for layer in module._modules.values():  # as its forward: duplicates called again
                out = self.walk(layer, out)
            return self.record(name, out)
        if known(Residual):
            return self.record(name, _union([reach, self.walk(module.inner, reach)]))
        if known(Parallel):
            return self.record(name, _union([self.walk(b, reach) for b in module.branches]))
        if known(AntiAliasedActivation):
            out = reach
            for layer in (module.up, module.act, module.down):
                out = self.walk(layer, out)
            return self.record(name, out)
        relation = leaf_relation(module)
        if relation is not None:
            return self.record(name, None if reach is None else reach.through(relation))
        return self.measure(module, name, reach)

    def measure(self, module: nn.Module, name: str, reach: Optional[Reach]) -> Optional[Reach]:
        shape = self.input_shape(module)
        measured = probe_relations(module, shape) if shape is not None else None
        if measured is None:  # the calls inside stay unknown: no entries, rows get None
            return self.record(name, None)
        out = None
        for sub, relation in measured:
            composed = None if reach is None or relation is None else reach.through(relation)
            if sub == "":
                out = composed
            else:
                self.record(f"{name}.{sub}" if name else sub, composed)
        return self.record(name, out)

    def input_shape(self, module: nn.Module) -> Optional[list[int]]:
        """The shape `module` is first called with when the model runs an example of its input
        shape (one forward, recorded by pre-hooks on every module, on the first need)."""
        if self.example_shape is None:
            return None
        if self._input_shapes is None:
            self._input_shapes = _record_input_shapes(self.model, self.example_shape)
        return self._input_shapes.get(id(module))


def _union(reaches: list[Optional[Reach]]) -> Optional[Reach]:
    if not reaches or any(r is None for r in reaches):
        return None
    out = reaches[0]
    for other in reaches[1:]:
        out = out.union(other)
        if out is None:
            return None
    return out


def _record_input_shapes(model: nn.Module, shape: Sequence[int]) -> dict[int, list[int]]:
    shapes: dict[int, list[int]] = {}

    def pre_hook(module, args):
        tensor = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if tensor is not None:
            shapes.setdefault(id(module), list(tensor.shape))

    # the channels are what matters: a long input (a run's hours of audio) is cut short
    shape = [*shape[:-1], min(shape[-1], PROBE_MAX_LENGTH)]
    # a generator of its own: describing a model leaves torch's global random state alone
    x = torch.randn(*shape, dtype=_dtype(model), generator=torch.Generator().manual_seed(0))
    _run_with_hooks(model, x.to(_device(model)),
                    [m.register_forward_pre_hook(pre_hook) for m in model.modules()])
    return shapes


def _dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _device(model: nn.Module) -> Optional[torch.device]:
    return next((p.device for p in model.parameters()), None)


# --- rows and latency -----------------------------------------------------------------------------

def with_receptive_fields(rows: Iterable[LayerRow], model: nn.Module,
                          example_shape: Optional[Sequence[int]] = None) -> list[LayerRow]:
    """`rows` (one per module call, named by qualified module name, in call order: describe's
    leaf rows or a config stack's) with receptive_field and lookahead filled where known."""
    reaches = receptive_reaches(model, example_shape)
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        calls = reaches.get(row.name, [])
        k = seen.get(row.name, 0)
        seen[row.name] = k + 1
        reach = calls[k] if k < len(calls) else None
        out.append(row if reach is None else replace(
            row, receptive_field=reach.receptive_field(), lookahead=reach.lookahead()))
    return out


def latency(rows: Sequence[LayerRow], input_rate: Optional[Fraction | int | float]
            ) -> Optional[dict]:
    """shapes.json's "latency": the last row's lookahead in stack-input samples (frames for a
    feature input) and in ms at the input's rate; None when it is not known."""
    if not rows or rows[-1].lookahead is None:
        return None
    samples = rows[-1].lookahead
    doc: dict = {"lookahead_samples": samples}
    if input_rate:
        doc["lookahead_ms"] = float(Fraction(samples) / Fraction(input_rate) * 1000)
    return doc
