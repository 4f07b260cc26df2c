"""How good is each upsampler? A table of measured figures, 16 kHz -> 32 kHz.

    python scripts/bench_quality.py                        # print the Markdown table
    python scripts/bench_quality.py --write docs/quality.md
    python scripts/bench_quality.py --skip-learn           # without the learned row (~10 s less)

Signals and measures (convscope.metrics):
- exact: a sum of eight sines between 220 Hz and 6.9 kHz, 1 s at 16 kHz, whose 32 kHz version is
  known analytically; SNR of each upsampler's output against it.
- speech: data/speech.wav (3.5 s); SNR and log-spectral distance against soxr_hq, images (power
  above 8 kHz relative to below).
- constant: data/constant.wav; the stride tone at 16 kHz relative to the output.
Edges are left out of every measure (EXACT_EDGE_SECONDS, evaluate.edge_ms for the rest): there
zero padding, not the interpolator, decides the output. Stacks run in float32, as in a run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from convscope.audio.segment import load_segment
from convscope.config.presets import data_preset, model_preset
from convscope.config.schema import EvaluateConfig, LearnConfig
from convscope.files import write_text
from convscope.quality.evaluate import EvaluationPlan, plan_evaluation, reference_signal
from convscope.quality.metrics import FLOOR_DB, Metrics, compare, snr_db, tone_level_db, trim_edges
from convscope.stack.run_model import run_model

REPO = Path(__file__).resolve().parents[1]
RATE_IN, RATE_OUT = 16000, 32000
EXACT_FREQS = (220.0, 1234.5, 2500.0, 3333.3, 4567.0, 5500.0, 6200.0, 6900.0)
EXACT_EDGE_SECONDS = 0.05
MODELS = ("sinc_x2", "linear_x2", "nearest_x2", "hifigan_style", "resize_conv", "seed_example")
RESAMPLERS = ("soxr_vhq", "soxr_hq")
Upsampler = Callable[[np.ndarray], np.ndarray]  # mono 16 kHz -> the compared 32 kHz channel


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    exact_snr: float
    speech: Metrics
    constant_tone: float


def exact_signal() -> tuple[np.ndarray, np.ndarray]:
    """The band-limited test signal at 16 kHz (float32) and its exact 32 kHz version."""
    rng = np.random.default_rng(0)
    amplitudes = rng.uniform(0.05, 0.15, len(EXACT_FREQS))
    phases = rng.uniform(0, 2 * np.pi, len(EXACT_FREQS))

    def at(rate: int) -> np.ndarray:
        t = np.arange(rate) / rate  # one second
        return sum(a * np.sin(2 * np.pi * f * t + p)
                   for a, f, p in zip(amplitudes, EXACT_FREQS, phases))

    return at(RATE_IN).astype(np.float32), at(RATE_OUT)


def measure(name: str, what: str, upsample: Upsampler, signals: dict) -> Row:
    x, truth = signals["exact"]
    edge = int(EXACT_EDGE_SECONDS * RATE_OUT)
    exact = snr_db(trim_edges(upsample(x)[:len(truth)], edge), trim_edges(truth, edge))
    plan: EvaluationPlan = signals["plan"]
    speech = compare(upsample(signals["speech"]), signals["speech_reference"], RATE_OUT, RATE_IN,
                     plan.upsampling, plan.edge)
    tone = tone_level_db(trim_edges(upsample(signals["constant"]), plan.edge), RATE_OUT,
                         plan.upsampling)
    return Row(name, what, exact, speech, tone)


def model_upsampler(name: str, stack=None) -> Upsampler:
    model = model_preset(name)

    def upsample(x: np.ndarray) -> np.ndarray:
        run = run_model(model, x, RATE_IN)
        if stack is not None:  # learned weights
            run.stack.load_state_dict(stack.state_dict())
            import torch

            with torch.no_grad():
                return run.stack(torch.as_tensor(x[None, None]))[0, 0].numpy()
        return run.outputs[0]

    return upsample


def resampler(res_type: str, signals: dict) -> Upsampler:
    """librosa.resample(x, res_type=...) as the evaluate stage computes it (soxr without librosa)."""
    plan = replace(signals["plan"], reference=res_type)

    def upsample(x: np.ndarray) -> np.ndarray:
        if x is signals["speech"] and plan == signals["plan"]:
            return signals["speech_reference"]  # computed once in load_signals
        return reference_signal(plan, x[None])

    return upsample


def describe(name: str) -> str:
    layers = model_preset(name).layers
    convs = [l for l in layers if l.type in ("Conv1d", "ConvTranspose1d")]
    inits = sorted({l.init or "random" for l in convs})
    sizes = "+".join(str(l.kernel_size) for l in convs)
    plural = "s" if len(layers) > 1 else ""
    return f"{len(layers)} layer{plural}, kernels {sizes}, init {'/'.join(inits)}"


def learned_row(signals: dict) -> Row:
    """seed_example fitted to soxr_hq on the speech clip with scripts/learn.py's defaults."""
    import torch

    from convscope.quality.fit import fit

    run = run_model(model_preset("seed_example"), signals["speech"], RATE_IN)
    x = torch.as_tensor(signals["speech"][None, None])
    history = fit(run.stack, x, signals["speech_reference"], signals["plan"],
                  LearnConfig(progress=False))
    print(f"learned seed_example in {history.seconds:.1f} s", file=sys.stderr)
    what = "seed_example fitted to soxr_hq on the speech clip (learn.py defaults)"
    return measure("seed_example, learned", what, model_upsampler("seed_example", run.stack),
                   signals)


