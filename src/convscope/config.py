"""Typed configuration: dataclass schemas for Hydra's ConfigStore and the checks YAML can't express.

Hydra composes a DictConfig from configs/*.yaml and command-line overrides; the schemas below make
Hydra reject unknown keys and wrong types at compose time. `to_run_config` turns the result into plain
dataclasses and checks values, so library code never reaches into a DictConfig.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convscope.errors import ConvscopeError

DEVICES = ("cpu", "cuda", "auto")
STREAM_MODES = ("auto", "true", "false")
EVALUATE_MODES = ("auto", "true", "false")
REFERENCE_RESAMPLERS = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "polyphase", "fft")


@dataclass
class DataConfig:
    path: str = "data/sample.wav"
    sr: int = 16000
    start: float = 2.0
    end: Optional[float] = 3.0  # None: to the end of the file
    mono: bool = True
    # A folder or glob in `path` is a corpus (convscope.corpus); these split its sorted file list
    shard: int = 0
    num_shards: int = 1


@dataclass
class LayerConfig:
    """One layer of the stack. Keys left at None take torch's default for that layer type."""

    type: str = MISSING
    in_channels: Optional[int] = None  # None: the previous layer's out_channels
    out_channels: Optional[int] = None
    kernel_size: Optional[int] = None
    stride: Optional[int] = None
    padding: Any = None  # int, or "same"/"valid" for Conv1d
    output_padding: Optional[int] = None
    dilation: Optional[int] = None
    groups: Optional[int] = None
    bias: Optional[bool] = None
    padding_mode: Optional[str] = None
    negative_slope: Optional[float] = None  # LeakyReLU
    alpha: Optional[float] = None  # ELU
    # Conv weights: default (torch's seeded random) | linear | nearest | sinc | identity | box;
    # the kernel math and the geometry each needs are in convscope.inits
    init: Optional[str] = None
    sinc_window: Optional[str] = None  # kaiser | hann | blackman | rect
    sinc_beta: Optional[float] = None  # Kaiser beta
    sinc_cutoff: Optional[float] = None  # fraction of the input Nyquist, (0, 1]
    scale_factor: Optional[int] = None  # Upsample
    mode: Optional[str] = None  # Upsample: nearest | linear | nearest-exact


@dataclass
class ModelConfig:
    name: str = "custom"
    layers: List[LayerConfig] = field(default_factory=list)


@dataclass
class PlotsConfig:
    enabled: bool = True
    spectrogram: bool = True
    dpi: int = 100
    width_inches: float = 12.0
    max_channels: int = 8  # output channels drawn per layer figure
    window_ms: float = 32.0  # spectrogram window length (same duration at every rate)
    # Streamed (long) runs: the spectrogram shows this stretch only, seconds from the segment start
    spectrogram_start: float = 0.0
    spectrogram_seconds: float = 10.0

    def spectrogram_channels(self, available: int) -> int:
        """Output channels the spectrogram figure draws beside the input (at most 3: wider
        panels stop being readable)."""
        return min(available, self.max_channels, 3)


@dataclass
class AudioConfig:
    enabled: bool = True
    subtype: str = "PCM_16"
    peak: float = 0.99  # output WAVs are scaled down (never up) so no sample exceeds this


@dataclass
class StreamConfig:
    """Block-by-block processing of long segments (convscope.streamed_run)."""

    enabled: str = "auto"  # auto: stream segments longer than auto_seconds; true; false
    block_seconds: float = 1.0  # output seconds per block: small blocks stay in CPU caches
    # Measured (scripts/bench.py): up to a minute the one-shot path costs < 1 s and ~420 MB and
    # keeps PCM WAVs with one peak gain, full traces and whole-segment metrics; beyond, its
    # memory grows ~3 MB per audio second (11 GB per hour) while streaming stays at ~260 MB.
    auto_seconds: float = 60.0
    subtype: str = "FLOAT"  # streamed WAVs: float needs no global peak, so no gain is applied
    # torch threads while streaming (0: torch's default). Per-block ops are small: on a shared
    # 2-core machine one thread measured 1.5-7x faster than two, which spin-wait on each other.
    threads: int = 1


@dataclass
class EvaluateConfig:
    """Compare one output channel with a real resampler (convscope.evaluate)."""

    enabled: str = "auto"  # auto: when the output rate differs from the input rate; true; false
    channel: int = 0  # output channel compared with the reference
    reference: str = "soxr_hq"  # librosa.resample res_type
    edge_ms: float = 20.0  # left out of every metric at both ends, where zero padding shows


