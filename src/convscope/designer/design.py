"""The designer end to end: enumerate, score, rank, measure the leaders, write the run dir."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from convscope.config.schema import DesignConfig
from convscope.designer.candidates import Enumeration, enumerate_candidates
from convscope.designer.output import COLUMNS, Ranked, csv_row, model_yaml, table_text
from convscope.designer.published import hifigan_fields
from convscope.designer.rank import cheap_keys, sort_key
from convscope.designer.request import DesignRequest, design_request
from convscope.designer.score import (
    TONE_MAX_SAMPLES,
    score,
    stride_tone_db,
    tone_is_measurable,
)
from convscope.designer.stacks import channel_schedule, stack_layers
from convscope.errors import ConvscopeError
from convscope.files import write_csv, write_text
from convscope.rundir import RunDir

log = logging.getLogger("convscope")


@dataclass
class DesignResult:
    request: DesignRequest
    ranked: list[Ranked]  # every candidate, best first
    enumeration: Enumeration
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def summary(self, top: int) -> str:
        unit = "frames" if self.request.features else "samples"
        lines = [self.request.describe(),
                 f"{len(self.ranked)} exact stacks; the best {min(top, len(self.ranked))}:", "",
                 table_text(self.ranked[:top], unit), ""]
        lines += self.notes + [f"wrote {path}" for path in self.written]
        return "\n".join(lines)


def design(cfg: DesignConfig, out_dir: Path) -> DesignResult:
    request = design_request(cfg)
    found = enumerate_candidates(request, cfg.max_candidates)
    if not found.candidates:
        raise ConvscopeError(nothing_found(request, found))
    ranked = _rank(cfg, request, found)
    result = DesignResult(request, ranked, found, notes=list(found.notes))
    result.notes += _notes(cfg, request, found)
    _write(cfg, request, result, RunDir(Path(out_dir)))
    return result


def nothing_found(request: DesignRequest, found: Enumeration) -> str:
    """Why no stack survived: the pairs that work, and the dropped ones grouped by reason."""
    key = "kernels" if request.kernels is not None else "multiples"
    values = request.kernels if request.kernels is not None else request.multiples
    usable = ", ".join(f"{s}/{k}" for s, k in sorted(found.usable)) or "none"
    holes = [d for d in found.dropped if d.holes]
    parts = [f"usable stride/kernel pairs {usable}"]
    if holes:
        parts.append("kernel_size < stride (outputs no input reaches) for " + ", ".join(
            f"{d.stride}/{d.kernel}" for d in sorted(holes, key=lambda d: (d.stride, d.kernel))))
    parts += [d.text() for d in found.dropped if not d.holes]
    return (f"{key}: no stack of {found.layers.start}-{found.layers.stop - 1} layers with "
            f"{key}={list(values)} gives exactly x{request.ratio}; " + "; ".join(parts))


def _schedule(cfg: DesignConfig, request: DesignRequest, layers: int, cap=None):
    return channel_schedule(layers, request.in_channels, cfg.channels, cfg.channel_factor,
                            cfg.out_channels, cap)


def _rank(cfg: DesignConfig, request: DesignRequest, found: Enumeration) -> list[Ranked]:
    scored = []
    for candidate in found.candidates:
        schedule = _schedule(cfg, request, len(candidate.layers))
        scored.append((candidate, score(candidate, schedule, request.input_rate,
                                        request.output_rate)))
    scored.sort(key=sort_key(cheap_keys(cfg.rank_by)))
    leaders = []
    measure = cfg.measure if tone_is_measurable(request.ratio, request.input_rate) else 0
    for candidate, scores in scored[:measure]:
        probe = _schedule(cfg, request, len(candidate.layers), cfg.probe_channels)
        tone = stride_tone_db(candidate, probe, request.input_rate, request.output_rate,
                              cfg.seed)
        leaders.append((candidate, replace(scores, tone_db=tone)))
    leaders.sort(key=sort_key(cfg.rank_by))
    ordered = leaders + scored[measure:]
    return [Ranked(i + 1, c, s, _schedule(cfg, request, len(c.layers)))
            for i, (c, s) in enumerate(ordered)]


def _notes(cfg: DesignConfig, request: DesignRequest, found: Enumeration) -> list[str]:
    notes = [f"ranked by {', '.join(cfg.rank_by)} (lower first; '-key': higher first); dB "
             "compare in whole dB, ms to 0.1 ms",
             f"tone dB: torch's random init (seed {cfg.seed}) on a constant input, measured for "
             f"the first {cfg.measure} by {', '.join(cheap_keys(cfg.rank_by))} (measure=N) on "
             f"stacks of at most {cfg.probe_channels} channels (probe_channels)",
             "image dB: white noise through the best interpolating init (image init) on its own "
             "exact padding; GMAC/s: the channel schedule "
             f"channels={cfg.channels} x {cfg.channel_factor:g} per layer, last "
             f"{cfg.out_channels}"]
    if not tone_is_measurable(request.ratio, request.input_rate):
        notes[1] = (f"tone dB not measured: the probe's output would pass {TONE_MAX_SAMPLES} "
                    f"samples at x{request.ratio}, and its cost grows with length x hop")
    if found.dropped:
        notes.append("dropped pairs: " + "; ".join(d.text() for d in found.dropped[:6])
                     + (f"; ... ({len(found.dropped)} in all)" if len(found.dropped) > 6 else ""))
    return notes


def _write(cfg: DesignConfig, request: DesignRequest, result: DesignResult, run: RunDir) -> None:
    write_csv(run.candidates_csv, (csv_row(item) for item in result.ranked), COLUMNS)
    result.written.append(run.candidates_csv)
    total = len(result.ranked)
    for item in result.ranked[:cfg.top]:
        path = run.design_model(item.rank)
        s = item.scores
        header = [
            f"Designed by scripts/design.py ({request.describe()}): rank {item.rank} of {total} "
            f"by {', '.join(cfg.rank_by)}.",
            f"strides {item.candidate.label()} (stride/kernel): exactly x{request.ratio} for "
            "every input length.",
            f"{s.macs / 1e9:.3g} GMAC per second of audio; receptive field {s.rf_ms:.1f} ms, "
            f"lookahead {s.lookahead_ms:.1f} ms; image level {s.image_db:.1f} dB with init "
            f"{s.init}" + ("" if s.tone_db is None else
                           f"; random-init stride tone {s.tone_db:.1f} dB") + ".",
            f"init {s.init} on each layer (its own exact padding), as the image level was "
            "scored: a skeleton to train, with no activations between layers."]
        # the init (and its geometry) the image level was measured with: the run then shows
        # what the table promised, not torch's random init
        layers = stack_layers(item.candidate, item.schedule, list(s.inits) or None)
        name = "design_" + ("best" if item.rank == 1 else f"top{item.rank}")
        write_text(path, model_yaml(item, request, layers, name, header, cfg.n_fft))
        result.written.append(path)
    best = result.ranked[0].candidate
    write_text(run.best_hifigan, json.dumps(hifigan_fields(best), indent=2) + "\n")
    result.written.append(run.best_hifigan)
    log.info("design: %d candidates, best %s", total, best.label())
