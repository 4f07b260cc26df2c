"""What a run returns: the one-shot RunResult and the StreamedRun."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from convscope.audio.blockio import SegmentSpan
from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.stack.rows import LayerRow
from convscope.stack.trace import LayerTrace


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    segment: Segment | FeatureInput  # what the stack took in
    rows: list[LayerRow]
    traces: list[LayerTrace]
    output_rate: Optional[int]  # the WAVs' rate; None when the exact rate is not a whole number
    shapes: dict


@dataclass(frozen=True)
class StreamedRun:
    """What a streamed run returns: like RunResult, without whole-signal traces."""

    out_dir: Path
    span: SegmentSpan | FeatureInput  # a feature input streams over its frames
    rows: list[LayerRow]
    output_rate: Optional[int]  # the WAVs' rate; None when the exact rate is not a whole number
    shapes: dict
