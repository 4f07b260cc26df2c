"""Value checks that types alone can't express; each error names its key.

The checks only raise: they read a config and change nothing. Spellings that mean the same value
are made one beforehand (convscope.config.convert.normalise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from convscope.config.schema import (
    DEVICES,
    EVALUATE_MODES,
    FEATURES,
    REFERENCE_RESAMPLERS,
    STREAM_ENGINES,
    STREAM_MODES,
    DataConfig,
    EvaluateConfig,
    LearnConfig,
    LimitsConfig,
    ModelConfig,
    RunConfig,
    StreamConfig,
)
from convscope.errors import ConvscopeError


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
    _check_model(cfg.model)
    _check_features(data)
    if cfg.device not in DEVICES:
        raise ConvscopeError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if not 0 < cfg.audio.peak <= 1:
        raise ConvscopeError(f"audio.peak must be in (0, 1], got {cfg.audio.peak}")
    _check_subtype(cfg.audio.subtype)
    _check_stream(cfg.stream)
    _check_evaluate(cfg.evaluate)
    _check_limits(cfg.limits)
    if cfg.plots.dpi <= 0 or cfg.plots.width_inches <= 0:
        raise ConvscopeError(
            f"plots.dpi and plots.width_inches must be positive, got {cfg.plots.dpi} and "
            f"{cfg.plots.width_inches}")
    if cfg.plots.max_channels < 1:
        raise ConvscopeError(f"plots.max_channels must be >= 1, got {cfg.plots.max_channels}")
    if cfg.plots.max_layers < 1:
        raise ConvscopeError(f"plots.max_layers must be >= 1, got {cfg.plots.max_layers}")
    if cfg.plots.window_ms <= 0:
        raise ConvscopeError(f"plots.window_ms must be positive, got {cfg.plots.window_ms}")
    if cfg.plots.spectrogram_start < 0 or cfg.plots.spectrogram_seconds <= 0:
        raise ConvscopeError(
            f"plots.spectrogram_start must be >= 0 and plots.spectrogram_seconds > 0, got "
            f"{cfg.plots.spectrogram_start} and {cfg.plots.spectrogram_seconds}")


def _check_model(model: ModelConfig) -> None:
    """A run takes a config stack (model.layers) or the user's module (model.target), not both."""
    if model.target is not None:
        if model.layers:
            raise ConvscopeError(
                f"model.target: {model.target!r} is set together with model.layers "
                f"({len(model.layers)} layers of model {model.name}): a run takes one or the "
                "other; for your own module start from model=module")
        if not model.target.strip():
            raise ConvscopeError("model.target is empty: give package.module.Class or "
                                 "path/to/file.py:Class")
        if model.causal:
            raise ConvscopeError(f"model.causal: makes the convs of a config stack (model.layers) "
                                 f"causal; your own module {model.target!r} is built as written")
        if not isinstance(model.kwargs, Mapping):
            raise ConvscopeError(f"model.kwargs must be a mapping of keyword arguments, like "
                                 f"'model.kwargs={{channels: 8}}', got {model.kwargs!r}")
        return
    if not model.layers:
        if model.name == "module":  # configs/model/module.yaml, chosen without its target
            raise ConvscopeError(
                "model.target: no value given: model=module runs your own nn.Module, named as "
                "model.target=package.module.Class (importable from this directory) or "
                "model.target=path/to/file.py:Class")
        raise ConvscopeError("model.layers is empty: give at least one layer, or run your own "
                             "nn.Module with model=module model.target=package.module.Class")
    for key in ("kwargs", "weights"):
        if getattr(model, key):
            raise ConvscopeError(f"model.{key} is only read with model.target (model=module), "
                                 f"which is not set; config stacks start from their seeded init")


