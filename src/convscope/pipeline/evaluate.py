"""The evaluate stage's files: metrics.json, plots/spectrum.png and audio/reference.wav
(the comparison itself is convscope.quality.evaluate)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from convscope.audio.wav import clipping_gain, write_wav
from convscope.config.schema import AudioConfig, PlotsConfig
from convscope.files import write_json
from convscope.plots.background import figure_sink
from convscope.plots.figure_worker import FigureJob
from convscope.quality.evaluate import (
    Evaluation,
    EvaluationPlan,
    evaluate_output,
    format_metrics,
    reference_signal,
)
from convscope.rundir import RunDir

log = logging.getLogger("convscope")


def write_metrics(path: Path, document: dict) -> None:
    write_json(path, document)


def write_reference_audio(path: Path, evaluation: Evaluation, audio: AudioConfig) -> None:
    """The reference at the output rate, scaled down only if it would clip (like input.wav)."""
    reference = evaluation.reference
    gain = clipping_gain(float(np.max(np.abs(reference))), audio.peak)
    write_wav(path, reference, evaluation.plan.output_rate, audio.subtype, gain)


def spectrum_view(evaluation: Evaluation) -> SimpleNamespace:
    """What plot_spectrum reads of an Evaluation, in plain types: unpickling quality.evaluate's
    own classes would import torch into the figure worker."""
    return SimpleNamespace(plan=SimpleNamespace(**asdict(evaluation.plan)),
                           metrics=evaluation.metrics, output=evaluation.output,
                           reference=evaluation.reference)


def run_evaluation(plan: EvaluationPlan, input_samples: np.ndarray, output: np.ndarray,
                   out_dir: Path, audio: AudioConfig, plots: PlotsConfig) -> Evaluation:
    """The pipeline stage: compare output channel plan.channel (1-D) with the reference of the
    input samples (channels, length); log, write metrics.json, the spectrum plot and the WAV."""
    evaluation = evaluate_output(plan, output, reference_signal(plan, input_samples))
    log.info("%s", format_metrics(evaluation))
    files = RunDir(out_dir)
    if plots.enabled:  # drawn by the figure worker when there is one (plots.workers)
        figure_sink(plots).submit(FigureJob("spectrum", files.spectrum,
                                            (spectrum_view(evaluation), plots)))
    if audio.enabled:
        write_reference_audio(files.reference_wav, evaluation, audio)
    write_metrics(files.metrics, evaluation.as_json())
    return evaluation
