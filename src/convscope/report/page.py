"""index.html in a run dir: one offline page with the command, data, layer table, sound and plots.

The page is rendered from the shapes document (the same dict shapes.json holds) plus whatever
files are on disk when it is written, so every link points at a file that exists. A later stage
that adds files (metrics.json, audio/reference.wav, scatter.png) calls `refresh_report` to show them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Optional

from convscope.files import write_text
from convscope.report.captions import figure_caption
from convscope.report.html import (
    IMAGE_SUFFIXES,
    figure_html,
    href,
    list_files,
    page,
    section,
    table,
    text,
)
from convscope.report.metrics import metrics_context, metrics_table, read_metrics
from convscope.rundir import RunDir
from convscope.text import fmt_macs, layer_table, shape_text

log = logging.getLogger("convscope")

# listed under "Files", in this order, when present
OTHER_FILES = (RunDir.SHAPES, RunDir.METRICS, RunDir.WEIGHTS, RunDir.LOG, RunDir.HYDRA_CONFIG,
               RunDir.HYDRA_OVERRIDES)


@dataclass(frozen=True)
class RunCommand:
    """How a run was started, as plain data (the entry script reads it from sys.argv and Hydra)."""

    argv: tuple[str, ...]  # the command line as typed, script first
    overrides: tuple[str, ...] = ()  # this job's Hydra task overrides (one sweep point in -m)
    cwd: str = ""  # where it ran from: relative data paths resolve against it

    def command_line(self) -> str:
        return shlex.join(["python", *self.argv])


def write_report(run_dir: Path, shapes: dict, command: Optional[RunCommand] = None) -> Path:
    run_dir = Path(run_dir)
    path = RunDir(run_dir).report
    write_text(path, render_report(run_dir, shapes, command))
    log.info("report: %s", path)
    return path


def refresh_report(run_dir: Path, command: Optional[RunCommand] = None) -> Path:
    """Re-render a finished run's page from its shapes.json, e.g. after metrics.json appears.

    Without `command`, the overrides are recovered from Hydra's .hydra/overrides.yaml.
    """
    run_dir = Path(run_dir)
    shapes = json.loads(RunDir(run_dir).shapes.read_text(encoding="utf-8"))
    return write_report(run_dir, shapes, command or saved_overrides(run_dir))


def saved_overrides(run_dir: Path) -> Optional[RunCommand]:
    path = RunDir(run_dir).hydra_overrides
    if not path.is_file():
        return None
    import yaml  # only to read Hydra's record when a page is rebuilt without a command

    overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return RunCommand(argv=(), overrides=tuple(str(o) for o in overrides))


def render_report(run_dir: Path, shapes: dict, command: Optional[RunCommand]) -> str:
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir)
    parts = [
        ("command", "Command", command_html(command)),
        ("data", "Data segment", segment_html(shapes["input"])),
        ("layers", "Layers", layers_html(shapes["layers"], shapes["output"]) + facts_html(shapes)),
        ("listen", "Listen", audio_html(run_dir, shapes.get("audio"))),
        ("metrics", "Metrics", metrics_html(run_dir, shapes, metrics))
        if metrics or _scatter(run_dir) else None,
        ("plots", "Plots", plots_html(run_dir, shapes, metrics)),
        ("files", "Files", files_html(run_dir)),
    ]
    parts = [p for p in parts if p is not None]
    name = run_name(run_dir)
    nav = [(f"#{anchor}", title) for anchor, title, _ in parts]
    sweep_root = find_sweep_root(run_dir)
    if sweep_root is not None:  # its index.html is written when the sweep ends
        nav.append((Path(os.path.relpath(sweep_root, run_dir.resolve()), RunDir.REPORT).as_posix(),
                    "↑ sweep index"))
    return page(title=f"convscope · {name}", heading=f"convscope run · {name}",
                subtitle=summary_line(shapes), nav=nav,
                sections=[section(anchor, title, body) for anchor, title, body in parts])


def run_name(run_dir: Path) -> str:
    """The run dir's name, with its parent's in front when the name alone says little: Hydra's
    default dirs are a bare time (outputs/<date>/<time>) or a sweep job's number."""
    if re.fullmatch(r"\d+|\d\d-\d\d-\d\d", run_dir.name) and run_dir.parent.name:
        return f"{run_dir.parent.name}/{run_dir.name}"
    return run_dir.name


