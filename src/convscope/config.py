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


@dataclass
class DataConfig:
    path: str = "data/sample.wav"
    sr: int = 16000
    start: float = 2.0
    end: Optional[float] = 3.0  # None: to the end of the file
    mono: bool = True


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


@dataclass
class AudioConfig:
    enabled: bool = True
    subtype: str = "PCM_16"
    peak: float = 0.99  # output WAVs are scaled down (never up) so no sample exceeds this


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
    seed: int = 0
    device: str = "cpu"


def register_configs() -> None:
    """Put the schema in Hydra's ConfigStore; configs/run.yaml lists it first in its defaults."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="run_schema", node=RunConfig)


def to_run_config(cfg: DictConfig | dict) -> RunConfig:
    """Validate a composed config (Hydra's node, if present, is ignored) and return dataclasses."""
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
    else:
        container = dict(cfg)
    container.pop("hydra", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), container)
        run_cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f"{key}: " if key else ""
        raise ConvscopeError(f"config {where}{str(exc).splitlines()[0]}") from exc
    check_values(run_cfg)
    return run_cfg


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
    if not cfg.model.layers:
        raise ConvscopeError("model.layers is empty: give at least one layer")
    if cfg.device not in DEVICES:
        raise ConvscopeError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if not 0 < cfg.audio.peak <= 1:
        raise ConvscopeError(f"audio.peak must be in (0, 1], got {cfg.audio.peak}")
    _check_subtype(cfg.audio.subtype)
    if cfg.plots.dpi <= 0 or cfg.plots.width_inches <= 0:
        raise ConvscopeError(
            f"plots.dpi and plots.width_inches must be positive, got {cfg.plots.dpi} and "
            f"{cfg.plots.width_inches}")
    if cfg.plots.max_channels < 1:
        raise ConvscopeError(f"plots.max_channels must be >= 1, got {cfg.plots.max_channels}")
    if cfg.plots.window_ms <= 0:
        raise ConvscopeError(f"plots.window_ms must be positive, got {cfg.plots.window_ms}")


def _check_subtype(subtype: str) -> None:
    import soundfile

    known = soundfile.available_subtypes("WAV")
    if subtype not in known:
        raise ConvscopeError(
            f"audio.subtype must be a WAV subtype ({', '.join(sorted(known))}), got {subtype!r}")
