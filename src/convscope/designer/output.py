"""What the designer shows and writes: the console table, candidates.csv rows, model configs.

A model config is a `# @package _global_` file like configs/model's vocoder presets: its `data:`
node sets the frontend (log mel at sr with hop_length, for a feature stack; the waveform at
in_rate otherwise), so `scripts/run.py --config-dir <run dir> model=best` runs it as designed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from convscope.config.schema import LayerConfig
from convscope.designer.candidates import Candidate
from convscope.designer.published import padding_text
from convscope.designer.request import DesignRequest
from convscope.designer.score import Scores

COLUMNS = ("rank", "layers", "strides", "kernels", "padding", "output_padding", "macs_per_s",
           "tone_db", "image_db", "image_init", "rf_frames", "rf_ms", "lookahead_frames",
           "lookahead_ms", "upsample_rates", "upsample_kernel_sizes", "hifigan_padding")


@dataclass(frozen=True)
class Ranked:
    rank: int
    candidate: Candidate
    scores: Scores
    schedule: list[tuple[int, int]]


def _ints(values) -> str:
    return " ".join(str(v) for v in values)


def csv_row(item: Ranked) -> dict:
    c, s = item.candidate, item.scores
    return {"rank": item.rank, "layers": len(c.layers), "strides": _ints(c.strides),
            "kernels": _ints(c.kernels), "padding": _ints(lay.padding for lay in c.layers),
            "output_padding": _ints(lay.output_padding for lay in c.layers),
            "macs_per_s": s.macs, "tone_db": None if s.tone_db is None else round(s.tone_db, 2),
            "image_db": round(s.image_db, 2), "image_init": s.init, "rf_frames": s.rf,
            "rf_ms": round(s.rf_ms, 3), "lookahead_frames": s.lookahead,
            "lookahead_ms": round(s.lookahead_ms, 3),
            # the published config's keys (designer.published), pasteable as JSON lists
            "upsample_rates": str(list(c.strides)), "upsample_kernel_sizes": str(list(c.kernels)),
            "hifigan_padding": padding_text(c)}


def table_text(items: list[Ranked], unit: str) -> str:
    """Fixed-width columns, numbers right-aligned (text.py's tables)."""
    head = ("#", "strides", "kernels", "padding", "out_pad", "GMAC/s", "tone dB", "image dB",
            "image init", f"RF ms ({unit})", "ahead ms")
    rows = [head]
    for item in items:
        c, s = item.candidate, item.scores
        rows.append((str(item.rank), _ints(c.strides), _ints(c.kernels),
                     _ints(lay.padding for lay in c.layers),
                     _ints(lay.output_padding for lay in c.layers), f"{s.macs / 1e9:.3g}",
                     "-" if s.tone_db is None else f"{s.tone_db:.1f}", f"{s.image_db:.1f}",
                     s.init, f"{s.rf_ms:.1f} ({s.rf})", f"{s.lookahead_ms:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if i in (1, 2, 3, 4, 8) else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def n_fft_for(hop: int) -> int:
    """The power of two nearest 4 x hop (ties up): a window of about four hops."""
    target = 4 * hop
    low = 1 << (target.bit_length() - 1)
    return low if target - low < 2 * low - target else 2 * low


def model_yaml(item: Ranked, request: DesignRequest, layers: list[LayerConfig], name: str,
               header: list[str], n_fft: Optional[int]) -> str:
    lines = ["# @package _global_"] + [f"# {line}" for line in header]
    if request.features:
        lines += ["data:", "  features: log_mel", f"  sr: {request.output_rate}",
                  f"  n_fft: {n_fft or n_fft_for(request.hop)}", f"  hop_length: {request.hop}",
                  f"  n_mels: {request.in_channels}", "  center: false"]
    else:
        lines += ["data:", "  features: waveform", f"  sr: {request.input_rate}"]
    lines += ["model:", f"  name: {name}", "  layers:"]
    for layer in layers:
        init = "" if layer.init is None else f", init: {layer.init}"
        lines.append(f"    - {{type: {layer.type}, in_channels: {layer.in_channels}, "
                     f"out_channels: {layer.out_channels}, kernel_size: {layer.kernel_size}, "
                     f"stride: {layer.stride}, padding: {layer.padding}, "
                     f"output_padding: {layer.output_padding}{init}}}")
    return "\n".join(lines) + "\n"
