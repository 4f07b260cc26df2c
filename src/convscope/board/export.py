"""A run dir (or every run of a corpus or sweep) as TensorBoard runs, read from what is on disk.

Like report/, this reads only what the run wrote: audio/*.wav at the rates their headers hold
(which shapes.json states too), plots/*.png, shapes.json's layer table, formulas, alignment, cost
and latency, metrics.json's numbers. So any path that writes a run dir reaches it at its finish
(corpus/jobs.py, the sweep callback), and `convscope tensorboard <dir>` exports one written
earlier. Each run's events go to its own `<run dir>/tensorboard/` (a corpus file's folder, a
sweep job's), a sweep's HParams sessions to `<sweep>/tensorboard/hparams/<job>/`;
`tensorboard --logdir <run, corpus or sweep dir>` shows them all.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from convscope.board.events import EventFile
from convscope.errors import ConvscopeError
from convscope.rundir import RunDir
from convscope.text import layer_table

log = logging.getLogger("convscope")
TENSORBOARD = "tensorboard"  # the events folder in a run dir (and a corpus or sweep root)
# An hour-long streamed WAV would make a GB event file that TensorBoard loads whole into memory;
# TensorBoard's players are for listening, so longer clips are cut to their first minute.
MAX_AUDIO_SECONDS = 60.0
HPARAMS = "hparams"  # a sweep root's folder of one hparams session per job


@dataclass(frozen=True)
class Exported:
    """What one export wrote: the event file and how many of each kind it holds."""

    event_file: Path
    audio: int
    images: int
    texts: int
    scalars: int


def export_run(run_dir: Path, log_dir: Optional[Path] = None) -> Exported:
    """One run dir's WAVs, figures, texts and numbers as one TensorBoard run in log_dir
    (default `<run dir>/tensorboard`)."""
    run_dir = Path(run_dir)
    files = RunDir(run_dir)
    if not is_exportable(run_dir):
        raise ConvscopeError(f"{run_dir}: no run to export (no {files.SHAPES}, "
                             f"{files.PLOTS}/ or {files.AUDIO}/ in it)")
    events = EventFile()
    counts = {"audio": 0, "images": 0, "texts": 0, "scalars": 0}
    for wav in sorted(files.path.joinpath(files.AUDIO).glob("*.wav")):
        _add_audio(events, wav)
        counts["audio"] += 1
    for png in sorted(files.path.joinpath(files.PLOTS).glob("*.png")):
        events.image(f"plots/{png.stem}", png.read_bytes())
        counts["images"] += 1
    shapes = _read_json(files.shapes)
    for tag, markdown in run_texts(shapes).items():
        events.text(tag, markdown)
        counts["texts"] += 1
    for tag, value in run_scalars(shapes, _read_json(files.metrics)).items():
        events.scalar(tag, value)
        counts["scalars"] += 1
    event_file = events.save(Path(log_dir) if log_dir else run_dir / TENSORBOARD)
    return Exported(event_file, **counts)


def export_tree(root: Path) -> list[Exported]:
    """Every run at or below root (a run, a corpus's files, a sweep's jobs), each into its own
    `<run>/tensorboard/`, so `tensorboard --logdir <root>` shows them side by side. Logs it."""
    root = Path(root)
    runs = list(runs_under(root))
    if not runs:
        raise ConvscopeError(f"{root}: no run dir to export (a folder with "
                             f"{RunDir.SHAPES}, {RunDir.PLOTS}/ or {RunDir.AUDIO}/)")
    done = [export_run(run) for run in runs]
    log.info("tensorboard: %d run%s exported (view: tensorboard --logdir %s)", len(done),
             "" if len(done) == 1 else "s", root)
    return done


def export_sweep_hparams(sweep_dir: Path, jobs: Sequence[tuple[str, Sequence[str], Any]]
                         ) -> list[Path]:
    """The HParams dashboard of a sweep: for each finished job (name, overrides, metrics.json),
    one session `<sweep>/tensorboard/hparams/<job>` of its overrides against its metrics."""
    written = []
    for name, overrides, metrics in jobs:
        scalars = run_scalars({}, metrics)
        if not scalars and not overrides:
            continue
        events = EventFile()
        for tag, value in scalars.items():
            events.scalar(tag, value)
        events.hparams(override_values(overrides))
        written.append(events.save(Path(sweep_dir) / TENSORBOARD / HPARAMS / name))
    return written


def is_exportable(folder: Path) -> bool:
    files = RunDir(folder)
    return files.shapes.is_file() or files.path.joinpath(files.PLOTS).is_dir() or \
        files.path.joinpath(files.AUDIO).is_dir()


def runs_under(root: Path) -> Iterator[Path]:
    """root itself when it is a run, else each run folder below it (a corpus's files), sorted;
    the events folder is never searched."""
    if is_exportable(root):
        yield root
        return
    for folder in sorted(p for p in root.rglob("*") if p.is_dir() and is_exportable(p)):
        if TENSORBOARD not in folder.relative_to(root).parts:
            yield folder


def run_texts(shapes: Optional[dict]) -> dict[str, str]:
    """Markdown for TensorBoard's text tab: the layer table, each layer's length formula and the
    alignment check, as the report states them."""
    if not shapes or not shapes.get("layers"):
        return {}
    layers = shapes["layers"]
    header, body = layer_table(layers, names=True, rates="sample_rate_in" in layers[0])
    table = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    table += [_markdown_row(cells) for cells in body]
    texts = {"layers/table": "\n".join(table),
             "layers/formulas": "\n".join(f"- layer {row['index']} {row['type']}: "
                                          f"`{row['formula']}`" for row in layers)}
    alignment = shapes.get("alignment")
    if alignment:
        verdict = "ok" if alignment.get("ok") else "NOT aligned"
        texts["alignment"] = (f"expected {alignment.get('expected')} samples, got "
                              f"{alignment.get('got')}: {verdict}\n\n```json\n"
                              f"{json.dumps(alignment, indent=1)}\n```")
    return texts


def run_scalars(shapes: Optional[dict], metrics: Any) -> dict[str, float]:
    """Every number of metrics.json (nested sections joined with /) under metrics/, and
    shapes.json's cost and latency under cost/ and latency/."""
    scalars = dict(_numbers("metrics", metrics))
    for section in ("cost", "latency"):
        scalars.update(_numbers(section, (shapes or {}).get(section)))
    return scalars


def override_values(overrides: Sequence[str]) -> dict[str, str | float]:
    """key=value overrides as hparams: a number stays a number (the dashboard can sort and plot
    it), anything else is its text."""
    values: dict[str, str | float] = {}
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        try:
            values[key] = float(value)
        except ValueError:
            values[key] = value
    return values


def _numbers(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _numbers(f"{prefix}/{key}", inner)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, value


def _add_audio(events: EventFile, wav: Path) -> None:
    import soundfile  # lazy: only exports read WAVs, and its import loads libsndfile

    info = soundfile.info(str(wav))
    limit = int(MAX_AUDIO_SECONDS * info.samplerate)
    if info.frames <= limit:
        data, frames = wav.read_bytes(), info.frames
    else:  # the first minute, in the file's own sample format (a float WAV may exceed 1.0)
        samples, _ = soundfile.read(str(wav), frames=limit, always_2d=True, dtype="float64")
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, info.samplerate, subtype=info.subtype, format="WAV")
        data, frames = buffer.getvalue(), limit
        log.info("tensorboard: %s cut to its first %g s", wav.name, MAX_AUDIO_SECONDS)
    events.audio(f"audio/{wav.stem}", data, info.samplerate, info.channels, frames)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvscopeError(f"{path}: cannot be read as JSON ({exc})") from exc
