"""RunDir: the one place that names the files and folders in a run dir.

A run (scripts/run.py, scripts/learn.py), a corpus job, a sweep root and the explainer all write
into, or read from, directories laid out the same way; their names are spelled here only, so the
writer and every reader (the report page, the sweep scan) cannot drift apart. What lands where:

    shapes.json  weights.pt  metrics.json  index.html  run.log   a run
    error.json                                    a sweep job that met bad input
    summary.csv  summary.json  index.html         a corpus job (and a subfolder per file)
    summary.csv  summary.png  index.html  multirun.yaml           a sweep root
    .hydra/config.yaml  .hydra/overrides.yaml     Hydra's record of every job
    .convscope  .convscope.lock                   which run claimed the dir, its files; the lock
    audio/input.wav  audio/reference.wav  audio/layer{i}_ch{k}.wav
    plots/layer{i}_{type}.png  plots/spectrogram.png  plots/spectrum.png
    plots/layers_overview.png                     every conv call of a model=module run
    plots/spectrum_before.png  plots/loss.png  plots/kernels.png  (these three: scripts/learn.py)
    scatter.png                                   the explainer's picture
    scatter.gif  index.html                       its animation and page (animate=true)
    explorer.html                                 the interactive explorer (explorer=true)
    candidates.csv  model/best.yaml  model/top{r}.yaml   scripts/design.py (model=best runs it)
    best_hifigan.json                                    its published-config keys
    chunks.json  chunks.log  plots/chunk_errors.png   the chunk debugger (scripts/chunks.py)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """A run's directory; each property is the path of one file or folder in it."""

    path: Path

    # The names themselves, for code that compares names rather than opening a file (the
    # report orders WAVs by name, the sweep scan finds jobs by Hydra's record).
    SHAPES = "shapes.json"
    METRICS = "metrics.json"
    WEIGHTS = "weights.pt"
    REPORT = "index.html"  # a run's page; at a corpus or sweep root, the index of its runs
    LOG = "run.log"  # hydra.job.name in configs/run.yaml (learn.yaml and explain.yaml name theirs)
    ERROR = "error.json"
    SUMMARY_CSV = "summary.csv"
    SUMMARY_JSON = "summary.json"
    SUMMARY_PNG = "summary.png"
    SCATTER = "scatter.png"
    ANIMATION = "scatter.gif"  # the explainer's animate=true
    EXPLORER = "explorer.html"
    HYDRA_CONFIG = ".hydra/config.yaml"
    HYDRA_HYDRA = ".hydra/hydra.yaml"
    HYDRA_OVERRIDES = ".hydra/overrides.yaml"
    MULTIRUN = "multirun.yaml"  # Hydra writes it at a sweep root before any job runs
    AUDIO = "audio"
    PLOTS = "plots"
    INPUT_WAV = "input.wav"
    REFERENCE_WAV = "reference.wav"
    SPECTROGRAM = "spectrogram.png"
    LAYERS_OVERVIEW = "layers_overview.png"
    SPECTRUM = "spectrum.png"
    SPECTRUM_BEFORE = "spectrum_before.png"
    LOSS = "loss.png"
    KERNELS = "kernels.png"
    CANDIDATES_CSV = "candidates.csv"
    MODEL = "model"  # a config group: run.py --config-dir <run dir> model=best
    BEST_MODEL = "best.yaml"
    BEST_HIFIGAN = "best_hifigan.json"  # the best candidate as published HiFi-GAN config keys
    CHUNKS_JSON = "chunks.json"
    CHUNKS_LOG = "chunks.log"  # hydra.job.name in configs/chunks.yaml
    CHUNK_ERRORS = "chunk_errors.png"
    CHANNEL_WAV = re.compile(r"layer(\d+)_ch(\d+)\.wav")  # channel_wav_name's names
    LAYER_PLOT = re.compile(r"layer(\d+)_(\w+)\.png")  # layer_plot_name's names
    HYDRA = ".hydra"  # Hydra's record of a job: every entry script and convscope.run write it
    REPLACED = ".replaced"  # replace=true: the previous run, kept until the new one finishes
    DROPPED = ".replaced.dropped"  # a replaced run on its way out (rundir/owner.py)
    RECORD = ".convscope"  # which run claimed the dir and the files it wrote (rundir/owner.py)
    LOCK = ".convscope.lock"  # flocked by the one job writing the dir (rundir/owner.py)
    # Every entry's hydra.job.name log (configs/*.yaml)
    LOG_NAMES = frozenset({LOG, CHUNKS_LOG, "learn.log", "explain.log", "design.log"})

    # Everything a run, a corpus job or a sweep root may hold at its top level. A corpus names
    # its per-file subfolders around these, so an input called summary.json or index.html
    # cannot become a folder where the corpus's own summary.json or page goes.
    TOP_LEVEL = frozenset({
        SHAPES, METRICS, WEIGHTS, REPORT, LOG, ERROR, SUMMARY_CSV, SUMMARY_JSON, SUMMARY_PNG,
        SCATTER, ANIMATION, EXPLORER, HYDRA, REPLACED, DROPPED, RECORD, LOCK, MULTIRUN, AUDIO, PLOTS,
        CANDIDATES_CSV, MODEL, CHUNKS_JSON,
    }) | LOG_NAMES

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @staticmethod
    def is_run_dir(folder: Path) -> bool:
        """Whether `folder` is one of convscope's run dirs (a run, a corpus job, a sweep root or
        job, the explainer's or designer's): what corpus scans skip, so `data.path=.` in a
        project folder does not take in its earlier outputs. Markers that a user's own audio
        folder would not hold: convscope's record, Hydra's, shapes.json, a sweep root's
        multirun.yaml, a corpus's summary.csv beside its summary.json."""
        folder = Path(folder)
        return ((folder / RunDir.RECORD).is_file() or (folder / RunDir.HYDRA).is_dir()
                or (folder / RunDir.SHAPES).is_file()
                or (folder / RunDir.MULTIRUN).is_file()
                or ((folder / RunDir.SUMMARY_CSV).is_file()
                    and (folder / RunDir.SUMMARY_JSON).is_file()))

    @staticmethod
    def channel_wav_name(layer: int, channel: int) -> str:
        return f"layer{layer}_ch{channel}.wav"

    @staticmethod
    def design_model_name(rank: int) -> str:
        """The designer's model config of this rank: best.yaml, top2.yaml, top3.yaml, ..."""
        return RunDir.BEST_MODEL if rank == 1 else f"top{rank}.yaml"

    @staticmethod
    def layer_plot_name(layer: int, layer_type: str) -> str:
        return f"layer{layer}_{layer_type}.png"

    def previous_run(self) -> list[str]:
        """What an earlier run left here (sorted names), [] for a fresh dir. Hydra's record, log
        files and convscope's bookkeeping alone are not a run: a config rejected before anything
        ran leaves just those."""
        if not self.path.is_dir():
            return []
        ignored = {self.HYDRA, self.RECORD, self.LOCK} | self.LOG_NAMES
        return sorted(entry.name for entry in self.path.iterdir() if entry.name not in ignored)

    def looks_like_run(self) -> bool:
        """Whether a convscope run claimed this dir (its record), or an older convscope made it
        (a .hydra/ record alone: the stale-temp sweep also looks there)."""
        return (self.path / self.RECORD).is_file() or (self.path / self.HYDRA).is_dir()

    def relative(self, path: Path) -> str:
        """`path` as shapes.json and the pages spell it: relative to the run dir, with '/'."""
        return Path(path).relative_to(self.path).as_posix()

    # --- files at the top ---------------------------------------------------------------------

    @property
    def shapes(self) -> Path:
        return self.path / self.SHAPES

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def weights(self) -> Path:
        return self.path / self.WEIGHTS

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def error(self) -> Path:
        return self.path / self.ERROR

    @property
    def summary_csv(self) -> Path:
        return self.path / self.SUMMARY_CSV

    @property
    def summary_json(self) -> Path:
        return self.path / self.SUMMARY_JSON

    @property
    def corpus_index(self) -> Path:
        """A corpus job's index.html: a row per file linking its subfolder's page."""
        return self.path / self.REPORT

    @property
    def summary_png(self) -> Path:
        return self.path / self.SUMMARY_PNG

    @property
    def scatter(self) -> Path:
        return self.path / self.SCATTER

    @property
    def animation(self) -> Path:
        return self.path / self.ANIMATION

    @property
    def explorer(self) -> Path:
        return self.path / self.EXPLORER

    @property
    def hydra_config(self) -> Path:
        return self.path / self.HYDRA_CONFIG

    @property
    def hydra_dir(self) -> Path:
        return self.path / self.HYDRA

    @property
    def hydra_hydra(self) -> Path:
        return self.path / self.HYDRA_HYDRA

    @property
    def hydra_overrides(self) -> Path:
        return self.path / self.HYDRA_OVERRIDES

    @property
    def chunks_json(self) -> Path:
        return self.path / self.CHUNKS_JSON

    @property
    def chunks_log(self) -> Path:
        return self.path / self.CHUNKS_LOG

    @property
    def multirun(self) -> Path:
        return self.path / self.MULTIRUN

    @property
    def candidates_csv(self) -> Path:
        return self.path / self.CANDIDATES_CSV

    @property
    def model_dir(self) -> Path:
        return self.path / self.MODEL

    @property
    def best_hifigan(self) -> Path:
        return self.path / self.BEST_HIFIGAN

    def design_model(self, rank: int) -> Path:
        return self.model_dir / self.design_model_name(rank)

    # --- audio/ -------------------------------------------------------------------------------

    @property
    def audio_dir(self) -> Path:
        return self.path / self.AUDIO

    @property
    def input_wav(self) -> Path:
        return self.audio_dir / self.INPUT_WAV

    @property
    def reference_wav(self) -> Path:
        return self.audio_dir / self.REFERENCE_WAV

    def channel_wav(self, layer: int, channel: int) -> Path:
        """One output channel of the last layer."""
        return self.audio_dir / self.channel_wav_name(layer, channel)

    # --- plots/ -------------------------------------------------------------------------------

    @property
    def plots_dir(self) -> Path:
        return self.path / self.PLOTS

    def layer_plot(self, layer: int, layer_type: str) -> Path:
        """One layer's feature maps under its input."""
        return self.plots_dir / self.layer_plot_name(layer, layer_type)

    @property
    def spectrogram(self) -> Path:
        return self.plots_dir / self.SPECTROGRAM

    @property
    def layers_overview(self) -> Path:
        """Every conv call of a model=module run, one row each (plots/overview.py)."""
        return self.plots_dir / self.LAYERS_OVERVIEW

    @property
    def spectrum(self) -> Path:
        return self.plots_dir / self.SPECTRUM

    @property
    def spectrum_before(self) -> Path:
        return self.plots_dir / self.SPECTRUM_BEFORE

    @property
    def loss_plot(self) -> Path:
        return self.plots_dir / self.LOSS

    @property
    def kernels_plot(self) -> Path:
        return self.plots_dir / self.KERNELS

    @property
    def chunk_errors_plot(self) -> Path:
        return self.plots_dir / self.CHUNK_ERRORS


