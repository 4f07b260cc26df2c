"""What a run decided (RunContext, made once, never rewritten) and what it returns: the one-shot
RunResult and the StreamedRun."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch

from convscope.audio.blockio import SegmentSpan
from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.report.page import RunCommand
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


FIGURE_CHOICES = ("each layer", "rate changes")


@dataclass(frozen=True)
class RunContext:
    """What a run decided before its forward, carried down instead of a rewritten config (the
    composed config stays what the user asked for; shapes.json records these): the run dir, the
    source and its exact rate, the device, the estimate, one shot or streamed and why, the
    block length on the device, and the optional stages the decision turned off."""

    out_dir: Path
    source: Segment | SegmentSpan | FeatureInput  # a streamed waveform: where it lies
    input_rate: Fraction
    device: torch.device
    model_label: str  # model.target, or the Python object's class for convscope.run(model=...)
    estimate: Optional[dict]  # preflight's Estimate.as_json(); None: no estimate (see preflight)
    streamed: bool
    why: str
    command: Optional[RunCommand] = None
    model_info: Optional[dict[str, Any]] = None  # shapes.json's "model" section
    block_seconds: Optional[float] = None  # stream.block_seconds on the device (x16 on a GPU)
    block_samples: Optional[int] = None  # output samples per block, bounded by memory
    spectrogram: bool = True  # False: the decision turned the spectrogram figure off
    evaluate: bool = True  # False: the decision turned an `auto` evaluate stage off
    decision: Optional[dict] = None  # preflight.Decision.as_json(): why, turned_off, blocks
    model_key: str = "model"  # the config key an error about the model names (model.target)
    # what weights.pt holds of the model, chosen where it was obtained (a config stack's export
    # layout: preset_weights.weights_to_save); None: its state_dict
    weights_of: Optional[Callable[[torch.nn.Module], dict]] = None
    # the config key of each named submodule, where the model came from a config (a config
    # stack's plan: "0" -> model.layers.0, "3.inner.1" -> model.layers.3.layers.1): the rows,
    # the table and a non-finite output name layers by it; empty for any other module
    keys: Mapping[str, str] = field(default_factory=dict)
    # which layer figures the one-shot path draws, a choice made where the model was obtained
    # (FIGURE_CHOICES): "each layer": every child of the model, each with its input (a config
    # stack: a short chain a learner reads layer by layer); "rate changes": the calls whose rate
    # changes (plots.layers picks others) and the overview of every conv call (a deep model)
    figures: str = "rate changes"

    @property
    def engine(self) -> Optional[str]:
        """What streams the run (preflight.ENGINES); None: one shot."""
        return (self.decision or {}).get("engine") if self.streamed else None

    def decisions(self) -> dict:
        """shapes.json's sections for what was decided."""
        decision = {"streamed": self.streamed, "why": self.why, **(self.decision or {}),
                    "device": str(self.device)}
        if self.block_samples is not None:
            decision["block_samples"] = self.block_samples
        return {"estimate": self.estimate, "decision": decision}
