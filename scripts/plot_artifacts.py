"""Draw docs/images/artifacts.png: uneven vs even kernel overlap on a constant and on a tone.

    python scripts/plot_artifacts.py [--out docs/images/artifacts.png]

Runs model=artifact_k5s2 (the reference example's layer 2 geometry, k=5, stride 2) and
model=artifact_k4s2 (k = 2*stride) on data/constant.wav and data/tone.wav. Both use equal taps
(init: box), so what differs is only how many taps reach each output sample. The same runs
with every plot and WAV: python scripts/run.py -m model=artifact_k5s2,artifact_k4s2
data=tone,constant
"""

from __future__ import annotations

import argparse
from pathlib import Path

from convscope.audio.segment import Segment, load_segment
from convscope.config.presets import data_preset, model_preset
from convscope.plots.quality import ArtifactCase, plot_artifacts
from convscope.quality.metrics import image_level_db, tone_level_db, trim_edges
from convscope.stack.run_model import run_model

REPO = Path(__file__).resolve().parents[1]
CASES = (("artifact_k5s2", "k=5, s=2: uneven overlap"),
         ("artifact_k4s2", "k=4, s=2: even overlap"))
TONE_HZ = 1000.0  # scripts/make_sample_audio.py's probe tone


def load_probes() -> dict[str, Segment]:
    """data/constant.wav and data/tone.wav, loaded once for every model."""
    return {name: load_segment(data_preset(name), REPO) for name in ("constant", "tone")}


def artifact_case(model_name: str, title: str, probes: dict[str, Segment]) -> ArtifactCase:
    model = model_preset(model_name)
    runs = {name: run_model(model, seg.samples[0], seg.sample_rate) for name, seg in probes.items()}
    constant, tone = runs["constant"], runs["tone"]
    edge = constant.output_rate // 50  # 20 ms, as the evaluate stage
    rate_in = probes["tone"].sample_rate
    return ArtifactCase(
        title=f"{model_name}: {title}", constant_output=constant.outputs[0],
        tone_output=tone.outputs[0], rate=tone.output_rate, input_rate=rate_in,
        upsampling=tone.upsampling, tone_hz=TONE_HZ,
        tone_db=tone_level_db(trim_edges(constant.outputs[0], edge), constant.output_rate,
                              constant.upsampling),
        image_db=image_level_db(trim_edges(tone.outputs[0], edge), tone.output_rate, rate_in))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "artifacts.png")
    args = parser.parse_args()
    probes = load_probes()
    cases = [artifact_case(name, title, probes) for name, title in CASES]
    plot_artifacts(args.out, cases)
    for case in cases:
        print(f"{case.title}: stride tone on the constant {case.tone_db:.1f} dB, images of the "
              f"tone {case.image_db:.1f} dB")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