def find_sweep_root(run_dir: Path, max_depth: int = 3) -> Optional[Path]:
    """The sweep dir holding this job: Hydra writes multirun.yaml there before any job runs."""
    for parent in list(run_dir.resolve().parents)[:max_depth]:
        if RunDir(parent).multirun.is_file():
            return parent
    return None


def summary_line(shapes: dict) -> str:
    source, output = shapes["input"], shapes["output"]
    count = len(shapes["layers"])
    return (f"input <code>{text(shape_text(source['shape']))}</code> at {rate_html(source)}"
            f" → {count} layer{'s' if count != 1 else ''} → output "
            f"<code>{text(shape_text(output['shape']))}</code> at {rate_html(output)}")


def rate_html(section: dict, key: str = "sample_rate") -> str:
    """A rate from shapes.json: `16,000 Hz`, or the exact fraction with its decimal,
    `11025/128 Hz (86.1328125 Hz)`, when it is not a whole number."""
    number, fraction = section[key], section.get(f"{key}_fraction", "")
    if "/" not in fraction:
        return f"{number:,} Hz"
    return f"{text(fraction)} Hz ({number:,.10g} Hz)"


def command_html(command: Optional[RunCommand]) -> str:
    if command is None:
        return '<p class="note">Not recorded: this run was not started from scripts/run.py.</p>'
    parts = []
    if command.argv:
        parts.append(f"<pre>{text(command.command_line())}</pre>")
    overrides = "".join(f"<li><code>{text(o)}</code></li>" for o in command.overrides)
    parts.append("<h3>Overrides of this run</h3>" +
                 (f"<ul>{overrides}</ul>" if overrides else '<p class="note">none: the defaults '
                  "of configs/run.yaml</p>"))
    if command.cwd:
        parts.append(f'<p class="note">Run from <code>{text(command.cwd)}</code>; relative paths '
                     "resolve against it.</p>")
    return "\n".join(parts)


def segment_html(source: dict) -> str:
    duration = source["end"] - source["start"]
    facts = [
        ("file", f"<code>{text(source['path'])}</code>"),
        ("segment", f"{source['start']:g} s to {source['end']:g} s ({duration:.3f} s)"),
        # a feature input's rate is frames per second (sr / hop_length)
        ("frame rate" if "features" in source else "sample rate", rate_html(source)),
        ("shape (N, C, L)", f"<code>{text(shape_text(source['shape']))}</code>"),
    ]
    if "features" in source:  # a feature input: how its frames were made, and the audio
        facts += feature_facts(source["features"], source["target"])
    return '<dl class="facts">' + "".join(f"<dt>{text(k)}</dt><dd>{v}</dd>" for k, v in facts) \
        + "</dl>"


def feature_facts(features: dict, target: dict) -> list[tuple[str, str]]:
    """The frontend's settings and the target audio, as the data section lists them."""
    kind = features["kind"]
    if target is None:  # data.features=precomputed: read from a file, made elsewhere
        return [("features", f"<code>{text(kind)}</code>: read from the file, hop "
                             f"{features['hop_length']} for alignment"),
                ("target audio", "none: precomputed frames (no input.wav, no evaluate stage)")]
    bands = (f"{features['n_mels']} mel bands, {features['fmin']:g}-{features['fmax']:g} Hz, "
             if features.get("n_mels") else "")
    framing = "librosa's centred frames" if features["center"] else "HiFi-GAN's framing"
    settings = (f"<code>{text(kind)}</code>: {bands}n_fft {features['n_fft']}, hop "
                f"{features['hop_length']}, window {features['win_length']} ({framing})")
    audio = (f"{target['samples']:,} samples at {rate_html(target)} "
             f"(<code>audio/input.wav</code>)")
    return [("features", settings), ("target audio", audio)]


