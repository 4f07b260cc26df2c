"""One real forward of any nn.Module, traced: every leaf call, and what each tensor depends on.

A TorchFunctionMode sees every torch function the forward runs, inside leaf modules and outside
them (F.pad, slicing, x + y, torch.cat, F.interpolate, a mean of branches). Each op's output gets
a Flow from the catalogue's rule for that op (stack.layers), composed from the flows of its
inputs: the model input is the identity reach, parameters and buffers read no input sample.
Tensors are known by identity (id with a weak reference, so nothing is kept alive and a reused
id is not mistaken for a freed tensor). Shape-dependent Python in a forward (DAC's residual
crop) is fine: the forward is real.

Fallback, stated: a leaf module whose output no rule explains (an op the catalogue lacks, or a
TorchScript function the mode cannot see into, as DAC's Snake1d) is measured alone by the
impulse probe (stack.probe) on its input's shape; what the probe cannot resolve is a reason.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace
from typing import Any, Optional

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from convscope.errors import ConvscopeError
from convscope.stack.backends import safe_kernels
from convscope.stack.hooks import hooks_suspended
from convscope.stack.layers import MACS, rule_for_op
from convscope.stack.layers.flow import NO_RULE, Flow, Op, tensors_in, unresolved
from convscope.stack.layers.relation import STACK_INPUT
from convscope.stack.probe import probe_relations
from convscope.stack.rows import LayerRow

EXAMPLE_SOURCE = -1  # a call's input came straight from the example
UNSEEN = object()  # a tensor no traced op made: from TorchScript, C++, or made before the forward
NOT_FROM_INPUT = "does not depend on the model's input"
INVISIBLE = ("its input was computed where convscope cannot see (TorchScript or a C++ "
             "extension outside a module)")


MAX_MESSAGE = 300  # characters of the user's exception message kept in the one line


class ForwardFailed(ConvscopeError):
    """The model's forward raised on the example: `where` names the innermost module it was in,
    `original` is the exception."""

    def __init__(self, where: str, original: BaseException, shape: list[int]):
        self.where, self.original = where, original
        super().__init__(f"describe: {where} raised {exception_text(original)} on an input of "
                         f"shape {shape}")


@dataclass(frozen=True)
class TracedCall:
    name: str
    module: nn.Module
    input_shape: Optional[list[int]]
    output_shape: Optional[list[int]]
    source: Optional[int]  # the call whose output this call took in; EXAMPLE_SOURCE; None: unknown
    flow: Flow  # what the call's output depends on (a reason when not finite)
    macs: int = 0  # of the conv ops the call ran (functional ones inside its forward too)


@dataclass(frozen=True)
class Trace:
    calls: list[TracedCall]
    output: Any
    probed: tuple[str, ...]  # leaf calls measured by the probe fallback, by name
    output_flow: Optional[Flow] = None  # what the model's (first) output tensor depends on
    # input samples by which shifting the input shifts every traced tensor by a whole number of
    # its own samples: the lcm of every finite reach's shift (its rate's denominator, times the
    # phases a period spans), so a block starting at a multiple of it lines up with the signal
    alignment: int = 1


def op_name(func: Any) -> str:
    """A torch function's name as the catalogue keys it: in-place `add_` is `add`."""
    name = getattr(func, "__name__", "") or type(func).__name__
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


