"""Does the stack give exactly the samples it should, and if not, which layer adds or drops them?

A vocoder's stack should turn T frames into T x hop_length samples; a resampler L samples into
L x up / down. Each convolution that changes the length by more than its stride does so by the
same number of samples per call whatever its input length, so that number (`extra`) and the
padding that cancels it are plain arithmetic over the layer's arguments:

    ConvTranspose1d: L_out - L_in*s           = d(k-1) + 1 - s - 2p + op
    Conv1d (L_in a multiple of s): L_out - L_in/s = floor((2p - d(k-1) - 1) / s) + 1

HiFi-GAN's `padding = (k - u) // 2` leaves one sample per layer when k - u is odd.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

from torch import nn

from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.lengths import conv_padding, single


@dataclass(frozen=True)
class Fix:
    """Constructor arguments that make the layer exact for every input length."""

    padding: int
    output_padding: int = 0

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Culprit:
    key: str  # the config key (model.layers.2) or the module's name in a user's model
    type: str
    extra_per_input: int  # samples beyond L_in*s (or L_in/s) each call adds (< 0: drops)
    fix: Optional[Fix]  # None: no padding/output_padding within torch's rules makes it exact
    why_no_fix: str = ""

    def as_json(self) -> dict:
        doc = {"key": self.key, "type": self.type, "extra_per_input": self.extra_per_input,
               "fix": None if self.fix is None else self.fix.as_json()}
        if self.why_no_fix:
            doc["why_no_fix"] = self.why_no_fix
        return doc


@dataclass(frozen=True)
class Alignment:
    """Expected vs actual output length of the whole stack, and the layers that explain it."""

    expected: int
    got: int
    expected_rule: str  # how `expected` was computed: "T x hop_length = 64 x 256"
    culprits: list[Culprit] = field(default_factory=list)
    target_samples: Optional[int] = None  # the audio a feature input was computed from
    note: str = ""  # e.g. the stack's rate factor differs from hop_length

    @property
    def difference(self) -> int:
        return self.got - self.expected

    @property
    def ok(self) -> bool:
        return self.difference == 0

    def as_json(self) -> dict:
        doc = {"expected": self.expected, "got": self.got, "difference": self.difference,
               "ok": self.ok, "expected_rule": self.expected_rule,
               "culprits": [c.as_json() for c in self.culprits]}
        if self.target_samples is not None:
            doc["target_samples"] = self.target_samples
        if self.note:
            doc["note"] = self.note
        return doc

    def summary(self) -> str:
        """One line for the log and the report."""
        head = f"expected {self.expected_rule} = {self.expected} samples"
        if self.target_samples is not None:
            head += f" (target audio {self.target_samples})"
        head += f", got {self.got}"
        if self.ok:
            return head + ": exact"
        parts = [f"{head}: {self.difference:+d}"]
        for c in self.culprits:
            fix = (f"padding={c.fix.padding} output_padding={c.fix.output_padding}"
                   if c.fix else f"no fix ({c.why_no_fix})")
            parts.append(f"{c.key} ({c.type}) adds {c.extra_per_input:+d} per call, fix: {fix}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


def layer_extra(module: nn.Module) -> Optional[int]:
    """Samples a Conv1d/ConvTranspose1d adds beyond an exact L_in*s (L_in/s) on every call;
    None for other layers (they keep the length or scale it exactly). Causal convs add nothing
    by construction: L_in*s, and ceil(L_in/s) = L_in/s for L_in a multiple of s."""
    if isinstance(module, (CausalConv1d, CausalConvTranspose1d)):
        return 0
    if isinstance(module, nn.ConvTranspose1d):
        k, s, p, op, d = _args(module)
        return d * (k - 1) + 1 - s - 2 * p + op
    if isinstance(module, nn.Conv1d):
        padding = conv_padding(module.padding)
        if padding == "same":
            return 0
        k, s, d = (single(module.kernel_size, "kernel_size"), single(module.stride, "stride"),
                   single(module.dilation, "dilation"))
        return (2 * padding - d * (k - 1) - 1) // s + 1
    return None


def exact_fix(module: nn.Module) -> tuple[Optional[Fix], str]:
    """The smallest padding (and output_padding) that make the layer add nothing, or why none
    exists within torch's rules (output_padding < stride or < dilation; padding >= 0).
    A causal conv is exact as it is: its padding is its own."""
    if isinstance(module, (CausalConv1d, CausalConvTranspose1d)):
        return Fix(0), ""
    if isinstance(module, nn.ConvTranspose1d):
        k, s, _, _, d = _args(module)
        span = d * (k - 1) + 1 - s  # needs 2p - op = span
        if span <= 0:
            op = -span
            if op < s or op < d:
                return Fix(0, op), ""
            return None, f"output_padding={op} would not be < stride={s} or dilation={d}"
        padding, op = (span + 1) // 2, span % 2
        if op and not (op < s or op < d):
            return None, (f"d*(k-1)+1-s = {span} is odd, which needs output_padding=1, and "
                          f"torch requires output_padding < stride={s} or dilation={d}")
        return Fix(padding, op), ""
    k, s, d = (single(module.kernel_size, "kernel_size"), single(module.stride, "stride"),
               single(module.dilation, "dilation"))
    span = d * (k - 1) + 1  # needs span - s <= 2p < span
    padding = max(0, -(-(span - s) // 2))
    if 2 * padding >= span:  # stride 1 with an even span: the padding would be asymmetric
        return None, (f"d*(k-1)+1 = {span} with stride {s} needs {span - s} padding samples in "
                      "all, which cannot split evenly: use padding='same'")
    return Fix(padding), ""


def culprit(key: str, module: nn.Module, type_name: str) -> Optional[Culprit]:
    extra = layer_extra(module)
    if not extra:
        return None
    fix, why = exact_fix(module)
    return Culprit(key, type_name, extra, fix, why)


def check_alignment(expected: int, got: int, expected_rule: str,
                    layers: Sequence[tuple[str, nn.Module, str]],
                    target_samples: Optional[int] = None, note: str = "") -> Alignment:
    """Compare the stack's output length with `expected`; `layers` are (key, module, type name)
    of every leaf layer call, in call order. A layer is a culprit when it adds or drops samples
    (whether or not the total happens to come out right: two culprits can cancel, but only for
    some lengths)."""
    culprits = [c for key, module, type_name in layers
                if (c := culprit(key, module, type_name)) is not None]
    return Alignment(expected, got, expected_rule, culprits, target_samples, note)


def expected_length(input_length: int, factor: Fraction, hop_length: Optional[int]
                    ) -> tuple[int, str, str]:
    """(expected samples, how it was computed, a note) for `input_length` frames (feature input,
    hop_length given) or samples through a stack scaling the rate by `factor`."""
    if hop_length is not None:
        note = ""
        if factor != hop_length:
            note = (f"the stack scales the rate by {factor}, not by hop_length={hop_length}: no "
                    f"padding makes T frames into T x {hop_length} samples")
        return (input_length * hop_length, f"T x hop_length = {input_length} x {hop_length}",
                note)
    exact = input_length * factor
    rule = f"L_in x {factor.numerator}/{factor.denominator} = {input_length} x {factor}" \
        if factor.denominator != 1 else f"L_in x {factor} = {input_length} x {factor}"
    if exact.denominator != 1:
        return int(exact), rule + f" (= {float(exact):g}, rounded down)", \
            f"L_in={input_length} is not a multiple of {factor.denominator}"
    return int(exact), rule, ""


def _args(module: nn.ConvTranspose1d) -> tuple[int, int, int, int, int]:
    return (single(module.kernel_size, "kernel_size"), single(module.stride, "stride"),
            single(module.padding, "padding"), single(module.output_padding, "output_padding"),
            single(module.dilation, "dilation"))
