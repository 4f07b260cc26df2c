"""convscope.run: the pipeline from Python (a notebook, a REPL), with the CLI's configs and overrides.

    r = convscope.run(["model=sinc_x2", "data=speech"])
    r.shapes["output"]              # what shapes.json holds
    r                               # in Jupyter: the layer table, every plot and audio players

The run dir is the same as `convscope-run` (scripts/run.py) writes for the same overrides, its
files are what RunReport shows: it reads the run dir, as the report page does.
"""

from __future__ import annotations

import base64
import json
import logging
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from omegaconf import OmegaConf

from convscope.cli import (
    HYDRA_GROUP_NOT_NAMED,
    describe_config_error,
    group_not_named,
    keyless_override,
    model_label,
    unparsable_override_hint,
)
from convscope.config.convert import register_configs, to_run_config
from convscope.errors import ConvscopeError
from convscope.files import write_text
from convscope.audio.arrays import ARRAY_PATH, array_source
from convscope.board.export import export_tree
from convscope.corpus.jobs import run_job
from convscope.pipeline.single import run as run_single
from convscope.report.html import text
from convscope.report.page import RunCommand, layers_html, ordered_wavs, wav_label
from convscope.resources import configs_dir
from convscope.rundir import RunDir, owner
from convscope.text import format_table, shape_text

log = logging.getLogger("convscope")
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's job log format
MAX_EMBEDDED_BYTES = 8_000_000  # larger WAVs are linked, not inlined into the notebook


def run(overrides: Optional[Sequence[str]] = None, *, out_dir: Optional[str | Path] = None,
        model: Any = None, audio: Any = None, sample_rate: Any = None,
        features: Optional[str] = None) -> "RunReport":
    """Run the pipeline with `overrides` (as on the command line: ["model=sinc_x2",
    "data.start=0"]) into `out_dir` (default: outputs/<date>/<time> under the current directory,
    as the CLI). Relative data paths resolve against the current directory. Bad input raises
    ConvscopeError with the CLI's one-line message.

    With `model` (any torch nn.Module) and `audio` (a tensor or ndarray: a waveform [L] or
    [C, L] at `sample_rate` Hz, or with features="precomputed" frames [C, T] or [1, C, T] at
    `sample_rate` frames per second), no file is read and no module path is imported: the
    model runs on that input through the same path as model=module (estimate, one shot or
    streamed, the same run dir). `features` ("mel", "log_mel", "stft") makes frames of the
    waveform as data.features does; `overrides` set the rest (stream.enabled=true, data.n_mels=..).
    """
    overrides = [str(o) for o in (overrides or [])]
    if model is not None or audio is not None:
        overrides += _array_overrides(model, audio, sample_rate, features)
    cfg = _compose(overrides)
    run_cfg = to_run_config(cfg)
    run_cfg.model.name = model_label(run_cfg.model.name, overrides) if model is None \
        else type(model).__name__
    user_dir = Path.cwd()
    source = None if model is None else array_source(audio, run_cfg.data)
    out, lock = _new_run_dir(Path(out_dir) if out_dir is not None else None, user_dir)
    try:
        owner.claim(out)
        _save_config(out, cfg, overrides)
        argv = overrides if model is None else [f"model={type(model).__name__} (object)",
                                                *overrides]
        command = RunCommand(argv=("convscope.run", *argv), overrides=tuple(overrides),
                             cwd=str(user_dir))
        try:
            with _logged_to(RunDir(out).log):
                if model is None:
                    run_job(run_cfg, out, user_dir, command)
                else:
                    run_single(run_cfg, out, user_dir, command, model=model, source=source)
                    if run_cfg.tensorboard:  # as run_job does for a file's run
                        export_tree(out)
        except BaseException:
            owner.seal(out, "failed")
            raise
        owner.seal(out, "finished")
    finally:
        lock.release()
    return RunReport(out)


