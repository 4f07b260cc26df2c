"""The stages every run shares: prepare the stack before any sample goes through it, check the
output's alignment (the rows that ran against T x hop_length for a feature input, or L_in x up /
down for a waveform, logged in one line), and finish with weights.pt, shapes.json (the run's
input, per-layer rows and output, as one document) and the report page."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.files import atomic_path, write_json
from convscope.plots.background import wait_for_figures
from convscope.quality.evaluate import EvaluationPlan, evaluation_plan
from convscope.report.page import RunCommand, write_report
from convscope.rundir import RunDir
from convscope.stack.alignment import Alignment, check_alignment, expected_length
from convscope.stack.config_rows import config_rows
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import (
    exact_rate,
    integer_rate,
    layer_rates,
    rate_json,
    rate_text,
    upsampling_factor,
)
from convscope.stack.receptive import latency
from convscope.stack.rows import LayerRow
from convscope.text import format_table

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class PreparedStack:
    """Everything known about a run before any sample goes through the stack."""

    plans: list[LayerPlan]
    exact_rate: Fraction  # the output rate, exactly
    output_rate: Optional[int]  # what WAVs can hold: None when exact_rate is not a whole number
    evaluation: Optional[EvaluationPlan]  # None: the evaluate stage is off
    stack: nn.Sequential
    rows: list[LayerRow]
    input_rate: Fraction
    alignment: Optional[Alignment] = None  # the output length vs T x hop_length or L_in x up/down


def prepare_stack(cfg: RunConfig, source, plans: list[LayerPlan], stack: nn.Sequential,
                  label: str, device: torch.device, evaluate: bool = True) -> PreparedStack:
    """Output rate, evaluate plan and the table (logged) of `stack`, the config stack built
    from checked `plans` of the input `source` (a loaded Segment, a streamed run's SegmentSpan
    or a FeatureInput) with its weights, to run on `device`. `label`: the model's name for the
    log; `evaluate`: False where the run's decision turned the evaluate stage off.

    The rows come from the plan's shapes through stack.rows.layer_row, the function describe()
    uses: the table, shapes.json and convscope.describe agree without a forward pass here."""
    input_rate = log_input(source, device)
    rates = layer_rates(plans, input_rate)
    exact = rates[-1] if rates else input_rate
    evaluation = plan_evaluate_stage(cfg, plans[-1].output_shape[1], upsampling_factor(plans),
                                     input_rate, exact, isinstance(source, FeatureInput),
                                     evaluate)
    rows = config_rows(plans, stack, input_rate)
    log.info("layers (seed %d, model %s):\n%s", cfg.seed, label,
             format_table(rows, rates=True))
    alignment = run_alignment(stack, rows, source, plans[-1].output_shape[-1], exact / input_rate)
    return PreparedStack(plans, exact, integer_rate(exact), evaluation, stack, rows, input_rate,
                         alignment)


def log_input(source, device: torch.device) -> Fraction:
    """The input's lines of the log (file, span, exact rate, shape; a feature input's frontend)
    and the device; returns the exact input rate."""
    input_rate = exact_rate(source.sample_rate, "data.sr")
    log.info("input: %s, %.3f-%.3f s at %s Hz, shape %s", source.path, source.start, source.end,
             rate_text(input_rate), list(source.shape))
    if isinstance(source, FeatureInput):
        log.info("input: %s", source.summary())
    log.info("device: %s", device)
    return input_rate


def plan_evaluate_stage(cfg: RunConfig, out_channels: int, upsampling: int, input_rate: Fraction,
                        output_rate: Fraction, features: bool,
                        decided: bool = True) -> Optional[EvaluationPlan]:
    """The evaluate stage's plan, or None (logged why, where `auto` turned it off), for a config
    stack or a user's module. The reference resampler takes a waveform from one whole-number
    rate to another. `decided`: False where the run's decision turned it off (logged there)."""
    mode = cfg.evaluate.enabled
    if mode == "false" or not decided:
        return None
    why_not = None
    if features:
        why_not = (f"the input is {cfg.data.features} frames, not a waveform: the reference "
                   "resampler compares waveforms at two rates, and a feature input has no "
                   "resampled counterpart")
    elif output_rate.denominator != 1:
        why_not = (f"the output rate {output_rate} Hz is not a whole number: the reference "
                   "resampler and reference.wav need one")
    if why_not is not None:
        if mode == "true":
            raise ConvscopeError(f"evaluate.enabled=true: {why_not}; use evaluate.enabled=auto "
                                 "or false")
        log.info("evaluate: off, %s", why_not)
        return None
    return evaluation_plan(cfg.evaluate, out_channels, upsampling, int(input_rate),
                           int(output_rate))


def finish_run(cfg: RunConfig, out_dir: Path, source, prepared: PreparedStack,
               audio_info: Optional[dict], command: Optional[RunCommand] = None,
               extra: Optional[dict] = None,
               weights_of: Optional[Callable[[nn.Module], dict]] = None) -> dict:
    """The end every run shares: weights.pt, then shapes.json (with `extra` sections), then the
    report page, which reads what the run left on disk. Returns the shapes document.
    `weights_of`: what weights.pt holds of the model (chosen where the model was obtained:
    preset_weights.weights_to_save for its export layout); default its state_dict."""
    if cfg.save.weights:
        # through a Python file: torch.save(path) words a full disk as "unexpected pos 704 vs
        # 598", a file object gives the OSError (ENOSPC) that the entry reports as one line
        with atomic_path(RunDir(out_dir).weights) as tmp, open(tmp, "wb") as handle:
            torch.save((weights_of or nn.Module.state_dict)(prepared.stack), handle)
    wait_for_figures()  # a figure worker's PNGs are on disk before shapes.json says "finished"
    shapes = shapes_document(source, prepared.rows, prepared.exact_rate, audio_info)
    if prepared.alignment is not None:
        shapes["alignment"] = prepared.alignment.as_json()
    shapes.update(extra or {})
    if cfg.save.shapes:
        write_shapes(RunDir(out_dir).shapes, shapes)
    if cfg.report:
        write_report(out_dir, shapes, command)
    log.info("outputs written to %s", out_dir)
    return shapes


def run_alignment(model: nn.Module, rows: list[LayerRow], source, output_length: int,
                  factor: Fraction) -> Alignment:
    """`rows` are the leaf calls of `model` (`name`: the module's qualified name; `key`: the
    config key, where there is one), `source` the stack's input (a Segment, SegmentSpan or
    FeatureInput), `factor` the stack's exact rate factor."""
    length = source.shape[-1]
    if isinstance(source, FeatureInput):
        hop = source.settings.hop_length
        target = None if source.target is None else int(source.target.samples.shape[-1])
    else:
        hop, target = None, None
    expected, rule, note = expected_length(length, factor, hop)
    layers = [(row.key or row.name, model.get_submodule(row.name), row.type) for row in rows]
    alignment = check_alignment(expected, output_length, rule, layers, target, note)
    (log.info if alignment.ok else log.warning)("alignment: %s", alignment.summary())
    return alignment


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
