"""describe(): every leaf layer call of any nn.Module, in call order, as the CLI's table.

    d = convscope.describe(generator, torch.randn(1, 80, 32), sample_rate="22050/256")
    print(d); d.rows[3].formula; d.to_dict(); d   # in Jupyter: an HTML table

One forward pass of the example with a forward hook on every leaf module, so nested containers,
residual adds, user subclasses and a layer called twice (two rows) all come out as torch ran
them. Each row is computed by stack.rows.layer_row, the function the config pipeline uses too;
its receptive field and lookahead come from the same forward, traced op by op (stack.analysis
and the layer catalogue, stack.layers), or a reason where they are not finite.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.errors import ConvscopeError
from convscope.stack.analysis import EXAMPLE_SOURCE, leaves, trace_forward, with_dependence
from convscope.stack.estimate import check_forward_fits
from convscope.stack.layer_formulas import formula
from convscope.stack.rates import exact_rate
from convscope.stack.receptive import latency
from convscope.stack.rows import LayerRow, last_length, layer_row
from convscope.text import format_table, layer_table

__all__ = ["Description", "LayerRow", "describe", "formula"]

Rate = Union[int, float, str, Fraction]
# A shape describe makes zeros of: 2**26 float32 values are 256 MB before the model's own
# intermediates; a shape of 2**70 would not even fit torch's size arithmetic.
MAX_EXAMPLE_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class Description:
    """What describe() saw: `rows` (LayerRow, one per leaf call), printable and JSON-able."""

    rows: list[LayerRow]
    sample_rate: Optional[Fraction] = None  # the example's rate, when one was given
    # leaf calls no catalogue rule explained, measured by the impulse probe instead (by name)
    probed: tuple[str, ...] = ()

    @property
    def latency(self) -> Optional[dict]:
        """shapes.json's latency: the last row's lookahead in input samples (and in ms, given a
        sample rate); None when the last row's lookahead is not known."""
        return latency(self.rows, self.sample_rate)

    def to_dict(self) -> dict:
        """{"layers": [...], "latency": {...}}: shapes.json's layer keys plus name (and the
        rates, when given); latency when known."""
        doc = {"layers": [row.as_json() for row in self.rows]}
        if self.latency is not None:
            doc["latency"] = self.latency
        return doc

    def __str__(self) -> str:
        return format_table(self.rows, names=True, rates=self.sample_rate is not None)

    __repr__ = __str__  # the table is what a REPL user wants to see, as torchinfo's summary

    def _repr_html_(self) -> str:
        header, body = layer_table(self.rows, names=True, rates=self.sample_rate is not None)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in (*header, "formula"))
        lines = ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (*cells, row.formula))
                 + "</tr>" for cells, row in zip(body, self.rows)]
        return ("<table class=\"convscope-describe\"><thead><tr>" + head + "</tr></thead><tbody>"
                + "".join(lines) + "</tbody></table>")


def describe(module: nn.Module, example: Union[torch.Tensor, Sequence[int]], *,
             sample_rate: Optional[Rate] = None) -> Description:
    """Run `example` (a tensor, or a shape: zeros on the module's device and dtype) through
    `module` once and describe every leaf layer call, in call order.

    The module is left as it was: hooks removed (also when its forward raises), parameters
    untouched (no_grad), every submodule's training flag restored after an eval-mode pass (so
    BatchNorm statistics do not move and dropout does not matter). `sample_rate` (int, Fraction,
    "22050/256" or float) adds each row's exact rate in and out. Each row's receptive field and
    lookahead (in the example's samples) come from the same forward: every torch op it runs is
    composed by the layer catalogue's rule for it (stack.layers); a row without a finite one
    states why (`receptive_reason`). A leaf no rule explains is measured alone by the impulse
    probe (its name is then in `probed`).

    A forward that raises, returns something other than a tensor or changes its input in place
    is a ConvscopeError of one line naming the module it was in and what it did. An example whose
    forward would need more memory than is available (convscope.estimate, on fake tensors) is
    refused the same way, before it runs.
    """
    return _described(module, example, sample_rate, tensor_out=True)


def _described(module: nn.Module, example: Union[torch.Tensor, Sequence[int]],
               sample_rate: Optional[Rate], tensor_out: bool) -> Description:
    if not isinstance(module, nn.Module):
        raise ConvscopeError(f"describe needs a torch.nn.Module, got {type(module).__name__}")
    rate = None if sample_rate is None else exact_rate(sample_rate)
    x = _example_tensor(module, example)
    check_forward_fits(module, x, "describe")
    return _rows_of(module, x, rate, tensor_out)


