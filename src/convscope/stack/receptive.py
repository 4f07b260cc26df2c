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

import copy
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.stack.blocks import (
    AntiAliasedActivation,
    KaiserDownsample,
    KaiserUpsample,
    Parallel,
    Residual,
    Snake,
    SnakeBeta,
)
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.layer_formulas import PADS, POINTWISE, POOLS
from convscope.stack.rows import LayerRow

POINTWISE_TYPES = POINTWISE + (Snake, SnakeBeta, nn.BatchNorm1d)  # BatchNorm: eval, per sample
PROBE_MAX_LENGTH = 4096
PROBE_MAX_ELEMENTS = 1 << 23  # elements of all calls' outputs in one probe forward
PROBE_MAX_PHASES = 16  # input positions perturbed per length: finds input periods up to 7
PROBE_FIRST_PHASES = 4  # perturbed in the first batch: enough for input period 1
PROBE_START_LENGTH = 2 * PROBE_MAX_PHASES
PROBE_TOLERANCE = 1e-14  # x the output's largest value: a change below it is float rounding


@dataclass(frozen=True)
class Relation:
    """Which input indices one module's output index depends on, periodically: output j + n *
    out_period depends on the indices `deps[j % out_period]` + n * in_period (j = phase + n * ...).
    """

    out_period: int
    in_period: int
    deps: tuple[tuple[int, ...], ...]

    def at(self, j: int) -> tuple[int, ...]:
        n, phase = divmod(j, self.out_period)
        return tuple(i + n * self.in_period for i in self.deps[phase])