def load_signals() -> dict:
    speech = load_segment(data_preset("speech"), REPO).samples[0]
    constant = load_segment(data_preset("constant"), REPO).samples[0]
    plans = run_model(model_preset("seed_example"), speech[:64], RATE_IN).plans
    plan = plan_evaluation(EvaluateConfig(enabled="true"), plans, RATE_IN, RATE_OUT)
    return {"exact": exact_signal(), "speech": speech, "constant": constant, "plan": plan,
            "speech_reference": reference_signal(plan, speech[None])}


def _db(value: float) -> str:
    """Metrics clip at ±FLOOR_DB: say what that means instead of printing 200."""
    if value >= FLOOR_DB:
        return "identical"
    return "none" if value <= -FLOOR_DB else f"{value:.1f}"


def markdown(rows: list[Row]) -> str:
    head = ("| upsampler | what | SNR vs exact (dB) | speech: SNR vs soxr_hq (dB) | "
            "speech: LSD (dB) | speech: images (dB) | constant: stride tone (dB) |")
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        m = r.speech
        lines.append(f"| {r.name} | {r.what} | {_db(r.exact_snr)} | {_db(m.snr_db)} | "
                     f"{m.lsd_db:.2f} | {_db(m.image_db)} | {_db(r.constant_tone)} |")
    notes = [
        "",
        "SNR vs exact: a sum of sines (220 Hz to 6.9 kHz) whose 32 kHz version is computed "
        f"analytically, {EXACT_EDGE_SECONDS * 1000:g} ms left out at each end. Speech: "
        "data/speech.wav against librosa.resample(res_type=\"soxr_hq\"), 20 ms left out at each "
        "end; images = power above 8 kHz relative to below; none: below -200 dB. "
        "Stride tone: the line at 16 kHz on data/constant.wav. Random rows use seed 0, output "
        "channel 0.",
        "",
        "Made by `python scripts/bench_quality.py --write docs/quality.md`.",
    ]
    return "\n".join(lines + notes) + "\n"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--skip-learn", action="store_true", help="leave out the learned row")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    signals = load_signals()
    rows = [measure(r, "librosa.resample", resampler(r, signals), signals) for r in RESAMPLERS]
    rows += [measure(m, describe(m), model_upsampler(m), signals) for m in MODELS]
    if not args.skip_learn:
        rows.append(learned_row(signals))
    table = markdown(rows)
    print(table)
    print(f"measured in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.write:
        title = "# Upsampling quality, 16 kHz -> 32 kHz\n\n"
        write_text(args.write, title + table)
        print(f"wrote {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
