"""Every stack of ConvTranspose1d layers that turns L inputs into exactly L x ratio outputs.

The strides are the ordered factorizations of the ratio into factors >= 2 (every order: x8 x8
x2 x2 and x2 x2 x8 x8 differ in cost and lookahead). A layer's kernel is m x stride for one m
shared by the stack (HiFi-GAN's k = 2u) or, with explicit `kernels`, any listed size per layer.
Its padding and output_padding come from stack.alignment.exact_fix, the check a run makes: a
ConvTranspose1d then gives L_in x stride samples for every L_in >= 1. A stride/kernel pair is
dropped, with the reason, when no padding within torch's rules is exact or when the kernel is
shorter than the stride (stride - kernel of every stride outputs would get no input at all).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator, Optional, Union

from torch import nn

from convscope.designer.request import DesignRequest
from convscope.stack.alignment import exact_fix


# The longest kernel scored: the image level (score.py) runs white noise through the stack's
# interpolating init, whose cost and memory grow with the taps; 'kernels=[1000000000]' took 14 GB.
MAX_KERNEL = 4096
# Impulse-response samples scored in all (candidates x ratio): hop=720720 with any stride implies
# tens of thousands of stacks of 720720 samples each, hours; the default hop=256 scores 20000.
SCORED_SAMPLES = 20_000_000


@dataclass(frozen=True)
class Layer:
    stride: int
    kernel: int
    padding: int
    output_padding: int


@dataclass(frozen=True)
class Candidate:
    layers: tuple[Layer, ...]

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(layer.stride for layer in self.layers)

    @property
    def kernels(self) -> tuple[int, ...]:
        return tuple(layer.kernel for layer in self.layers)

    def label(self) -> str:
        return " ".join(f"{layer.stride}/{layer.kernel}" for layer in self.layers)


@dataclass(frozen=True)
class Dropped:
    stride: int
    kernel: int
    reason: str

    def text(self) -> str:
        return f"stride {self.stride}, kernel {self.kernel}: {self.reason}"

    @property
    def holes(self) -> bool:
        return self.kernel < self.stride


@dataclass
class Enumeration:
    candidates: list[Candidate]
    dropped: list[Dropped] = field(default_factory=list)  # each pair once
    usable: set[tuple[int, int]] = field(default_factory=set)  # (stride, kernel): exact layers
    layers: range = range(0)
    notes: list[str] = field(default_factory=list)


def prime_factor_count(n: int) -> int:
    count, p = 0, 2
    while p * p <= n:
        while n % p == 0:
            n, count = n // p, count + 1
        p += 1
    return count + (n > 1)


def stride_orders(ratio: int, layers: int, max_stride: Optional[int] = None
                  ) -> Iterator[tuple[int, ...]]:
    """Every ordered tuple of `layers` integers in [2, max_stride] whose product is `ratio`.
    Only divisors are tried (a ratio of 720720 with any stride: 240 divisors, not 720720 values
    at each of up to six levels)."""
    top = ratio if max_stride is None else min(ratio, max_stride)
    if layers == 1:
        if 2 <= ratio <= top:
            yield (ratio,)
        return
    for first in divisors(ratio):
        if 2 <= first <= top:
            for rest in stride_orders(ratio // first, layers - 1, max_stride):
                yield (first,) + rest


@lru_cache(maxsize=None)
def divisors(n: int) -> tuple[int, ...]:
    """The divisors of n in increasing order (trial division up to sqrt(n))."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return tuple(small + large[::-1])


@lru_cache(maxsize=None)
def layer_geometry(stride: int, kernel: int) -> Union[Layer, str]:
    """The exact layer, or why this pair has none. exact_fix reads only the module's geometry,
    so a meta-device module (no weights allocated) is enough."""
    if kernel < stride:
        return (f"kernel_size < stride leaves {stride - kernel} of every {stride} output samples "
                "without input (only the bias reaches them)")
    if kernel > MAX_KERNEL:
        return (f"kernel_size above {MAX_KERNEL} taps is not scored (its image level takes "
                "memory and time in proportion; published vocoders use at most a few hundred)")
    module = nn.ConvTranspose1d(1, 1, kernel, stride=stride, device="meta")
    fix, why = exact_fix(module)
    if fix is None:
        return why
    return Layer(stride, kernel, fix.padding, fix.output_padding)


def layer_range(request: DesignRequest) -> tuple[range, Optional[str]]:
    """request's layer counts, the minimum lowered to the ratio's prime factor count when the
    ratio has fewer (x3 is one layer) so that every ratio gets a stack."""
    most = prime_factor_count(request.ratio)
    low = min(request.min_layers, most)
    note = None
    if low < request.min_layers:
        note = (f"x{request.ratio} has {most} prime factor{'s' * (most > 1)}: stacks of {low} "
                f"layer{'s' * (low > 1)} (min_layers={request.min_layers} lowered)")
    return range(low, min(request.max_layers, most) + 1), note


def kernel_choices(request: DesignRequest, strides: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    if request.kernels is None:
        for m in request.multiples:
            yield tuple(m * s for s in strides)
    else:
        yield from itertools.product(*([sorted(set(request.kernels))] * len(strides)))


def enumerate_candidates(request: DesignRequest, max_candidates: int) -> Enumeration:
    result = Enumeration([])
    layers, note = layer_range(request)
    result.layers = layers
    if note:
        result.notes.append(note)
    dropped: dict[tuple[int, int], Dropped] = {}
    for count in layers:
        for strides in stride_orders(request.ratio, count, request.max_stride):
            for kernels in kernel_choices(request, strides):
                built = [layer_geometry(s, k) for s, k in zip(strides, kernels)]
                bad = [(s, k, why) for s, k, why in zip(strides, kernels, built)
                       if isinstance(why, str)]
                for s, k, why in bad:
                    dropped.setdefault((s, k), Dropped(s, k, why))
                result.usable.update((s, k) for s, k, why in zip(strides, kernels, built)
                                     if not isinstance(why, str))
                if bad:
                    continue
                if len(result.candidates) == max_candidates:
                    result.notes.append(f"stopped at max_candidates={max_candidates}")
                    result.dropped = list(dropped.values())
                    return result
                if (len(result.candidates) + 1) * request.ratio > SCORED_SAMPLES:
                    result.notes.append(
                        f"stopped at {len(result.candidates)} candidates: each is scored on its "
                        f"{request.ratio}-sample impulse response, and {SCORED_SAMPLES:.0e} "
                        "samples in all bound the time (set max_stride or min_layers to choose "
                        "which stacks are tried)")
                    result.dropped = list(dropped.values())
                    return result
                result.candidates.append(Candidate(tuple(built)))
    result.dropped = list(dropped.values())
    return result