def layers_html(layers: list[dict], output: dict) -> str:
    # nested stacks and user models: the module's name says which call a row is
    names = any(row.get("name", str(row["index"])) != str(row["index"]) for row in layers)
    header, cells = layer_table(layers, names=names)
    shape_columns = {header.index(name) for name in ("weight", "bias", "input", "output")}
    numeric = tuple(header.index(name) for name in ("#", "params", "MACs", "RF", "ahead"))
    rows = [[_code(cell) if i in shape_columns else text(cell) for i, cell in enumerate(row)]
            for row in cells]
    formulas = "".join(f"<li>layer {row['index']} {text(row['type'])}: "
                       f"<code>{text(row['formula'])}</code></li>" for row in layers)
    rate = rate_html(output)
    return (table(header, rows, numeric=numeric, css_class="layers") +
            f'<ul class="formulas">{formulas}</ul>' +
            f'<p class="note">Output <code>{text(shape_text(output["shape"]))}</code> at {rate}. '
            "Weights are laid out (out, in/groups, k) for Conv1d and (in, out/groups, k) for "
            "ConvTranspose1d.</p>")


def facts_html(shapes: dict) -> str:
    """Alignment, lookahead and cost of the stack, one line each, as the log says them."""
    lines = []
    alignment = shapes.get("alignment")
    if alignment is not None:
        head = (f"expected {text(alignment['expected_rule'])} = {alignment['expected']:,} samples"
                + (f" (target audio {alignment['target_samples']:,})"
                   if "target_samples" in alignment else "")
                + f", got {alignment['got']:,}")
        if alignment["ok"]:
            lines.append(f"<b>Alignment</b>: {head}: exact.")
        else:
            fixes = "; ".join(
                f"<code>{text(c['key'])}</code> ({text(c['type'])}) adds "
                f"{c['extra_per_input']:+d} per call, fix: "
                + (f"<code>padding={c['fix']['padding']} "
                   f"output_padding={c['fix']['output_padding']}</code>" if c["fix"]
                   else text(c.get("why_no_fix", "none")))
                for c in alignment["culprits"])
            note = f" {text(alignment['note'])}." if alignment.get("note") else ""
            lines.append(f"<b>Alignment</b>: {head}: <b>{alignment['difference']:+,d}</b>"
                         + (f"; {fixes}" if fixes else "") + f".{note}")
    latency = shapes.get("latency")
    if latency is not None:
        lines.append(f"<b>Lookahead</b>: {latency['lookahead_samples']:,} input samples "
                     f"({latency['lookahead_ms']:.3g} ms) after each output sample's time.")
    cost = shapes.get("cost")
    if cost is not None:
        lines.append(f"<b>Cost</b>: {fmt_macs(cost['macs_per_audio_second'])} per second "
                     f"of audio; this run took {cost['compute_seconds']:.3f} s for "
                     f"{cost['audio_seconds']:.3f} s (real-time factor "
                     f"{cost['real_time_factor']:.3g}).")
    return "".join(f'<p class="note">{line}</p>' for line in lines)


def audio_html(run_dir: Path, audio: Optional[dict]) -> str:
    audio_dir = RunDir(run_dir).audio_dir
    files = ordered_wavs(audio_dir, (audio or {}).get("files", []))
    if not files:
        return '<p class="note">No WAVs in this run (audio.enabled=false).</p>'
    players = "\n".join(_player(run_dir, path) for path in files)
    note = f'<p class="note">{gain_note(audio)}</p>' if audio else ""
    return f'<div class="players">\n{players}\n</div>{note}'