@dataclass
class LearnConfig:
    """Fit the stack to the reference resampler with Adam (convscope.learn, scripts/learn.py)."""

    steps: int = 500
    lr: float = 0.05
    waveform_weight: float = 1.0  # error power / reference power (1/SNR)
    spectral_weight: float = 0.0  # multi-resolution STFT distance (off: ~3x slower per step)
    fft_sizes: List[int] = field(default_factory=lambda: [256, 1024])
    progress: bool = True  # tqdm bar on stderr


@dataclass
class SaveConfig:
    weights: bool = True
    shapes: bool = True


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    plots: PlotsConfig = field(default_factory=PlotsConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    save: SaveConfig = field(default_factory=SaveConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    seed: int = 0
    device: str = "cpu"
    report: bool = True  # index.html in the run dir


@dataclass
class LearnRunConfig(RunConfig):
    """scripts/learn.py's schema (configs/learn.yaml): a run plus the fitting settings."""

    learn: LearnConfig = field(default_factory=LearnConfig)


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore; configs/run.yaml and learn.yaml list theirs first."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    ConfigStore.instance().store(name="learn_schema", node=LearnRunConfig)


def to_run_config(cfg: DictConfig | dict) -> RunConfig:
    """Validate a composed config (Hydra's node, if present, is ignored) and return dataclasses."""
    run_cfg = to_dataclass(cfg, RunConfig)
    check_values(run_cfg)
    return run_cfg


def to_learn_config(cfg: DictConfig | dict) -> tuple[RunConfig, LearnConfig]:
    """Validate scripts/learn.py's composed config: the run part, then the `learn` section."""
    container = without_hydra(cfg)
    learn_section = container.pop("learn", None) or {}
    run_cfg = to_run_config(container)
    learn_cfg = to_dataclass(learn_section, LearnConfig, key_prefix="learn")
    check_learn(learn_cfg)
    return run_cfg, learn_cfg


def without_hydra(cfg: DictConfig | dict) -> dict:
    """A composed config as a plain dict, without Hydra's own `hydra` node.

    The node is dropped before anything is resolved: some of its values interpolate keys Hydra
    only sets when a job runs (hydra.sweep.subdir is ${hydra.job.num}), missing at compose time.
    """
    if isinstance(cfg, DictConfig):
        ours = OmegaConf.masked_copy(cfg, [key for key in cfg.keys() if key != "hydra"])
        return OmegaConf.to_container(ours, resolve=True)
    if hasattr(cfg, "items"):
        return {key: value for key, value in cfg.items() if key != "hydra"}
    return cfg  # not a mapping: left for OmegaConf.merge to reject


def to_dataclass(cfg: DictConfig | dict, schema: type, key_prefix: str = "",
                 where: Optional[str] = None) -> Any:
    """`cfg` (without its `hydra` node) merged into the dataclass `schema`, as that dataclass.

    OmegaConf's type and unknown-key errors become ConvscopeErrors naming the key:
    "config <key_prefix>.<key>: <first line of OmegaConf's message>" ("config <key_prefix>: ..."
    when OmegaConf names no key). With `where` (a preset file, say) the message is
    "<where>: <first line>" instead.
    """
    container = without_hydra(cfg)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), container))
    except OmegaConfBaseException as exc:
        reason = str(exc).splitlines()[0]
        if where is not None:
            raise ConvscopeError(f"{where}: {reason}") from exc
        key = ".".join(part for part in (key_prefix, str(getattr(exc, "full_key", None) or ""))
                       if part)
        raise ConvscopeError(f"config {key}: {reason}" if key else f"config {reason}") from exc