def _rows_of(module: nn.Module, x: torch.Tensor, rate: Optional[Fraction],
             tensor_out: bool) -> Description:
    trace = trace_forward(module, x)
    if tensor_out and not isinstance(trace.output, torch.Tensor):
        raise ConvscopeError(f"describe: {type(module).__name__} (the model itself) returned "
                             f"{_holds(trace.output)}, not a tensor; describe a module whose "
                             "forward returns the output tensor (wrap it to pick one)")
    calls = trace.calls
    rows, rate_of = [], {EXAMPLE_SOURCE: rate}
    # parametrized weights (weight_norm) are read for their shapes: computed once per row, the
    # cache dropped after it. One cache over the forward or over every row would hold a copy of
    # every weight at once (BigVGAN v2: 450 MB, four times its forward's peak at 94 frames).
    with torch.no_grad():
        for index, call in enumerate(calls):
            source = call.source if call.source is not None else _likely_source(calls, index, x)
            with parametrize.cached():
                row = layer_row(index, call.name, call.module, call.input_shape,
                                call.output_shape, rate_of[source])
            rate_of[index] = row.rate_out
            if call.macs:  # the convs a leaf runs itself (BigVGAN's anti-aliasing filters)
                row = replace(row, macs=call.macs)
            rows.append(with_dependence(row, call.flow))
    return Description(rows, rate, trace.probed)


def _likely_source(calls: list, index: int, x: torch.Tensor) -> int:
    """A call whose input no hook produced (it came out of F.leaky_relu, an add, a cat...): assume
    it descends from the latest earlier call with the same length, else the example, else the
    call just before. Exact for chains and residual blocks; a guess for exotic graphs."""
    length = last_length(calls[index].input_shape)
    for earlier in range(index - 1, -1, -1):
        if length is not None and last_length(calls[earlier].output_shape) == length:
            return earlier
    if length is None or length == last_length(list(x.shape)) or index == 0:
        return EXAMPLE_SOURCE
    return index - 1


def _example_tensor(module: nn.Module, example: Any) -> torch.Tensor:
    if isinstance(example, torch.Tensor):
        return example
    if (isinstance(example, (tuple, list)) and example
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in example)):
        if math.prod(example) > MAX_EXAMPLE_ELEMENTS:
            raise ConvscopeError(
                f"describe: an example of shape {tuple(example)} holds {math.prod(example):.3g} "
                f"values, more than {MAX_EXAMPLE_ELEMENTS:.3g}; the rows do not depend on the "
                "length past the receptive field, so describe a short example, e.g. "
                f"{(*tuple(example)[:-1], 100)}")
        tensors = list(module.parameters()) + list(module.buffers())
        device = tensors[0].device if tensors else None
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), None)
        return torch.zeros(tuple(example), device=device, dtype=dtype)
    raise ConvscopeError("describe: example must be a torch.Tensor or a shape tuple like "
                         f"(1, 80, 32), got {example!r}")


def _holds(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a {type(value).__name__} with keys {', '.join(map(str, list(value)[:6]))}"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class DescribedPass:
    """describe() of one forward pass, with what that pass computed: the module's return value
    and, by row index, the outputs of the leaf calls `keep` picked (on the CPU, float32)."""

    description: Description
    output: Any
    kept: dict[int, torch.Tensor]
    seconds: float = 0.0  # wall time of the module's forward (hooks included), for the run's cost
    # the kept calls' first inputs (their first `input_channels` channels), by row index
    kept_inputs: dict[int, torch.Tensor] = field(default_factory=dict)


def describe_pass(module: nn.Module, example: torch.Tensor, *,
                  sample_rate: Optional[Rate] = None,
                  keep: Callable[[nn.Module], bool] = lambda leaf: False,
                  input_channels: int = 0) -> DescribedPass:
    """describe(module, example) and the results of the same pass, for callers that also want
    the output (the pipeline's model=module runs: a big generator should run once, not twice).

    Rows are leaf calls in call order, so counting leaf calls during the module's own (first)
    call gives each kept output its row index. The copies are taken in the hook, before a later
    in-place op (LeakyReLU(inplace=True)) can change the tensor."""
    kept: dict[int, torch.Tensor] = {}
    kept_inputs: dict[int, torch.Tensor] = {}  # figures draw a layer's own input (a few channels)
    state = {"active": False, "calls": 0, "started": 0.0, "seconds": 0.0}
    returned: list[Any] = []

    def enter(_module, _args):
        state["active"] = not returned  # only the first call of the module is the described one
        state["started"] = time.perf_counter()

    def leave(_module, _args, output):
        if state["active"]:
            returned.append(output)
            state["seconds"] = time.perf_counter() - state["started"]
        state["active"] = False

    def leaf_hook(leaf: nn.Module):
        wanted = keep(leaf)

        def hook(_module, args, output):
            if not state["active"]:
                return
            if wanted and isinstance(output, torch.Tensor):
                kept[state["calls"]] = output.detach().to("cpu", torch.float32, copy=True)
                if input_channels and args and isinstance(args[0], torch.Tensor):
                    kept_inputs[state["calls"]] = args[0].detach()[:, :input_channels].to(
                        "cpu", torch.float32, copy=True)
            state["calls"] += 1
        return hook

    handles = []
    try:  # leaves first: a module that is its own only leaf must count before `leave` runs
        handles += [leaf.register_forward_hook(leaf_hook(leaf)) for _, leaf in leaves(module)]
        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
        # its caller words a return value that is not a waveform in its own terms
        description = _described(module, example, sample_rate, tensor_out=False)
    finally:
        for handle in handles:
            handle.remove()
    return DescribedPass(description, returned[0] if returned else None, kept, state["seconds"],
                         kept_inputs)
