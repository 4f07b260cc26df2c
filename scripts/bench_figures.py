"""(figures) the figures of a deep model against the rest of its run: 1 s of speech through the
published HiFi-GAN V1 (tests/reference_generators.py) as model=module, log-mel frames in, its 78
conv calls. Issue 21's goal: figure time <= the rest of the run. One run, in this process,
figures drawn in it (plots.workers=0), every figure's drawing timed where it is drawn, so both
numbers come from the same run; the rest is the run's wall time minus the figures'.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench_common import REPO

GOAL = 1.0  # figure time / the rest of the run


def figures_case(tmp: Path) -> dict:
    sys.path.insert(0, str(REPO))  # the reference generator lives with the tests
    from tests.reference_generators import HIFIGAN_CONFIGS

    import convscope
    from convscope.plots import background, figure_worker, layers

    config = tmp / "config_v1.json"
    config.write_text(json.dumps(HIFIGAN_CONFIGS["hifigan_v1"]))
    drawn: list[tuple[str, float]] = []
    render, spectrograms = figure_worker.render, layers.plot_spectrograms

    def timed(kind: str, draw):
        def run(*args):  # each figure as it is drawn, with its kind
            started = time.perf_counter()
            try:
                return draw(*args)
            finally:
                drawn.append((kind(*args), time.perf_counter() - started))
        return run

    # every figure of a run goes through render (figure jobs), but model=module's spectrogram
    # is drawn directly
    background.render = figure_worker.render = timed(lambda job: job.kind, render)
    layers.plot_spectrograms = timed(lambda *_: "spectrogram", spectrograms)
    try:
        started = time.perf_counter()
        convscope.run(["model=module",
                       f"model.target={REPO / 'tests' / 'reference_generators.py'}:"
                       "HifiGanGenerator", f"model.config_json={config}", "data=speech",
                       "data.features=log_mel", "data.sr=22050", "data.hop_length=256",
                       "data.end=1.0", "plots.workers=0"], out_dir=tmp / "run")
        wall = time.perf_counter() - started
    finally:
        background.render = figure_worker.render = render
        layers.plot_spectrograms = spectrograms
    figures = sum(seconds for _, seconds in drawn)
    kinds: dict[str, int] = {}
    for kind, _ in drawn:
        kinds[kind] = kinds.get(kind, 0) + 1
    result = {"model": "hifigan_v1 (model=module), 1 s of speech", "wall_s": wall,
              "figures_s": figures, "rest_s": wall - figures, "figures": kinds,
              "files": sorted(p.name for p in (tmp / "run" / "plots").glob("*.png"))}
    result["ratio"] = figures / result["rest_s"]
    return result


def print_figures(result: dict) -> None:
    verdict = "met" if result["ratio"] <= GOAL else "not met"
    print(f"{result['model']}: figures {result['figures_s']:.1f} s "
          f"({', '.join(f'{n} {kind}' for kind, n in result['figures'].items())}), rest of the "
          f"run {result['rest_s']:.1f} s, x{result['ratio']:.2f} (goal <= {GOAL}: {verdict})")
