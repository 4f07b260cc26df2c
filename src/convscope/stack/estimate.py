"""convscope.estimate: what a forward of any nn.Module will cost before it runs.

    e = convscope.estimate(generator, (1, 80, 100_000), sample_rate="22050/256",
                           block_samples=256)
    e.one_shot_bytes, e.one_shot_macs, e.left_context, e.block_bytes; print(e.summary())

Memory and MACs come from a forward on fake tensors at the full size (stack.fake_forward: the
model's own ops, no storage, so nothing scales with the length but the arithmetic); the context
a streamed block needs either side comes from the analysis of one small real forward
(stack.analysis: the composed dependency of the output on the input). Nothing runs at full size.

`one_shot_bytes` is what the forward allocates at its peak beyond the model and its input (the
output included): the figure to hold against free memory. A block is `block_samples` input
samples plus the context either side, forwarded alone (an overlap stream's block); where the
context is unbounded (an LSTM, a norm over the whole signal) it is the block alone, as a
stateful stream feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence, Union

import torch
from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.analysis import ForwardFailed, Trace, trace_forward
from convscope.stack.fake_forward import FakeForward, fake_forward
from convscope.stack.layers.flow import Flow
from convscope.stack.rates import exact_rate
from convscope.text import fmt_bytes, fmt_macs

Rate = Union[int, float, str, Fraction]
# input samples of the small real forward the contexts come from: the first the model accepts
ANALYSED_LENGTHS = (32, 256, 2048)
# two fake lengths this far apart give the output rate exactly for any rate p/q with q | RATE_SPAN
RATE_SPAN = 2 ** 10 * 3 ** 4 * 5 ** 3 * 7 ** 2
# Peak bytes of a forward per byte of its input, well above any vocoder's: the published ones
# measure 1000-2000 (HiFi-GAN V1 ~1800, BigVGAN v2 24 kHz ~1300); a 512x generator with 1536
# channels on 128 mels some 5000. Below this, describe's memory check is skipped.
GUARD_EXPANSION = 100_000


class EstimateFailed(ConvscopeError):
    """The model's forward cannot run on fake tensors (an op needs real values)."""


@dataclass(frozen=True)
class ModelEstimate:
    one_shot_bytes: int  # the forward's peak allocation beyond the model and its input
    one_shot_macs: int
    left_context: Optional[int]  # input samples a streamed block needs before it; None: unbounded
    right_context: Optional[int]  # ... and after it (the lookahead)
    unbounded_reason: Optional[str]  # why the context is unbounded, with the module path
    block_samples: Optional[int]
    block_bytes: Optional[int]
    block_macs: Optional[int]
    output_rate: Fraction  # output samples per input sample
    input_shape: tuple[int, ...] = ()
    sample_rate: Optional[Fraction] = None
    parameter_bytes: int = 0  # the model's parameters and buffers, already in memory
    output_shape: tuple[int, ...] = ()  # what the one-shot forward returns (its first tensor)

    def as_json(self) -> dict:
        return {"input_shape": list(self.input_shape),
                "sample_rate": None if self.sample_rate is None else str(self.sample_rate),
                "one_shot_bytes": self.one_shot_bytes, "one_shot_macs": self.one_shot_macs,
                "parameter_bytes": self.parameter_bytes, "output_shape": list(self.output_shape),
                "left_context": self.left_context, "right_context": self.right_context,
                "unbounded_reason": self.unbounded_reason,
                "block_samples": self.block_samples, "block_bytes": self.block_bytes,
                "block_macs": self.block_macs, "output_rate": float(self.output_rate),
                "output_rate_fraction": str(self.output_rate)}

    def summary(self) -> str:
        text = (f"one-shot forward of {list(self.input_shape)}: peak "
                f"{fmt_bytes(self.one_shot_bytes)}, {fmt_macs(self.one_shot_macs)}")
        if self.block_samples is not None:
            text += (f"; a block of {self.block_samples} samples: {fmt_bytes(self.block_bytes)}, "
                     f"{fmt_macs(self.block_macs)}")
        if self.unbounded_reason is not None:
            return text + f"; context unbounded: {self.unbounded_reason}"
        return text + (f"; context {self._samples(self.left_context)} before, "
                       f"{self._samples(self.right_context)} after")

    def _samples(self, count: int) -> str:
        if self.sample_rate is None:
            return f"{count} samples"
        return f"{count} samples ({float(count / self.sample_rate * 1000):.1f} ms)"


def estimate(model: nn.Module, input_shape: Sequence[int], *, sample_rate: Optional[Rate],
             block_samples: Optional[int] = None) -> ModelEstimate:
    """Peak memory and MACs of `model` on an input of `input_shape` (time last), one-shot and
    for one streamed block of `block_samples` input samples, and the context that block needs.
    Raises ConvscopeError (one line) for a bad shape or a forward that cannot be estimated."""
    shape = _checked_shape(input_shape, block_samples)
    rate = None if sample_rate is None else exact_rate(sample_rate)
    dtype, device = _dtype_device(model)
    trace = _analysed(model, shape, dtype, device)  # first: a real forward says where it raised
    whole = _fake(model, shape, dtype, device)
    left, right, reason, output_rate = _context(trace)
    if output_rate is None:  # no finite reach: the rate from two output lengths
        longer = _fake(model, (*shape[:-1], shape[-1] + RATE_SPAN), dtype, device)
        output_rate = Fraction(longer.output_shape[-1] - whole.output_shape[-1], RATE_SPAN)
    block = None
    if block_samples is not None:
        block = _fake(model, (*shape[:-1], block_samples + (left or 0) + (right or 0)),
                      dtype, device)
    parameters = {id(t): t.nbytes for t in (*model.parameters(), *model.buffers())}
    return ModelEstimate(
        whole.peak_bytes, whole.macs, left, right, reason, block_samples,
        None if block is None else block.peak_bytes, None if block is None else block.macs,
        output_rate, shape, rate, sum(parameters.values()), whole.output_shape)


