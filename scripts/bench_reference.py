"""(a) The reference example end to end against the tutorial's plain script."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench_common import PY, run_child_rss

REFERENCE_GOALS = {"in_process": 0.7, "background": 0.6, "one_worker": 0.6}  # issue 14
REFERENCE_VARIANTS = {  # name: scripts/run.py overrides
    "background": [],  # the default: figures drawn by 2 figure workers meanwhile
    "one_worker": ["plots.workers=1"],
    "in_process": ["plots.workers=0"],
    "no_plots": ["plots.enabled=false"],  # what the figures cost: the difference to this
}


def reference_vs_baseline(repeat: int, tmp: Path) -> dict:
    """The reference example (three ways) and the tutorial baseline, interleaved so load
    changes hit all alike; medians of `repeat`."""
    times: dict[str, list[float]] = {"baseline": [], **{name: [] for name in REFERENCE_VARIANTS}}
    for i in range(repeat):
        times["baseline"].append(run_child_rss(
            [PY, "scripts/bench_tutorial_baseline.py", "--out", str(tmp / f"baseline{i}")])[0])
        for name, overrides in REFERENCE_VARIANTS.items():
            times[name].append(run_child_rss(
                [PY, "scripts/run.py", f"hydra.run.dir={tmp / f'{name}{i}'}", *overrides])[0])
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["baseline"]
    return {"run_py_s": medians["background"], "baseline_s": base,
            "ratio": medians["background"] / base,
            "ratio_in_process": medians["in_process"] / base,
            "goals": REFERENCE_GOALS, "medians_s": medians, "all_s": times,
            # the run's time that goes to figures, end to end, each way
            "figure_share": {name: 1 - medians["no_plots"] / medians[name]
                             for name in ("background", "one_worker", "in_process")}}


def print_reference(ref: dict, repeat: int) -> None:
    m = ref["medians_s"]
    print(f"\n(a) reference example, median of {repeat} interleaved: tutorial baseline "
          f"{m['baseline']:.2f} s")
    for name, label in (("background", "run.py (2 figure workers, default)"),
                        ("one_worker", "run.py plots.workers=1"),
                        ("in_process", "run.py plots.workers=0"),
                        ("no_plots", "run.py plots.enabled=false")):
        ratio = m[name] / m["baseline"]
        goal = ref["goals"].get(name)
        verdict = "" if goal is None else \
            f"  goal <= {goal:.1f}: {'met' if ratio <= goal else 'NOT met'}"
        share = ref["figure_share"].get(name)
        figures = "" if share is None else f"  figures {share:.0%} of it"
        print(f"    {label:<38}{m[name]:6.2f} s  ratio {ratio:.2f}{verdict}{figures}")
