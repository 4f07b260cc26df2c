"""The impulse probe: which input indices each module call's output indices depend on, measured
on a float64 copy of a module (for a module whose forward no arithmetic knows)."""

from __future__ import annotations

import copy
from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.stack.layers.relation import Relation

PROBE_MAX_LENGTH = 4096
PROBE_MAX_ELEMENTS = 1 << 23  # elements of all calls' outputs in one probe forward
PROBE_MAX_PHASES = 16  # input positions perturbed per length: finds input periods up to 7
PROBE_FIRST_PHASES = 4  # perturbed in the first batch: enough for input period 1
PROBE_START_LENGTH = 2 * PROBE_MAX_PHASES
PROBE_TOLERANCE = 1e-14  # x the output's largest value: a change below it is float rounding


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
