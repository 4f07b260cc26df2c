"""The evaluate stage's files: metrics.json, plots/spectrum.png and audio/reference.wav
(the comparison itself is convscope.quality.evaluate)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from convscope.audio.wav import clipping_gain, write_wav
from convscope.config.schema import AudioConfig, PlotsConfig
from convscope.files import write_json
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


def run_evaluation(plan: EvaluationPlan, input_samples: np.ndarray, output: np.ndarray,
                   out_dir: Path, audio: AudioConfig, plots: PlotsConfig) -> Evaluation:
    """The pipeline stage: compare output channel plan.channel (1-D) with the reference of the
    input samples (channels, length); log, write metrics.json, the spectrum plot and the WAV."""
    evaluation = evaluate_output(plan, output, reference_signal(plan, input_samples))
    log.info("%s", format_metrics(evaluation))
    files = RunDir(out_dir)
    if plots.enabled:
        from convscope.plots.quality import plot_spectrum  # matplotlib: only with plots on

        plot_spectrum(files.spectrum, evaluation, plots)
    if audio.enabled:
        write_reference_audio(files.reference_wav, evaluation, audio)
    write_metrics(files.metrics, evaluation.as_json())
    return evaluation
