"""The stages every run shares: prepare the stack before any sample goes through it,
finish with weights.pt, shapes.json and the report page."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from convscope.config.schema import RunConfig
from convscope.files import atomic_path
from convscope.pipeline.shapes import shapes_document, write_shapes
from convscope.quality.evaluate import EvaluationPlan, plan_evaluation
from convscope.report.page import RunCommand, write_report
from convscope.rundir import RunDir
from convscope.stack.build import build_stack
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import output_sample_rate
from convscope.stack.receptive import with_receptive_fields
from convscope.stack.rows import LayerRow, layer_rows
from convscope.text import format_table

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class PreparedStack:
    """Everything known about a run before any sample goes through the stack."""

    plans: list[LayerPlan]
    exact_rate: float
    output_rate: int  # what WAVs can hold
    evaluation: Optional[EvaluationPlan]  # None: the evaluate stage is off
    stack: nn.Sequential
    rows: list[LayerRow]


def prepare_stack(cfg: RunConfig, source, plans: list[LayerPlan],
                  device: torch.device) -> PreparedStack:
    """Output rate, evaluate plan, seeded stack and its table (logged) for checked `plans` of
    the input `source` (a loaded Segment or a streamed run's SegmentSpan), to run on `device`.

    The rows come from the plan's shapes through stack.rows.layer_row, the function describe()
    uses: the table, shapes.json and convscope.describe agree without a forward pass here."""
    log.info("input: %s, %.3f-%.3f s at %d Hz, shape %s", source.path, source.start, source.end,
             source.sample_rate, list(source.shape))
    log.info("device: %s", device)
    exact_rate = output_sample_rate(plans, source.sample_rate)
    output_rate = int(round(exact_rate))
    evaluation = plan_evaluation(cfg.evaluate, plans, source.sample_rate, output_rate)
    stack = build_stack(plans, cfg.seed)
    rows = with_receptive_fields(layer_rows(plans, stack), stack, plans[0].input_shape)
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, cfg.model.name, format_table(rows))
    return PreparedStack(plans, exact_rate, output_rate, evaluation, stack, rows)


def finish_run(cfg: RunConfig, out_dir: Path, source, prepared: PreparedStack,
               audio_info: Optional[dict], command: Optional[RunCommand] = None,
               extra: Optional[dict] = None) -> dict:
    """The end every run shares: weights.pt, then shapes.json (with `extra` sections), then the
    report page, which reads what the run left on disk. Returns the shapes document."""
    if cfg.save.weights:
        with atomic_path(RunDir(out_dir).weights) as tmp:
            torch.save(prepared.stack.state_dict(), tmp)
    shapes = shapes_document(source, prepared.rows, prepared.exact_rate, audio_info)
    shapes.update(extra or {})
    if cfg.save.shapes:
        write_shapes(RunDir(out_dir).shapes, shapes)
    if cfg.report:
        write_report(out_dir, shapes, command)
    log.info("outputs written to %s", out_dir)
    return shapes


def _rate_text(rate: float) -> str:
    return f"{rate:g}" if rate == int(rate) else f"{rate:.3f} (WAVs use {round(rate)})"
