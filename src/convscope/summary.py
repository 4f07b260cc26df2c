"""The per-layer table (weights, biases, params, MACs, shapes, length formula) and shapes.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from torch import nn

from convscope.atomic import write_text
from convscope.audio import Segment
from convscope.layers import LayerPlan, count_macs, weight_and_bias_shapes


@dataclass(frozen=True)
class LayerRow:
    index: int
    type: str
    weight_shape: Optional[list[int]]
    bias_shape: Optional[list[int]]
    params: int
    macs: int
    input_shape: list[int]
    output_shape: list[int]
    formula: str

    def as_json(self) -> dict:
        return dict(vars(self))


def layer_rows(plans: list[LayerPlan], stack: nn.Sequential) -> list[LayerRow]:
    rows = []
    for plan, module in zip(plans, stack):
        weight, bias = weight_and_bias_shapes(module)
        rows.append(LayerRow(plan.index, plan.type, weight, bias,
                             sum(p.numel() for p in module.parameters()), count_macs(plan),
                             list(plan.input_shape), list(plan.output_shape), plan.formula))
    return rows


TABLE_HEADER = ("#", "type", "weight", "bias", "params", "MACs", "input", "output")


def row_cells(row: LayerRow | dict) -> tuple[str, ...]:
    """One layer's cells under TABLE_HEADER (a LayerRow, or its shapes.json dict)."""
    r = row if isinstance(row, dict) else row.as_json()
    return (str(r["index"]), r["type"], shape_text(r["weight_shape"]),
            shape_text(r["bias_shape"]), f"{r['params']:,}", f"{r['macs']:,}",
            shape_text(r["input_shape"]), shape_text(r["output_shape"]))


def format_table(rows: list[LayerRow]) -> str:
    """A fixed-width table for the log, then each layer's length formula with its numbers."""
    header = TABLE_HEADER
    body = [row_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
             for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"layer {r.index} {r.type}: {r.formula}" for r in rows]
    return "\n".join(lines)


def shape_text(shape: Optional[Sequence[int]]) -> str:
    """[1,3,32000] as the log table, the report and the sweep index write shapes; - for none."""
    return "-" if shape is None else "[" + ",".join(str(n) for n in shape) + "]"


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
    if audio is not None:
        doc["audio"] = audio
    return doc


def write_shapes(path: Path, document: dict) -> None:
    write_text(path, json.dumps(document, indent=2) + "\n")
