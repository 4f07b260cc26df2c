"""Figure captions for a run's page: one or two sentences per figure, computed from the run.

A caption says what to notice in that run's figure (how many taps each output of a transposed
layer gets, how loud the images are), from what is on disk: the shapes document (shapes.json), the
metrics (metrics.json) and the figure's file name; no torch. A value the run does not have, or
one the metrics clip to their floor, reads "none". `figure_caption` picks the caption by file
name; an unknown figure gets "" (the page then shows just its name).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

from convscope.quality.metrics import tone_frequencies
from convscope.report.layer_captions import frames_summary, layer_caption
from convscope.report.units import NONE, db_text, final_metrics, hz_text, rate_of
from convscope.rundir import RunDir

# How the page words an image level (dB re the band below the input's Nyquist). Judgement, not a
# standard: above -20 dB images are plainly audible on speech; below -60 dB they are hard to hear.
LOUD_IMAGES_DB, QUIET_IMAGES_DB = -20.0, -60.0


def figure_caption(name: str, shapes: dict, metrics: Optional[dict]) -> str:
    """The caption of the figure file `name` (plots/<name>, or scatter.png) of this run."""
    match = RunDir.LAYER_PLOT.fullmatch(name)
    if match:
        return layer_caption(int(match[1]), match[2], shapes)
    caption = CAPTIONS.get(name)
    return caption(shapes, metrics) if caption else ""


# --- spectra and the learn stage ---------------------------------------------------------------

def upsampling_of(layers: list[dict]) -> Optional[int]:
    """The product of the rows' up factors (where the stride tones sit), as the evaluate stage
    computes it; None without rates."""
    if not layers or any("sample_rate_in" not in row or "sample_rate_out" not in row
                         for row in layers):
        return None
    return math.prod((rate_of(row, "sample_rate_out") / rate_of(row, "sample_rate_in")).numerator
                     for row in layers)


def tones_text(shapes: dict) -> str:
    upsampling = upsampling_of(shapes["layers"])
    freqs = tone_frequencies(float(rate_of(shapes["output"])), upsampling) if upsampling else []
    return ", ".join(hz_text(f) for f in freqs) or NONE


def upsamplers_text(shapes: dict) -> str:
    """'the 5-tap kernel of layer 1', or the kernels of several rate-raising layers."""
    raising = [row for row in shapes["layers"] if "conv" in row and "sample_rate_in" in row
               and rate_of(row, "sample_rate_out") > rate_of(row, "sample_rate_in")]
    if not raising:
        return "the stack"
    if len(raising) == 1:
        row = raising[0]
        return f"the {row['conv']['kernel_size']}-tap kernel of layer {row['name']}"
    sizes = ", ".join(str(row["conv"]["kernel_size"]) for row in raising)
    return f"the upsampling kernels ({sizes} taps)"


def images_text(shapes: dict, metrics: Optional[dict]) -> str:
    """'images above 8 kHz at -12.2 dB: the 5-tap kernel of layer 1 does not remove them'."""
    nyquist = hz_text(rate_of(shapes["input"]) / 2)
    level = final_metrics(metrics).get("image_db")
    if level is None:
        return f"images above {nyquist}: {NONE} measured (no evaluate stage in this run)"
    return f"images above {nyquist} at {db_text(level)}: {images_verdict(shapes, level)}"


def images_verdict(shapes: dict, level: float) -> str:
    """What an image level says about the stack's upsampling kernels."""
    if db_text(level) == NONE:
        return "nothing measurable there"
    who = upsamplers_text(shapes)
    if level > LOUD_IMAGES_DB:
        return f"{who} does not remove them"
    if level > QUIET_IMAGES_DB:
        return f"{who} attenuates them, but they are there"
    return f"{who} suppresses them well"


def spectrogram_caption(shapes: dict, metrics: Optional[dict]) -> str:
    source, output = shapes["input"], shapes["output"]
    rate_in, rate_out = rate_of(source), rate_of(output)
    window = ""
    if "window_seconds" in shapes.get("stream", {}):
        start, end = shapes["stream"]["window_seconds"]
        window = (f" Streamed run: only {start:g}-{end:g} s of the segment is drawn "
                  "(plots.spectrogram_start, plots.spectrogram_seconds).")
    if "features" in source:
        return (f"Input: {source['features']['kind']} frames, {frames_summary(source)}. Output: "
                f"audio at {hz_text(rate_out)}, drawn up to {hz_text(rate_out / 2)}." + window)
    if rate_out > rate_in:
        return (f"Everything from {hz_text(rate_in / 2)} (the input's Nyquist) up to "
                f"{hz_text(rate_out / 2)} was made by the stack; "
                f"{images_text(shapes, metrics)}." + window)
    if rate_out == rate_in:
        return (f"Same rate in and out ({hz_text(rate_in)}): whatever the stack lost or added "
                f"shows below {hz_text(rate_in / 2)}; compare the two." + window)
    return (f"The output keeps 0 to {hz_text(rate_out / 2)}: what the input had above that "
            "folds back unless the stack filtered it first." + window)