_claimed: dict[str, str] = {}  # base -> the dir this process claimed for it
_made_parents: dict[str, list[Path]] = {}  # claimed dir -> the parents claiming it created


def claim_new_dir(base: str) -> str:
    """A new, empty dir named `base`, or `base-1`, `base-2`, ... if another process took it
    first (os.mkdir is atomic: exactly one claimant wins each name). Behind the `new_dir`
    resolver of hydra.run.dir and hydra.sweep.dir, so runs started in the same second never
    share a dir. Hydra resolves those keys more than once per job: the same `base` gets the
    same answer for the life of the process."""
    if base not in _claimed:
        path = Path(base)
        missing = [parent for parent in path.parents if not parent.exists()]  # deepest first
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate, n = path, 0
        while True:
            try:
                os.mkdir(candidate)
                break
            except FileExistsError:
                n += 1
                candidate = path.with_name(f"{path.name}-{n}")
        _claimed[base] = str(candidate)
        _made_parents[os.path.abspath(candidate)] = [parent.absolute() for parent in missing]
    return _claimed[base]


def release_new_dir(path: Path) -> None:
    """Remove a claimed dir that nothing was written into, and the parents claiming it created
    (outputs/, outputs/design/2026-12-06/) while they are empty: a refused run leaves no folder
    behind. Anything holding a file stays; parents that existed before are never touched."""
    for folder in (Path(path), *_made_parents.get(os.path.abspath(path), [])):
        try:
            folder.rmdir()  # only if empty
        except FileNotFoundError:
            continue  # already gone (a sweep's submission files were removed with it)
        except OSError:
            return