def gain_note(audio: dict) -> str:
    """Say whether the output level was changed, so a listener knows what they compare, or why
    there is no output WAV."""
    subtype = text(audio.get("subtype", ""))
    if "output_wavs" in audio:
        return f"Only the input is playable: {text(audio['output_wavs'])}."
    if audio.get("gain", 1.0) == 1.0:
        return (f"{subtype} WAVs at their computed level (output peak "
                f"{audio.get('output_peak', 0):.3f}, no gain applied).")
    return (f"{subtype} WAVs. Every output channel is scaled down by the same gain, "
            f"{audio['gain']:.4f} ({audio['gain_db']:.2f} dB), to avoid clipping; their relative "
            "loudness is kept.")


def ordered_wavs(audio_dir: Path, listed: list[str]) -> list[Path]:
    """input.wav, the soxr reference, the output channels in order, then anything else."""
    present = list_files(audio_dir, (".wav",))
    rank = {RunDir.INPUT_WAV: 0, RunDir.REFERENCE_WAV: 1}
    listed_names = [PurePath(f).name for f in listed]
    def order(path: Path) -> tuple:
        listed_rank = listed_names.index(path.name) if path.name in listed_names else len(listed)
        return (rank.get(path.name, 2), listed_rank)
    return sorted(present, key=order)


def _player(run_dir: Path, path: Path) -> str:
    relative = path.relative_to(run_dir)
    return (f'<div class="player"><div class="name">{text(wav_label(path.name))}</div>'
            f'<div class="meta">{text(relative.as_posix())} · {text(_wav_facts(path))}</div>'
            f'<audio controls preload="metadata" src="{href(relative)}"></audio></div>')


def wav_label(name: str) -> str:
    if name == RunDir.INPUT_WAV:
        return "input"
    if name == RunDir.REFERENCE_WAV:
        return "reference resampler (evaluate stage)"
    match = RunDir.CHANNEL_WAV.fullmatch(name)
    if match:
        return f"output channel {match[2]} (layer {match[1]})"
    return name


def _wav_facts(path: Path) -> str:
    import soundfile  # loads libsndfile (cffi) on import: only for a page that has WAVs

    try:
        info = soundfile.info(str(path))  # header only: cheap
    except Exception:  # an unreadable file still gets its player; the browser will say why
        return "unreadable header"
    return f"{info.samplerate:,} Hz · {info.frames / info.samplerate:.3f} s"


def metrics_html(run_dir: Path, shapes: dict, metrics: Optional[dict]) -> str:
    parts = [metrics_context(metrics) + metrics_table(metrics)] if metrics else []
    scatter = _scatter(run_dir)
    if scatter:
        parts.append(figure_html(run_dir, scatter, figure_caption(scatter.name, shapes, metrics)))
    return "\n".join(parts)


def _scatter(run_dir: Path) -> Optional[PurePath]:
    return PurePath(RunDir.SCATTER) if RunDir(run_dir).scatter.is_file() else None


def plots_html(run_dir: Path, shapes: dict, metrics: Optional[dict]) -> str:
    plot_dir = RunDir(run_dir).plots_dir
    images = list_files(plot_dir, IMAGE_SUFFIXES)
    if not images:
        return '<p class="note">No plots in this run (plots.enabled=false).</p>'
    return "\n".join(figure_html(run_dir, path.relative_to(run_dir),
                                 figure_caption(path.name, shapes, metrics)) for path in images)


def files_html(run_dir: Path) -> str:
    present = [name for name in OTHER_FILES if (run_dir / name).is_file()]
    if not present:
        return '<p class="note">No other files.</p>'
    return "<ul>" + "".join(f'<li><a href="{href(name)}">{text(name)}</a></li>' for name in present) \
        + "</ul>"


def _code(value: str) -> str:
    return f"<code>{text(value)}</code>"
