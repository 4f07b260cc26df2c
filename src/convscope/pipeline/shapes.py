"""shapes.json: the run's input, per-layer rows and output, as one document."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional

from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.files import write_json
from convscope.stack.rates import exact_rate, rate_json
from convscope.stack.receptive import latency
from convscope.stack.rows import LayerRow


def shapes_document(segment: Segment | FeatureInput, rows: list[LayerRow], output_rate: Fraction,
                    audio: Optional[dict]) -> dict:
    """The shapes.json contract. `segment` is anything with shape, sample_rate, path, start and
    end (a loaded Segment, a streamed run's SegmentSpan or a FeatureInput). Every rate is written
    as a number and its exact fraction text (`sample_rate`, `sample_rate_fraction`)."""
    doc = {
        "input": {"shape": list(segment.shape),
                  **rate_json(exact_rate(segment.sample_rate, "data.sr")),
                  "path": str(segment.path), "start": segment.start, "end": segment.end},
        "layers": [row.as_json() for row in rows],
        "output": {"shape": rows[-1].output_shape, **rate_json(output_rate)},
    }
    if isinstance(segment, FeatureInput) and segment.target is None:
        doc["input"]["features"] = segment.settings.as_json()
        doc["input"]["target"] = None
        doc["input"]["no_target"] = ("precomputed frames: no target audio, so no input.wav and "
                                     "no evaluate stage")
    elif isinstance(segment, FeatureInput):
        target = segment.target
        doc["input"]["features"] = segment.settings.as_json()
        doc["input"]["target"] = {"samples": int(target.samples.shape[-1]),
                                  "shape": list(target.shape),
                                  **rate_json(exact_rate(target.sample_rate, "data.sr")),
                                  "path": str(target.path)}
    # the stack input's rate: the rows' own (frames per second for a feature input)
    stack_latency = latency(rows, rows[0].rate_in or exact_rate(segment.sample_rate, "data.sr"))
    if stack_latency is not None:
        doc["latency"] = stack_latency
    if audio is not None:
        doc["audio"] = audio
    return doc


def write_shapes(path: Path, document: dict) -> None:
    write_json(path, document)
