"""An array given to convscope.run(model=..., audio=...) as the source a file would be: a
waveform Segment, frames made from it (data.features), or precomputed frames. Nothing is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convscope.audio.features import (
    FeatureInput,
    FeatureSettings,
    compute_features,
    parse_frame_rate,
)
from convscope.audio.segment import Segment
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError

ARRAY_PATH = "<array>"  # data.path of an array input: shapes.json and the report show it


def _as_array(audio: Any) -> np.ndarray:
    if hasattr(audio, "detach"):  # a torch tensor, on any device
        audio = audio.detach().to("cpu").float().numpy()
    try:
        array = np.asarray(audio, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ConvscopeError(f"audio: a tensor or ndarray of float samples, got "
                             f"{type(audio).__name__}") from exc
    if array.size == 0 or not np.isfinite(array).all():
        raise ConvscopeError(f"audio: the array of shape {list(array.shape)} is empty or holds "
                             "NaN/inf")
    return array


def array_source(audio: Any, data: DataConfig) -> Segment | FeatureInput:
    """`audio` as the stack input data.features says: a waveform [L] or [C, L] at data.sr (a
    Segment, or its frames), or precomputed frames [C, T] / [1, C, T] at data.frame_rate."""
    array = _as_array(audio)
    path = Path(ARRAY_PATH)
    if data.features == "precomputed":
        frames = array[0] if array.ndim == 3 and array.shape[0] == 1 else array
        if frames.ndim != 2:
            raise ConvscopeError(f"audio: precomputed frames are [C, T] or [1, C, T], got shape "
                                 f"{list(array.shape)}")
        return FeatureInput(np.ascontiguousarray(frames), parse_frame_rate(data.frame_rate), None,
                            FeatureSettings.from_config(data), origin=path)
    samples = array[None] if array.ndim == 1 else array
    if samples.ndim != 2:
        raise ConvscopeError(f"audio: a waveform is [L] or [C, L], got shape {list(array.shape)}")
    if data.mono and samples.shape[0] > 1:
        samples = samples.mean(axis=0, keepdims=True)
    segment = Segment(np.ascontiguousarray(samples), int(data.sr), path, 0.0,
                      samples.shape[-1] / int(data.sr))
    return segment if data.features == "waveform" else compute_features(segment, data)