def check_values(cfg: RunConfig) -> None:
    """Value checks that types alone can't express; each error names its key."""
    data = cfg.data
    if data.sr <= 0:
        raise ConvscopeError(f"data.sr must be a positive sample rate, got {data.sr}")
    if not math.isfinite(data.start) or data.start < 0:
        raise ConvscopeError(f"data.start must be >= 0 seconds, got {data.start}")
    if data.end is not None:
        if not math.isfinite(data.end):
            raise ConvscopeError(f"data.end must be a finite number of seconds or null, got {data.end}")
        if data.end <= data.start:
            raise ConvscopeError(
                f"data.end must be greater than data.start, got start={data.start} end={data.end}")
    if data.num_shards < 1 or not 0 <= data.shard < data.num_shards:
        raise ConvscopeError(f"data.shard must satisfy 0 <= data.shard < data.num_shards, got "
                             f"shard={data.shard} num_shards={data.num_shards}")
    if not cfg.model.layers:
        raise ConvscopeError("model.layers is empty: give at least one layer")
    if cfg.device not in DEVICES:
        raise ConvscopeError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if not 0 < cfg.audio.peak <= 1:
        raise ConvscopeError(f"audio.peak must be in (0, 1], got {cfg.audio.peak}")
    _check_subtype(cfg.audio.subtype)
    _check_stream(cfg.stream)
    _check_evaluate(cfg.evaluate)
    if cfg.plots.dpi <= 0 or cfg.plots.width_inches <= 0:
        raise ConvscopeError(
            f"plots.dpi and plots.width_inches must be positive, got {cfg.plots.dpi} and "
            f"{cfg.plots.width_inches}")
    if cfg.plots.max_channels < 1:
        raise ConvscopeError(f"plots.max_channels must be >= 1, got {cfg.plots.max_channels}")
    if cfg.plots.window_ms <= 0:
        raise ConvscopeError(f"plots.window_ms must be positive, got {cfg.plots.window_ms}")
    if cfg.plots.spectrogram_start < 0 or cfg.plots.spectrogram_seconds <= 0:
        raise ConvscopeError(
            f"plots.spectrogram_start must be >= 0 and plots.spectrogram_seconds > 0, got "
            f"{cfg.plots.spectrogram_start} and {cfg.plots.spectrogram_seconds}")


def _check_stream(stream: StreamConfig) -> None:
    stream.enabled = str(stream.enabled).lower()  # YAML true/false arrive as "True"/"False"
    if stream.enabled not in STREAM_MODES:
        raise ConvscopeError(
            f"stream.enabled must be one of {', '.join(STREAM_MODES)}, got {stream.enabled!r}")
    for name in ("block_seconds", "auto_seconds"):
        value = getattr(stream, name)
        if not math.isfinite(value) or value <= 0:
            raise ConvscopeError(f"stream.{name} must be a positive number of seconds, got {value}")
    _check_subtype(stream.subtype, "stream.subtype")
    if stream.threads < 0:
        raise ConvscopeError(f"stream.threads must be >= 0 (0: torch's default), got {stream.threads}")


def _check_evaluate(evaluate: EvaluateConfig) -> None:
    evaluate.enabled = str(evaluate.enabled).lower()  # YAML true/false arrive as "True"/"False"
    if evaluate.enabled not in EVALUATE_MODES:
        raise ConvscopeError(f"evaluate.enabled must be one of {', '.join(EVALUATE_MODES)}, got "
                             f"{evaluate.enabled!r}")
    if evaluate.channel < 0:
        raise ConvscopeError(f"evaluate.channel must be >= 0, got {evaluate.channel}")
    if evaluate.reference not in REFERENCE_RESAMPLERS:
        raise ConvscopeError(f"evaluate.reference must be one of "
                             f"{', '.join(REFERENCE_RESAMPLERS)}, got {evaluate.reference!r}")
    if not math.isfinite(evaluate.edge_ms) or evaluate.edge_ms < 0:
        raise ConvscopeError(f"evaluate.edge_ms must be >= 0, got {evaluate.edge_ms}")


def check_learn(learn: LearnConfig) -> None:
    if learn.steps < 1:
        raise ConvscopeError(f"learn.steps must be >= 1, got {learn.steps}")
    if not math.isfinite(learn.lr) or learn.lr <= 0:
        raise ConvscopeError(f"learn.lr must be a positive number, got {learn.lr}")
    weights = (learn.waveform_weight, learn.spectral_weight)
    if min(weights) < 0 or max(weights) <= 0:
        raise ConvscopeError(f"learn.waveform_weight and learn.spectral_weight must be >= 0 and "
                             f"not both 0, got {weights[0]} and {weights[1]}")
    if learn.spectral_weight > 0 and (not learn.fft_sizes or min(learn.fft_sizes) < 16):
        raise ConvscopeError(f"learn.fft_sizes must list sizes >= 16 when learn.spectral_weight "
                             f"> 0, got {list(learn.fft_sizes)}")


def _check_subtype(subtype: str, key: str = "audio.subtype") -> None:
    import soundfile

    known = soundfile.available_subtypes("WAV")
    if subtype not in known:
        raise ConvscopeError(
            f"{key} must be a WAV subtype ({', '.join(sorted(known))}), got {subtype!r}")