def levels_text(values: dict, shapes: dict) -> str:
    return (f"SNR {db_text(values.get('snr_db'))}, log-spectral distance "
            f"{db_text(values.get('lsd_db'))}, images above "
            f"{hz_text(rate_of(shapes['input']) / 2)} {db_text(values.get('image_db'))}, stride "
            f"tone ({tones_text(shapes)}) {db_text(values.get('tone_db'))}")


def spectrum_caption(shapes: dict, metrics: Optional[dict]) -> str:
    values = final_metrics(metrics)
    if not values:
        return f"No metrics.json: SNR, images and stride tone are {NONE}."
    learned = " after learning" if metrics and "after" in metrics else ""
    verdict = images_verdict(shapes, values["image_db"]) if "image_db" in values else NONE
    return (f"Output channel {values.get('channel', NONE)}{learned} against the "
            f"{values.get('reference', NONE)} reference: {levels_text(values, shapes)}. "
            f"Images: {verdict}.")


def spectrum_before_caption(shapes: dict, metrics: Optional[dict]) -> str:
    before = (metrics or {}).get("before") or {}
    after = final_metrics(metrics) if metrics and "after" in metrics else {}
    return (f"Before learning (the initial weights): {levels_text(before, shapes)}. "
            f"After (spectrum.png): SNR {db_text(after.get('snr_db'))}, images "
            f"{db_text(after.get('image_db'))}, stride tone {db_text(after.get('tone_db'))}.")


def loss_caption(_shapes: dict, metrics: Optional[dict]) -> str:
    before = (metrics or {}).get("before") or {}
    after = (metrics or {}).get("after") or {}
    snr_before, snr_after = before.get("snr_db"), after.get("snr_db")
    if snr_before is None or snr_after is None:
        trend = f"SNR before and after: {db_text(snr_before)}, {db_text(snr_after)}"
    else:
        verb = "rose" if snr_after > snr_before else "fell" if snr_after < snr_before else "stayed"
        trend = f"the output's SNR against the reference {verb} from {db_text(snr_before)} " \
                f"to {db_text(snr_after)}"
    return f"Training loss (log scale) and SNR per step: {trend}."


def kernels_caption(_shapes: dict, metrics: Optional[dict]) -> str:
    before = (metrics or {}).get("before") or {}
    after = (metrics or {}).get("after") or {}
    return ("Each conv layer's learned taps (top) and frequency response (bottom), then the whole "
            "stack's impulse response: the interpolation kernel it has learned. Images went from "
            f"{db_text(before.get('image_db'))} to {db_text(after.get('image_db'))}, the stride "
            f"tone from {db_text(before.get('tone_db'))} to {db_text(after.get('tone_db'))}.")


def scatter_caption(_shapes: dict, _metrics: Optional[dict]) -> str:
    return ("The explainer's picture. Transposed: each input sample's kernel copy, weighted by "
            "that sample and placed at l·s − p, one row each, and their sum below. Conv1d: one "
            "row per output holding the products of its window, summed on the right.")


def overview_caption(shapes: dict, _metrics: Optional[dict]) -> str:
    """plots/layers_overview.png: how many conv calls, where the rate changes."""
    convs = [row for row in shapes["layers"] if "conv" in row]
    changes = [row for row in convs if "sample_rate_in" in row and "sample_rate_out" in row
               and rate_of(row, "sample_rate_in") != rate_of(row, "sample_rate_out")]
    where = ", ".join(f"{row['name']} ({hz_text(rate_of(row, 'sample_rate_in'))} → "
                      f"{hz_text(rate_of(row, 'sample_rate_out'))})" for row in changes) or NONE
    return (f"Every conv call of the model, {len(convs)} rows in call order: each bar is the "
            f"call's output RMS in dB, one colour per rate. The rate changes at {where}: a line "
            "marks each. Bold rows have their own layer figure (by default the calls that change "
            "the rate; plots.layers picks others): a level that collapses or explodes from one "
            "row to the next is where to look first.")


CAPTIONS: dict[str, Callable[[dict, Optional[dict]], str]] = {
    RunDir.LAYERS_OVERVIEW: overview_caption,
    RunDir.SPECTROGRAM: spectrogram_caption,
    RunDir.SPECTRUM: spectrum_caption,
    RunDir.SPECTRUM_BEFORE: spectrum_before_caption,
    RunDir.LOSS: loss_caption,
    RunDir.KERNELS: kernels_caption,
    RunDir.SCATTER: scatter_caption,
}
