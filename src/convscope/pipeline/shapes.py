"""shapes.json: the run's input, per-layer rows and output, as one document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from convscope.audio.segment import Segment
from convscope.files import write_text
from convscope.stack.receptive import latency
from convscope.stack.rows import LayerRow


def shapes_document(segment: Segment, rows: list[LayerRow], exact_rate: float,
                    audio: Optional[dict]) -> dict:
    """The shapes.json contract. `segment` is anything with shape, sample_rate, path, start and
    end (a loaded Segment or a streamed run's SegmentSpan). WAVs need an integer rate: when the
    exact output rate is not one, it is kept beside the rounded one."""
    output_rate = int(round(exact_rate))
    doc = {
        "input": {"shape": list(segment.shape), "sample_rate": segment.sample_rate,
                  "path": str(segment.path), "start": segment.start, "end": segment.end},
        "layers": [row.as_json() for row in rows],
        "output": {"shape": rows[-1].output_shape, "sample_rate": output_rate},
    }
    if exact_rate != output_rate:
        doc["output"]["sample_rate_exact"] = exact_rate
    # the stack input's rate: the rows' own when they carry one (frames for a feature input)
    stack_latency = latency(rows, rows[0].rate_in or segment.sample_rate)
    if stack_latency is not None:
        doc["latency"] = stack_latency
    if audio is not None:
        doc["audio"] = audio
    return doc


def write_shapes(path: Path, document: dict) -> None:
    write_text(path, json.dumps(document, indent=2) + "\n")