class _Tracer(TorchFunctionMode):
    def __init__(self, example: torch.Tensor, constants: list[torch.Tensor]):
        super().__init__()
        self._flows: dict[int, tuple[weakref.ref, Optional[Flow]]] = {}
        self.paused = False  # the probe's own forwards are not the model's
        self.path: list[str] = []  # the modules whose forward is running, outermost first
        self.version = example._version  # torch bumps it when the example changes in place
        self.changed_input: Optional[str] = None  # where that happened, and by which op
        self.leaf_macs = 0  # MACs of the ops run since the current leaf call began
        self.alignment = 1  # lcm of the shifts of every finite flow set (Trace.alignment)
        for tensor in constants:
            self.set(tensor, None)
        self.example = example
        self.set(example, Flow(STACK_INPUT, example.dim() - 1))

    def where(self) -> str:
        return self.path[-1] if self.path else "the model"

    def set(self, tensor: torch.Tensor, flow: Optional[Flow]) -> None:
        self._flows[id(tensor)] = (weakref.ref(tensor), flow)
        if flow is not None and flow.finite and not self.paused:
            self.alignment = math.lcm(self.alignment, flow.reach.shift)

    def state(self, tensor: Any) -> Any:
        """The tensor's Flow; None when it reads no input sample; UNSEEN when no op made it."""
        ref, flow = self._flows.get(id(tensor), (None, None))
        return flow if ref is not None and ref() is tensor else UNSEEN

    def flow_of(self, tensor: torch.Tensor) -> Optional[Flow]:
        state = self.state(tensor)
        return None if state is UNSEEN else state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.paused:
            self.record(func, args, kwargs, out)
        return out

    def record(self, func, args, kwargs, out) -> None:
        if self.changed_input is None and self.example._version != self.version:
            self.changed_input = f"{self.where()} changed its input in place ({op_name(func)})"
        outputs = tensors_in(out)
        if not outputs:
            return  # shapes, sizes, dims
        op = Op(op_name(func), args, kwargs, out, self.flow_of)
        count = MACS.get(op.name)
        if count is not None:
            self.leaf_macs += count(op)
        tracked = op.tracked()
        if not tracked:  # made from parameters, buffers and constants only
            for tensor in outputs:
                self.set(tensor, None)
            return
        rule = rule_for_op(op.name)
        axis = tracked[0][1].time_axis
        try:
            flow = rule(op) if rule else unresolved(f"{NO_RULE} {op.name}", axis)
        except Exception as exc:  # noqa: BLE001 -- a rule's gap must not break the user's forward
            flow = unresolved(f"{NO_RULE} {op.name} called this way "
                              f"({exception_text(exc)})", axis)
        for tensor in outputs:
            self.set(tensor, flow)


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every module without children of its own. The modules inside
    a parametrization (weight_norm's) compute a weight, not a layer call: a parametrized Conv1d
    counts as a leaf and they do not. A module registered twice is hooked once, under its first
    name, and shows up once per call."""
    inner = set()
    for m in model.modules():
        if parametrize.is_parametrized(m):
            inner.update(id(p) for p in m.parametrizations.modules())
    return [(name, m) for name, m in model.named_modules()
            if id(m) not in inner and not any(id(c) not in inner for c in m.children())]


def trace_forward(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run `x` through `model` once (eval mode, no grad, every training flag restored, hooks
    removed also when the forward raises) and return its leaf calls with their flows."""
    tracer = _Tracer(x, [*model.parameters(), *model.buffers()])
    calls: list[TracedCall] = []
    probed: list[str] = []
    produced: dict[int, tuple[weakref.ref, int]] = {id(x): (weakref.ref(x), EXAMPLE_SOURCE)}

    def source_of(tensor: Optional[torch.Tensor]) -> Optional[int]:
        ref, index = produced.get(id(tensor), (None, None))
        return index if ref is not None and ref() is tensor else None

    def start_counting(_module, _args):
        tracer.leaf_macs = 0

    def hook_for(name: str):
        def hook(module, args, kwargs, output):
            if tracer.paused:  # the probe's forwards of a copy (deepcopy copies hooks too)
                return
            inp, out = _first(tensors_in((args, kwargs))), _first(tensors_in(output))
            flow = _call_flow(tracer, name, module, inp, out, probed)
            calls.append(TracedCall(name, module, _shape(inp), _shape(out), source_of(inp),
                                    flow, tracer.leaf_macs))
            if out is not None:
                produced[id(out)] = (weakref.ref(out), len(calls) - 1)
        return hook

    modes = {m: m.training for m in model.modules()}
    handles = []
    output = output_flow = None
    try:
        for name, leaf in leaves(model):
            handles.append(leaf.register_forward_pre_hook(start_counting))
            handles.append(leaf.register_forward_hook(hook_for(name), with_kwargs=True))
        for name, m in model.named_modules():
            handles += _path_hooks(tracer, m, name, type(model).__name__)
        model.eval()
        try:
            with torch.no_grad(), safe_kernels(model), tracer:  # safe_kernels: no oneDNN crash
                output = model(x)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: an interrupt, not the model's failure
            raise
        except BaseException as exc:  # noqa: BLE001 -- SystemExit, GeneratorExit too: one line
            raise ForwardFailed(tracer.where(), exc, list(x.shape)) from exc
        if x._version != tracer.version:
            what = tracer.changed_input or "the model changed its input in place"
            raise ConvscopeError(f"describe: {what}; convscope describes a model that leaves "
                                 "its input as it was (inplace=False there, or clone first)")
        returned = _first(tensors_in(output))
        if returned is not None:
            state = tracer.state(returned)
            output_flow = (unresolved(INVISIBLE, returned.dim() - 1) if state is UNSEEN
                           else state)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():  # per module: train(flag) would overwrite them all
            m.training = training
    return Trace(calls, output, tuple(probed), output_flow, tracer.alignment)


def _call_flow(tracer: _Tracer, name: str, module: nn.Module, inp: Optional[torch.Tensor],
               out: Optional[torch.Tensor], probed: list[str]) -> Flow:
    """The flow of a leaf call's output; the probe fallback where no rule explains it."""
    if out is None:
        return unresolved("returns no tensor", 0)
    axis = out.dim() - 1
    state, given = tracer.state(out), tracer.state(inp) if inp is not None else None
    if isinstance(state, Flow) and not state.uncatalogued:
        return state
    if state is None or given is None:  # made from parameters and constants only
        return unresolved(NOT_FROM_INPUT, axis)
    if given is UNSEEN:
        return unresolved(INVISIBLE, axis)
    if not given.finite:
        flow = given.on_axis(axis)
    else:
        flow = _probed(tracer, module, inp, given, axis)
        if flow.finite:
            probed.append(name)
        elif isinstance(state, Flow):  # name the op that has no rule, too
            flow = unresolved(f"{state.reason}, and {flow.reason}", axis)
    tracer.set(out, flow)
    return flow


def _probed(tracer: _Tracer, module: nn.Module, inp: torch.Tensor, given: Flow,
            axis: int) -> Flow:
    kind = type(module).__name__
    if given.time_axis != inp.dim() - 1:
        return unresolved(f"the impulse probe cannot measure {kind} (time is not its input's "
                          "last axis)", axis)
    tracer.paused = True
    try:
        with hooks_suspended(module):  # so the probe's copy runs none of them (describe_pass's)
            measured = probe_relations(module, list(inp.shape))
    finally:
        tracer.paused = False
    relation = dict(measured).get("") if measured else None
    if relation is None:
        return unresolved(f"the impulse probe could not resolve {kind}", axis)
    return given.through(relation, axis)


def _path_hooks(tracer: _Tracer, module: nn.Module, name: str, model_type: str) -> list:
    """Hooks keeping tracer.path: the module whose forward runs now, for the error lines."""
    label = f"{name} ({type(module).__name__})" if name else f"{model_type} (the model itself)"

    def enter(_module, _args):
        tracer.path.append(label)

    def leave(_module, _args, _output):
        if tracer.path:
            tracer.path.pop()
    return [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]


def exception_text(exc: BaseException) -> str:
    """`Type: message` on one line, the message cut to MAX_MESSAGE characters."""
    message = " ".join(str(exc).split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first(tensors: list[torch.Tensor]) -> Optional[torch.Tensor]:
    return tensors[0] if tensors else None


def _shape(tensor: Optional[torch.Tensor]) -> Optional[list[int]]:
    return None if tensor is None else list(tensor.shape)


def with_dependence(row: LayerRow, flow: Flow) -> LayerRow:
    """The row with its receptive field and lookahead from `flow`, or the reason there are none."""
    if flow.finite:
        return replace(row, receptive_field=flow.reach.receptive_field(),
                       lookahead=flow.reach.lookahead())
    return replace(row, receptive_reason=flow.reason)