def _array_overrides(model: Any, audio: Any, sample_rate: Any,
                     features: Optional[str]) -> list[str]:
    """The data.* overrides an array input stands for (data.path names no file: ARRAY_PATH)."""
    from torch import nn  # torch: only for a model object

    if not isinstance(model, nn.Module):
        raise ConvscopeError(f"model: convscope.run(model=...) takes a torch.nn.Module, got "
                             f"{type(model).__name__}")
    if audio is None:
        raise ConvscopeError("audio: convscope.run(model=...) needs audio=<tensor or ndarray>")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, str, Fraction)):
        raise ConvscopeError(f"sample_rate: give the input's rate (Hz, or frames per second "
                             f"with features=\"precomputed\"), got {sample_rate!r}")
    features = features or "waveform"
    rate = ([f"data.frame_rate={sample_rate}"] if features == "precomputed"
            else [f"data.sr={sample_rate}"])
    return [f'data.path="{ARRAY_PATH}"', f"data.features={features}", "data.start=0",
            "data.end=null", *rate]


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir  # Hydra only when a run is composed
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    if keyless_override(overrides):
        raise ConvscopeError(keyless_override(overrides))
    try:
        with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3",
                                   job_name="run"):
            return compose(config_name="run", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConvscopeError(unparsable_override_hint(overrides) or describe_config_error(exc)
                             ) from exc
    except ValueError as exc:  # Hydra's own type check of a config group override: data=null
        if not str(exc).startswith(HYDRA_GROUP_NOT_NAMED):
            raise
        raise ConvscopeError(group_not_named(overrides)) from exc


def _new_run_dir(requested: Optional[Path], user_dir: Path) -> tuple[Path, owner.DirLock]:
    """`requested` (refused while another run writes it, or when it holds files), else a new
    outputs/<date>/<time>; with the dir's lock, held until the run ends (rundir/owner.py)."""
    if requested is not None:
        lock = owner.try_lock(requested)
        if lock is None:
            raise ConvscopeError(f"out_dir: another convscope run is writing into {requested} "
                                 "right now; wait for it to end or choose another folder")
        previous = sorted(set(RunDir(requested).previous_run())  # another app's .hydra/ too
                          | {name.partition("/")[0] for name in owner.foreign_files(requested)})
        if previous:
            lock.release()
            more = f", ... {len(previous) - 3} more" if len(previous) > 3 else ""
            raise ConvscopeError(f"out_dir: {requested} already holds files "
                                 f"({', '.join(previous[:3])}{more}); choose another folder")
        return requested, lock
    now = datetime.now()
    base = user_dir / "outputs" / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")
    candidate, n = base, 0
    while True:  # two runs in one second get -1, -2, ...: never one dir for two runs
        try:
            candidate.mkdir(parents=True)
            return candidate, owner.try_lock(candidate)  # new and ours: nobody else holds it
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def _save_config(out: Path, cfg, overrides: list[str]) -> None:
    """.hydra/config.yaml and overrides.yaml, as a CLI run leaves them (the report links them)."""
    files = RunDir(out)
    write_text(files.hydra_config, OmegaConf.to_yaml(cfg))
    write_text(files.hydra_overrides, OmegaConf.to_yaml(OmegaConf.create(overrides)))


@contextmanager
def _logged_to(path: Path) -> Iterator[None]:
    """The run's log lines also go to run.log in the run dir, as under Hydra."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    previous_level = log.level
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(previous_level)


class RunReport:
    """A finished run dir, read from disk: shapes, metrics, plots and WAVs; renders in Jupyter."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.files = RunDir(self.out_dir)

    def _json(self, path: Path) -> Optional[dict]:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    @cached_property  # a finished run dir does not change: read each file once
    def shapes(self) -> Optional[dict]:
        """shapes.json (None for a corpus, whose files each have their own run dir)."""
        return self._json(self.files.shapes)

    @cached_property
    def metrics(self) -> Optional[dict]:
        return self._json(self.files.metrics)

    @property
    def rows(self) -> list[dict]:
        return (self.shapes or {}).get("layers", [])

    @property
    def plots(self) -> list[Path]:
        return sorted(self.files.plots_dir.glob("*.png"))

    @property
    def audio(self) -> list[Path]:
        shapes = self.shapes or {}
        return ordered_wavs(self.files.audio_dir, (shapes.get("audio") or {}).get("files", []))

    @property
    def page(self) -> Path:
        return self.files.report

    def __str__(self) -> str:
        shapes = self.shapes
        if shapes is None:
            return f"convscope run (corpus) in {self.out_dir}: see summary.csv"
        out = shapes["output"]
        return (f"convscope run in {self.out_dir}\n{format_table(shapes['layers'])}\n"
                f"output {shape_text(out['shape'])} at {out['sample_rate']} Hz")

    def __repr__(self) -> str:
        return f"RunReport({str(self.out_dir)!r})"

    def _repr_html_(self) -> str:
        shapes = self.shapes
        head = (f"<p><b>convscope run</b> in <code>{text(self.out_dir)}</code> · "
                f"report page: <code>{text(self.page)}</code></p>")
        if shapes is None:
            return head + "<p>A corpus: every file has its own run dir (summary.csv).</p>"
        players = "".join(self._player(path) for path in self.audio)
        images = "".join(f'<figure style="margin:0.5em 0"><img style="max-width:100%" '
                         f'src="data:image/png;base64,{_b64(path)}" alt="{text(path.name)}">'
                         f"<figcaption>{text(path.name)}</figcaption></figure>"
                         for path in self.plots)
        return (head + layers_html(shapes["layers"], shapes["output"]) +
                (f"<h4>Listen</h4>{players}" if players else "") + images)

    def _player(self, path: Path) -> str:
        # An <audio> element plays the WAV's samples as written: unlike IPython.display.Audio
        # (normalize=True), nothing rescales quiet outputs, so levels compare honestly.
        label = text(wav_label(path.name))
        if path.stat().st_size > MAX_EMBEDDED_BYTES:
            return f"<p>{label}: <code>{text(path)}</code> (too large to inline)</p>"
        return (f'<div>{label}<br><audio controls src="data:audio/wav;base64,{_b64(path)}">'
                f"</audio></div>")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")