@dataclass(frozen=True)
class Reach:
    """First and last stack-input index each output index of a layer depends on: output j +
    n * period reaches spans[j % period] shifted by n * shift. A span is None when that output
    phase depends on no input (a transposed conv's phase no kernel tap lands on: bias only)."""

    period: int
    shift: int
    spans: tuple[Optional[tuple[int, int]], ...]

    def at(self, j: int) -> Optional[tuple[int, int]]:
        n, phase = divmod(j, self.period)
        span = self.spans[phase]
        return None if span is None else (span[0] + n * self.shift, span[1] + n * self.shift)

    @property
    def rate(self) -> Fraction:
        """Output samples per stack-input sample."""
        return Fraction(self.period, self.shift)

    def through(self, relation: Relation) -> Reach:
        """The reach of a layer with `relation` taking this reach's output as its input."""
        common = math.lcm(relation.in_period, self.period)
        period = common // relation.in_period * relation.out_period
        shift = common // self.period * self.shift
        spans = []
        for j in range(period):
            reached = [s for s in map(self.at, relation.at(j)) if s is not None]
            spans.append((min(s[0] for s in reached), max(s[1] for s in reached))
                         if reached else None)
        return Reach(period, shift, tuple(spans))

    def union(self, other: Reach) -> Optional[Reach]:
        """Outputs that add two paths (x + f(x), parallel branches): the hull of both spans.
        None when the paths run at different rates (no shape-keeping sum could add them)."""
        if self.rate != other.rate:
            return None
        period = math.lcm(self.period, other.period)
        spans = []
        for j in range(period):
            pair = [s for s in (self.at(j), other.at(j)) if s is not None]
            spans.append((min(s[0] for s in pair), max(s[1] for s in pair)) if pair else None)
        return Reach(period, period // self.period * self.shift, tuple(spans))

    def receptive_field(self) -> Optional[int]:
        sizes = [last - first + 1 for first, last in filter(None, self.spans)]
        return max(sizes) if sizes else None

    def lookahead(self) -> Optional[int]:
        """Max over phases of the depended-on indices after the output's time j * shift/period."""
        counts = []
        for j, span in enumerate(self.spans):
            if span is not None:
                now = (j * self.shift) // self.period  # the last index not in the future
                counts.append(max(0, span[1] - max(now, span[0] - 1)))
        return max(counts) if counts else None


IDENTITY = Relation(1, 1, ((0,),))
STACK_INPUT = Reach(1, 1, ((0, 0),))


def conv_relation(kernel: int, stride: int, padding: int, dilation: int) -> Relation:
    """Conv1d and pools: output j reads inputs j*stride - padding + dilation*m, m < kernel."""
    return Relation(1, stride, (tuple(-padding + dilation * m for m in range(kernel)),))


def conv_transpose_relation(kernel: int, stride: int, padding: int, dilation: int) -> Relation:
    """ConvTranspose1d: input i adds its kernel copy at outputs i*stride - padding + dilation*m,
    so output j reads the inputs (j + padding - dilation*m) / stride that are whole numbers."""
    deps = []
    for phase in range(stride):
        taps = (phase + padding - dilation * m for m in range(kernel))
        deps.append(tuple(t // stride for t in taps if t % stride == 0))
    return Relation(stride, 1, tuple(deps))


def upsample_relation(scale: int, mode: str) -> Relation:
    """nn.Upsample by an integer scale: nearest copies input j // scale; linear (align_corners
    off) blends the inputs either side of (j + 1/2)/scale - 1/2, the right one with weight 0 when
    that position is a whole input index."""
    deps = []
    for phase in range(scale):
        if mode == "linear":
            source = Fraction(2 * phase + 1, 2 * scale) - Fraction(1, 2)
            left = math.floor(source)
            deps.append((left,) if source == left else (left, left + 1))
        else:
            deps.append((0,))
    return Relation(scale, 1, tuple(deps))


def _one(value, name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(name)
        value = value[0]
    return value


def _conv_padding(module: nn.Conv1d) -> int:
    kernel, dilation = _one(module.kernel_size, "k"), _one(module.dilation, "d")
    if module.padding == "same":
        return dilation * (kernel - 1) // 2
    if module.padding == "valid":
        return 0
    return _one(module.padding, "padding")


def leaf_relation(module: nn.Module) -> Optional[Relation]:
    """The relation of a layer the arithmetic knows, None for any other module (including a
    subclass of a known layer that brings its own forward)."""
    def runs(base: type) -> bool:
        return isinstance(module, base) and type(module).forward is base.forward

    # the causal convs first: their torch padding is 0, and their forwards are their own
    if runs(CausalConv1d):  # d*(k-1) zeros on the left: output j reads j*s - d*(k-1) .. j*s
        return conv_relation(_one(module.kernel_size, "k"), _one(module.stride, "s"),
                             module.causal_padding, _one(module.dilation, "d"))
    if runs(CausalConvTranspose1d):  # padding 0, the right trimmed: output j reads i <= j/s
        return conv_transpose_relation(_one(module.kernel_size, "k"), _one(module.stride, "s"), 0,
                                       _one(module.dilation, "d"))
    if runs(nn.Conv1d):
        return conv_relation(_one(module.kernel_size, "k"), _one(module.stride, "s"),
                             _conv_padding(module), _one(module.dilation, "d"))
    if runs(nn.ConvTranspose1d):
        return conv_transpose_relation(*(_one(getattr(module, name), name) for name in (
            "kernel_size", "stride", "padding", "dilation")))
    if runs(KaiserUpsample):  # replicate-pad, transposed conv, trim: padding (k - r) // 2 net
        return conv_transpose_relation(module.kernel_size, module.ratio,
                                       module.trim_left - module.pad * module.ratio, 1)
    if runs(KaiserDownsample):
        return conv_relation(module.kernel_size, module.ratio, module.pad_left, 1)
    for pool in POOLS:
        if runs(pool):
            kernel = _one(module.kernel_size, "k")
            stride = _one(module.stride, "s") if module.stride is not None else kernel
            return conv_relation(kernel, stride, _one(getattr(module, "padding", 0), "p"),
                                 _one(getattr(module, "dilation", 1), "d"))
    for pad in PADS:
        if runs(pad):
            return Relation(1, 1, ((-module.padding[0],),))
    if runs(nn.Upsample):
        scale = _one(module.scale_factor, "scale_factor") if module.size is None else None
        linear_ok = module.mode == "linear" and not module.align_corners
        if (scale is not None and float(scale) == int(scale) and int(scale) >= 1
                and (module.mode in ("nearest", "nearest-exact") or linear_ok)):
            return upsample_relation(int(scale), module.mode)
        return None
    if any(runs(base) for base in POINTWISE_TYPES):
        return IDENTITY
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


def _run_with_hooks(model: nn.Module, x: torch.Tensor, handles: list) -> bool:
    """One eval-mode, no-grad forward; every module's training flag restored, hooks removed.
    False when the forward raised (a probe at a length the module does not take)."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(x)
        return True
    except Exception:  # noqa: BLE001 -- any failure of a user's forward means "not measurable"
        return False
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training


# --- the impulse probe ----------------------------------------------------------------------------

def probe_relations(module: nn.Module, input_shape: Sequence[int]
                    ) -> Optional[list[tuple[str, Optional[Relation]]]]:
    """Measure, on a float64 copy of `module`, which input indices each of its module calls'
    output indices depend on: one forward on a random input, then one per perturbed input
    position (all channels at one time index) in the middle, reading which output indices moved
    (float64: by more than PROBE_TOLERANCE x the output's largest value, as rounding can move
    an output that does not depend on the position by an ulp).
    The copy's parameters keep their signs and their scale, with magnitudes redrawn near it
    (`_even_magnitudes`), so a tap that happens to be tiny does not hide a dependency.
    Perturbing consecutive positions shows each call's period (input b -> output a); two whole
    periods must agree. The input grows until no call's moved outputs touch its edges (away from
    the edges is the definition) or cover half of them, up to PROBE_MAX_LENGTH input samples or
    PROBE_MAX_ELEMENTS output elements per forward; a call still unresolved then gets None.

    Returns [(name inside the module, Relation or None)] per call in call order ('' is the module
    itself), or None when the module cannot be run on such inputs.
    """
    generator = torch.Generator().manual_seed(0)
    probe = _even_magnitudes(copy.deepcopy(module).to("cpu", torch.float64), generator)
    lead = [1, *input_shape[1:-1]] if len(input_shape) >= 3 else list(input_shape[:-1])
    length, result = PROBE_START_LENGTH, None
    while length <= PROBE_MAX_LENGTH:
        measured = _probe_at(probe, lead, length, generator)
        if measured is None:
            return result
        result, complete, elements = measured
        if complete or 2 * elements > PROBE_MAX_ELEMENTS:
            break
        length *= 2
    return result


def _even_magnitudes(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Every parameter keeps its signs; its magnitudes are redrawn between 1/2 and 3/2 of their
    mean (of 1 for a zero tensor): no tap is near zero, and no two paths cancel exactly as equal
    magnitudes would. weight_norm's direction and gain, Snake's alpha and biases alike."""
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point() and p.numel():
                size = float(p.abs().mean()) or 1.0
                spread = torch.rand(p.shape, dtype=p.dtype, generator=generator) + 0.5
                p.copy_(torch.where(p < 0, -size, size) * spread.to(p.device))
    return module


def _probe_at(probe: nn.Module, lead: list[int], length: int, generator: torch.Generator):
    base = torch.randn(*lead, length, dtype=torch.float64, generator=generator)
    first = length // 2 - PROBE_MAX_PHASES // 2
    bumps = [torch.randn(*lead, dtype=torch.float64, generator=generator) + 2.0
             for _ in range(PROBE_MAX_PHASES)]

    def perturbed(k: int) -> torch.Tensor:
        x = base.clone()
        x[..., first + k] += bumps[k]
        return x

    def batch(phases: range) -> Optional[list[tuple[Outputs, Outputs]]]:
        """(unperturbed, perturbed) outputs per phase, both from the same forward: a batch of
        another size may round differently."""
        outputs = _run_many(probe, [base] + [perturbed(k) for k in phases])
        return None if outputs is None else [(outputs[0], out) for out in outputs[1:]]

    # the first batch settles every input period of 1 (upsamplers), the second the rest
    runs = batch(range(PROBE_FIRST_PHASES))
    if runs is None:
        return None
    reference = runs[0][0]
    moved: list[list[Optional[tuple[int, int]]]] = [[] for _ in reference]
    relations: list[Optional[Relation]] = [None] * len(reference)
    edge = [False] * len(reference)
    for k in range(PROBE_MAX_PHASES):
        if k == len(runs):
            more = batch(range(k, PROBE_MAX_PHASES))
            if more is None:
                return None
            runs += more
        unperturbed, outputs = runs[k]
        if not len(unperturbed) == len(outputs) == len(reference):
            return None
        for c, ((_, ref), (_, out)) in enumerate(zip(unperturbed, outputs)):
            span, size = _moved_span(ref, out), ref.shape[-1]
            # touching an end, or wider than half the output (no local dependency, as Flatten's):
            # the input must grow
            edge[c] |= span is not None and (span[0] == 0 or span[1] == size - 1
                                             or 2 * (span[1] - span[0] + 1) > size)
            moved[c].append(span)
        for c in range(len(reference)):
            if relations[c] is None and not edge[c]:
                relations[c] = _relation_from_spans(moved[c], first)
        if all(r is not None or e or not any(m) for r, e, m in zip(relations, edge, moved)):
            break
    complete = not any(e for e in edge) and all(r is not None or not any(m)
                                                for r, m in zip(relations, moved))
    named = [(name, None if e else r) for (name, _), r, e in zip(reference, relations, edge)]
    return named, complete, sum(out.numel() for _, out in reference)


Outputs = list[tuple[str, torch.Tensor]]  # (module name, output) per call, in hook order


def _run_many(probe: nn.Module, inputs: list[torch.Tensor]) -> Optional[list[Outputs]]:
    """Each input's call outputs: in one forward with the inputs as a batch when the module
    keeps the batch axis through every call (far faster for small modules), else one by one."""
    if inputs[0].dim() >= 3 and inputs[0].shape[0] == 1:
        batched = _call_outputs(probe, torch.cat(inputs))
        if batched is not None and all(out.dim() >= 2 and out.shape[0] == len(inputs)
                                       for _, out in batched):
            return [[(name, out[n:n + 1]) for name, out in batched] for n in range(len(inputs))]
    runs = [_call_outputs(probe, x) for x in inputs]
    return None if any(run is None for run in runs) else runs


def _call_outputs(probe: nn.Module, x: torch.Tensor) -> Optional[Outputs]:
    outputs: Outputs = []

    def hook_for(name: str) -> Callable:
        def hook(module, args, output):
            tensor = _first_tensor(output)
            if tensor is not None and tensor.dim() >= 1:
                outputs.append((name, tensor.detach().clone()))
        return hook

    inner = _parametrization_internals(probe)
    handles = [m.register_forward_hook(hook_for(name)) for name, m in probe.named_modules()
               if id(m) not in inner]
    # post-hooks fire as calls return (a container after its children): each name's calls
    # stay in call order, which is what rows are matched by
    return outputs if _run_with_hooks(probe, x, handles) else None


def _moved_span(reference: torch.Tensor, output: torch.Tensor) -> Optional[tuple[int, int]]:
    if reference.shape != output.shape or not reference.is_floating_point():
        return None
    noise = PROBE_TOLERANCE * float(reference.abs().max())
    changed = ((output - reference).abs() > noise).reshape(-1, reference.shape[-1]).any(dim=0)
    changed = changed.nonzero().flatten()
    return None if len(changed) == 0 else (int(changed[0]), int(changed[-1]))


def _relation_from_spans(spans: list[Optional[tuple[int, int]]], first: int
                         ) -> Optional[Relation]:
    """The relation that explains the moved spans of inputs first, first+1, ...: the smallest
    input period b (seen twice over) after which the spans repeat shifted by a >= 1 outputs."""
    count = len(spans)
    for b in range(1, (count - 1) // 2 + 1):
        a = _shift_after(spans, b)
        if a is None:
            continue
        deps: list[set[int]] = [set() for _ in range(a)]
        for k in range(b):
            if spans[k] is not None:
                for o in range(spans[k][0], spans[k][1] + 1):
                    n, phase = divmod(o, a)
                    deps[phase].add(first + k - n * b)
        return Relation(a, b, tuple(tuple(sorted(d)) for d in deps))
    return None


def _shift_after(spans: list[Optional[tuple[int, int]]], b: int) -> Optional[int]:
    shifts = set()
    for earlier, later in zip(spans, spans[b:]):
        if (earlier is None) != (later is None):
            return None
        if earlier is not None:
            shifts.add((later[0] - earlier[0], later[1] - earlier[1]))
    if len(shifts) != 1:
        return None
    (a, a_last), = shifts
    return a if a == a_last and a >= 1 else None


def _first_tensor(value) -> Optional[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _parametrization_internals(model: nn.Module) -> set[int]:
    """The modules inside a parametrization (weight_norm's) compute a weight, not a layer call."""
    inner: set[int] = set()
    for m in model.modules():
        if parametrize.is_parametrized(m):
            inner.update(id(p) for p in m.parametrizations.modules())
    return inner


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