def _checked_shape(input_shape: Sequence[int], block_samples: Optional[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in input_shape)
        valid = (len(shape) >= 2 and all(n == m and n > 0 for n, m in zip(shape, input_shape))
                 and not any(isinstance(n, bool) for n in input_shape))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConvscopeError(f"estimate: input_shape must be positive ints with time last, like "
                             f"(1, 80, 100), got {input_shape!r}")
    if block_samples is not None and (isinstance(block_samples, bool)
                                      or not isinstance(block_samples, int) or block_samples < 1):
        raise ConvscopeError(f"estimate: block_samples must be a positive int, got "
                             f"{block_samples!r}")
    return shape


def _dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    tensors = [*model.parameters(), *model.buffers()]
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
    return dtype, tensors[0].device if tensors else torch.device("cpu")


def _fake(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype,
          device: torch.device) -> FakeForward:
    try:
        return fake_forward(model, shape, dtype, device)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 -- any op of the user's forward: one line
        message = " ".join(str(exc).split())[:200]
        raise EstimateFailed(f"estimate: {type(model).__name__}'s forward cannot run on fake "
                             f"tensors of shape {list(shape)} ({type(exc).__name__}: "
                             f"{message})") from exc


def _analysed(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> Trace:
    lengths = sorted({min(shape[-1], length) for length in ANALYSED_LENGTHS})
    for length in lengths:
        try:
            return trace_forward(model, torch.zeros((*shape[:-1], length), dtype=dtype,
                                                    device=device))
        except ForwardFailed as exc:
            if length == lengths[-1]:  # too short is not why: the error says what is
                raise EstimateFailed(_reworded(exc)) from exc
        except ConvscopeError as exc:  # it changed its input in place
            raise EstimateFailed(_reworded(exc)) from exc
    raise AssertionError("unreachable: lengths is never empty")


def _reworded(exc: ConvscopeError) -> str:
    """The analysis's one line, said by estimate."""
    return "estimate: " + str(exc).removeprefix("describe: ")


def _context(trace: Trace) -> tuple[Optional[int], Optional[int], Optional[str],
                                    Optional[Fraction]]:
    """(left, right, reason, rate) of the model output's dependence on its input."""
    flow = trace.output_flow
    if flow is None:
        raise ConvscopeError(f"estimate: the model's output does not depend on its input "
                             f"(it returned {type(trace.output).__name__})")
    if not flow.finite:
        return None, None, _located(flow, trace), None
    reach = flow.reach
    left = right = 0
    for phase, span in enumerate(reach.spans):
        if span is not None:
            now = phase * reach.shift // reach.period  # the input sample output `phase` is at
            left, right = max(left, now - span[0]), max(right, span[1] - now)
    return left, right, None, reach.rate


def _located(flow: Flow, trace: Trace) -> str:
    """The reason, with the path of the first leaf call that gave it."""
    origin = next((call.name for call in trace.calls
                   if not call.flow.finite and call.flow.reason == flow.reason), None)
    if origin is None:
        return flow.reason
    what, colon, why = flow.reason.partition(": ")
    return f"{what} at {origin}: {why}" if colon else f"{flow.reason} (at {origin})"


def available_memory_bytes() -> Optional[int]:
    """What the kernel says a process may still allocate without swapping (MemAvailable);
    None where /proc/meminfo does not say (not Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_forward_fits(model: nn.Module, example: torch.Tensor, who: str) -> None:
    """Refuse, in one line and before it runs, a forward of `example` whose estimated peak
    exceeds the memory available now. A forward fake tensors cannot run is not refused: the
    check only speaks when it knows. An example so small that even GUARD_EXPANSION bytes per
    byte of it would fit is not estimated: the fake forward costs about as much CPU as a real
    one of a second of audio, and would double describe's time for nothing."""
    if example.device.type == "cuda":
        available = torch.cuda.mem_get_info(example.device)[0]
    else:
        available = available_memory_bytes()
    if available is None or example.numel() * example.element_size() * GUARD_EXPANSION <= available:
        return
    try:
        needed = fake_forward(model, tuple(example.shape), example.dtype, example.device,
                              count_macs=False)
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 -- unknown cost: let the forward itself tell
        return
    if needed.peak_bytes > available:
        shorter = (*tuple(example.shape)[:-1], min(example.shape[-1], 100))
        raise ConvscopeError(
            f"{who}: a forward of {type(model).__name__} on an input of shape "
            f"{list(example.shape)} needs ~{fmt_bytes(needed.peak_bytes)} at its peak "
            f"(convscope.estimate), more than the {fmt_bytes(available)} available; the rows "
            f"do not depend on the length past the receptive field, so describe a shorter "
            f"example, e.g. {shorter}")