def _check_features(data: DataConfig) -> None:
    """The feature frontend's settings (convscope.audio.features). The STFT keys are checked
    for a waveform input too: a typo there should not wait until someone switches features on."""
    if data.features not in FEATURES:
        raise ConvscopeError(
            f"data.features must be one of {', '.join(FEATURES)}, got {data.features!r}")
    for key in ("n_fft", "hop_length", "n_mels"):
        if getattr(data, key) < 1:
            raise ConvscopeError(f"data.{key} must be >= 1, got {getattr(data, key)}")
    if data.win_length is not None and not 1 <= data.win_length <= data.n_fft:
        raise ConvscopeError(f"data.win_length must be in [1, data.n_fft={data.n_fft}] or null "
                             f"(null: n_fft), got {data.win_length}")
    bins = data.n_fft // 2 + 1
    if data.features in ("mel", "log_mel") and data.n_mels > bins:
        raise ConvscopeError(f"data.n_mels must be <= data.n_fft // 2 + 1 = {bins} (the STFT bins "
                             f"of n_fft={data.n_fft}), got n_mels={data.n_mels}")
    nyquist = data.sr / 2
    if not math.isfinite(data.fmin) or data.fmin < 0:
        raise ConvscopeError(f"data.fmin must be >= 0 Hz, got {data.fmin}")
    if data.fmax is not None and not data.fmin < data.fmax <= nyquist:
        raise ConvscopeError(f"data.fmax must be in (data.fmin, data.sr / 2] = ({data.fmin:g}, "
                             f"{nyquist:g}] Hz or null (null: sr / 2), got {data.fmax}")
    if data.fmax is None and data.fmin >= nyquist:
        raise ConvscopeError(f"data.fmin must be below data.sr / 2 = {nyquist:g} Hz (fmax is "
                             f"null: sr / 2), got {data.fmin}")
    if data.features != "waveform" and not data.center and data.end is not None:
        samples = math.floor((data.end - data.start) * data.sr)
        if samples < data.hop_length:
            raise ConvscopeError(
                f"data.hop_length: the segment {data.start}-{data.end} s holds about {samples} "
                f"samples at {data.sr} Hz, less than one frame of hop_length={data.hop_length}")


def _check_stream(stream: StreamConfig) -> None:
    if stream.enabled not in STREAM_MODES:
        raise ConvscopeError(
            f"stream.enabled must be one of {', '.join(STREAM_MODES)}, got {stream.enabled!r}")
    for name in ("block_seconds", "auto_seconds"):
        value = getattr(stream, name)
        if not math.isfinite(value) or value <= 0:
            raise ConvscopeError(f"stream.{name} must be a positive number of seconds, got {value}")
    _check_subtype(stream.subtype, "stream.subtype")
    if stream.mode not in STREAM_ENGINES:
        raise ConvscopeError(
            f"stream.mode must be one of {', '.join(STREAM_ENGINES)}, got {stream.mode!r}")
    if stream.threads < 0:
        raise ConvscopeError(f"stream.threads must be >= 0 (0: torch's default), got {stream.threads}")


def _check_evaluate(evaluate: EvaluateConfig) -> None:
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


def _check_limits(limits: LimitsConfig) -> None:
    """The resource limits (convscope.pipeline.preflight): finite and positive."""
    fraction = limits.memory_fraction
    if not math.isfinite(fraction) or not 0 < fraction <= 1:
        raise ConvscopeError(f"limits.memory_fraction must be in (0, 1] (a share of the "
                             f"machine's RAM), got {fraction}")
    for key in ("memory_gb", "one_shot_gb", "block_mb", "max_gmacs", "max_output_gb"):
        value = getattr(limits, key)
        if value is None and key == "memory_gb":
            continue
        if not math.isfinite(value) or value <= 0:
            raise ConvscopeError(f"limits.{key} must be a positive finite number, got {value}")


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
    import soundfile  # loads libsndfile (cffi): the config package stays import-light

    known = soundfile.available_subtypes("WAV")
    if subtype not in known:
        raise ConvscopeError(
            f"{key} must be a WAV subtype ({', '.join(sorted(known))}), got {subtype!r}")
