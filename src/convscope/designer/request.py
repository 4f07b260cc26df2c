"""What the user asked the designer for, checked: the ratio, the rates, the search space.

Two kinds of stack: feature frames -> audio (sr, hop: the ratio is hop, the input rate sr/hop
frames per second, n_mels input channels) and waveform -> waveform (in_rate, out_rate: the ratio
out_rate/in_rate, which must be an integer > 1, one input channel). Bad values raise a
ConvscopeError naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from convscope.config.schema import DesignConfig
from convscope.errors import ConvscopeError

MAX_LAYERS = 8  # strides >= 2: 2**8 = 256 already; deeper searches only grow the table
RANK_KEYS = ("macs", "tone_db", "image_db", "rf_ms", "lookahead_ms", "layers")


@dataclass(frozen=True)
class DesignRequest:
    ratio: int  # output samples per input sample (frame)
    input_rate: Fraction  # frames or samples per second into the stack
    output_rate: int
    in_channels: int
    hop: Optional[int]  # feature case: frames -> audio
    min_layers: int
    max_layers: int
    max_stride: Optional[int]
    multiples: tuple[int, ...]
    kernels: Optional[tuple[int, ...]]

    @property
    def features(self) -> bool:
        return self.hop is not None

    def describe(self) -> str:
        if self.features:
            return (f"sr={self.output_rate} hop={self.hop}: {self.in_channels} feature channels "
                    f"at {float(self.input_rate):g} frames/s -> audio, x{self.ratio}")
        return (f"in_rate={self.input_rate} out_rate={self.output_rate}: waveform -> waveform, "
                f"x{self.ratio}")


def design_request(cfg: DesignConfig) -> DesignRequest:
    features = cfg.sr is not None or cfg.hop is not None
    waveform = cfg.in_rate is not None or cfg.out_rate is not None
    if features and waveform:
        raise ConvscopeError("sr, hop / in_rate, out_rate: give sr and hop (feature frames -> "
                             "audio) or in_rate and out_rate (waveform -> waveform), not both")
    if not features and not waveform:
        raise ConvscopeError("sr, hop / in_rate, out_rate: nothing to design for; give sr and "
                             "hop (feature frames -> audio, e.g. sr=22050 hop=256) or in_rate and "
                             "out_rate (waveform -> waveform, e.g. in_rate=16000 out_rate=48000)")
    _check_search(cfg)
    if features:
        sr = _positive(cfg.sr, "sr", "a sample rate in Hz")
        hop = _positive(cfg.hop, "hop", "samples per frame")
        if hop < 2:
            raise ConvscopeError(f"hop: a stack that upsamples needs hop >= 2, got {hop}")
        n_mels = _positive(cfg.n_mels, "n_mels", "input channels")
        return _request(cfg, hop, Fraction(sr, hop), sr, n_mels, hop)
    in_rate = _positive(cfg.in_rate, "in_rate", "a sample rate in Hz")
    out_rate = _positive(cfg.out_rate, "out_rate", "a sample rate in Hz")
    ratio = Fraction(out_rate, in_rate)
    if ratio.denominator != 1 or ratio < 2:
        raise ConvscopeError(
            f"out_rate: {out_rate} / in_rate {in_rate} = {ratio} is not an integer > 1; only "
            f"upsampling by an integer factor is supported (ConvTranspose1d strides multiply "
            f"to it)")
    return _request(cfg, int(ratio), Fraction(in_rate), out_rate, 1, None)


def _request(cfg: DesignConfig, ratio: int, input_rate: Fraction, output_rate: int,
             in_channels: int, hop: Optional[int]) -> DesignRequest:
    if cfg.max_stride is not None:
        if cfg.max_stride < 2:
            raise ConvscopeError(f"max_stride: must be >= 2 or null, got {cfg.max_stride}")
        largest = _largest_prime_factor(ratio)
        if largest > cfg.max_stride:
            raise ConvscopeError(
                f"max_stride: the ratio {ratio} has the prime factor {largest} > max_stride="
                f"{cfg.max_stride}, so no stack of strides <= {cfg.max_stride} multiplies to it; "
                f"raise max_stride (null: any)")
    return DesignRequest(ratio, input_rate, output_rate, in_channels, hop, cfg.min_layers,
                         cfg.max_layers, cfg.max_stride, tuple(cfg.multiples),
                         None if cfg.kernels is None else tuple(cfg.kernels))


def _largest_prime_factor(n: int) -> int:
    largest, factor = 1, 2
    while factor * factor <= n:
        while n % factor == 0:
            largest, n = factor, n // factor
        factor += 1
    return max(largest, n)


def _positive(value, key: str, what: str) -> int:
    if value is None:
        raise ConvscopeError(f"{key}: missing ({what})")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConvscopeError(f"{key}: must be an integer >= 1 ({what}), got {value!r}")
    return value


def _check_search(cfg: DesignConfig) -> None:
    if not 1 <= cfg.min_layers <= cfg.max_layers <= MAX_LAYERS:
        raise ConvscopeError(f"min_layers, max_layers: need 1 <= min_layers <= max_layers <= "
                             f"{MAX_LAYERS}, got {cfg.min_layers} and {cfg.max_layers}")
    for key, values in (("multiples", cfg.multiples), ("kernels", cfg.kernels)):
        if values is not None and (not values or any(v < 1 for v in values)):
            raise ConvscopeError(f"{key}: needs integers >= 1, got {list(values)}")
    for key in ("channels", "out_channels", "top", "measure", "probe_channels",
                "max_candidates"):
        if getattr(cfg, key) < (0 if key == "measure" else 1):
            raise ConvscopeError(f"{key}: must be >= {0 if key == 'measure' else 1}, got "
                                 f"{getattr(cfg, key)}")
    if not 0 < cfg.channel_factor <= 1:
        raise ConvscopeError(f"channel_factor: must be in (0, 1], got {cfg.channel_factor}")
    for key in cfg.rank_by:
        if key.lstrip("-") not in RANK_KEYS:
            raise ConvscopeError(f"rank_by: {key!r} is not a score; choose from "
                                 f"{', '.join(RANK_KEYS)} ('-' in front: higher first)")
    if not cfg.rank_by:
        raise ConvscopeError("rank_by: needs at least one key")
