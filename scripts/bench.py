"""Benchmarks, measured in one run on this machine, printed as tables and ratios.

    python scripts/bench.py                 # everything (~3-4 min on 2 cores; 1 h one-shot needs ~12 GB)
    python scripts/bench.py --quick         # 1 and 10 min only
    python scripts/bench.py --json out.json

(a) the reference example end to end (scripts/run.py) against scripts/bench_tutorial_baseline.py,
    the plain script the tutorial shows (wall time of each as a subprocess, median of --repeat);
(b) streamed against one-shot forward of the reference stack: seconds per audio-hour and peak RSS,
    each in its own subprocess (RSS from wait4's ru_maxrss);
(c) how the streamed forward and a streamed end-to-end run.py grow from 1 min to 1 h.
Other work on the machine inflates times: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SR = 16000
ONE_SHOT_GB_PER_HOUR = 12.0  # measured peak of the one-shot forward; skipped without this much


def run_child_rss(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one subprocess, reaped with wait4 so its own
    ru_maxrss is known (RUSAGE_CHILDREN would give the largest child so far)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise SystemExit(f"error: {' '.join(args[1:4])} failed ({proc.returncode}): "
                         f"{stderr[-800:]}")
    return wall, usage.ru_maxrss / 1024, stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------------------------------
# worker: one forward of the reference stack over `seconds` of noise, streamed or one-shot
# ------------------------------------------------------------------------------------------

def worker(mode: str, seconds: float) -> None:
    import torch

    from convscope.config.schema import LayerConfig
    from convscope.stack.build import build_stack
    from convscope.stack.plan import plan_stack
    from convscope.stack.streaming import layer_rules, stream_forward

    T = "ConvTranspose1d"
    specs = [LayerConfig(type=T, in_channels=1, out_channels=2, kernel_size=3, stride=1,
                         padding=1),
             LayerConfig(type=T, in_channels=2, out_channels=3, kernel_size=5, stride=2,
                         padding=2, output_padding=1)]
    length = int(seconds * SR)
    plans = plan_stack(specs, (1, 1, length))
    stack = build_stack(plans, 0)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    if mode == "oneshot":  # what pipeline.run does for short segments
        x = torch.randn(1, 1, length, generator=generator)
        with torch.no_grad():
            out = stack(x)
        checksum = float(out[..., ::9973].sum())
    else:  # the streamed run's forward: input arrives in 10 s blocks, 1 s output blocks
        torch.set_num_threads(1)
        block = 10 * SR
        blocks = (torch.randn(1, 1, min(block, length - i), generator=generator)
                  for i in range(0, length, block))
        sums = []
        last = len(plans) - 1

        def keep_checksum(layer: int, start: int, y: torch.Tensor) -> None:
            if layer == last:
                sums.append(float(y[..., (-start) % 9973::9973].sum()))

        stream_forward(layer_rules(plans, stack), blocks, 32000, keep_checksum)
        checksum = sum(sums)
    print(json.dumps({"seconds": time.perf_counter() - started, "checksum": checksum}))


def forward_case(mode: str, seconds: float) -> dict:
    wall, rss, out = run_child_rss([PY, __file__, "--worker", mode, str(seconds)])
    forward = json.loads(out.strip().splitlines()[-1])["seconds"]
    return {"mode": mode, "audio_s": seconds, "forward_s": forward,
            "s_per_audio_hour": forward * 3600 / seconds, "peak_rss_mb": rss, "wall_s": wall}


# ------------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------------

REFERENCE_GOALS = {"in_process": 0.7, "background": 0.6, "two_workers": 0.6}  # issue 14
REFERENCE_VARIANTS = {  # name: scripts/run.py overrides
    "background": [],  # the default: figures drawn by the figure worker on the second core
    "two_workers": ["plots.workers=2"],
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
                             for name in ("background", "two_workers", "in_process")}}


def print_reference(ref: dict, repeat: int) -> None:
    m = ref["medians_s"]
    print(f"\n(a) reference example, median of {repeat} interleaved: tutorial baseline "
          f"{m['baseline']:.2f} s")
    for name, label in (("background", "run.py (figures on the second core)"),
                        ("two_workers", "run.py plots.workers=2"),
                        ("in_process", "run.py plots.workers=0"),
                        ("no_plots", "run.py plots.enabled=false")):
        ratio = m[name] / m["baseline"]
        goal = ref["goals"].get(name)
        verdict = "" if goal is None else \
            f"  goal <= {goal:.1f}: {'met' if ratio <= goal else 'NOT met'}"
        share = ref["figure_share"].get(name)
        figures = "" if share is None else f"  figures {share:.0%} of it"
        print(f"    {label:<38}{m[name]:6.2f} s  ratio {ratio:.2f}{verdict}{figures}")


def mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def end_to_end_streamed(seconds: float, tmp: Path) -> dict:
    wav = Path(tempfile.gettempdir()) / f"convscope_bench_{int(seconds)}s.wav"
    if not wav.exists():
        subprocess.run([PY, "scripts/make_long_audio.py", "--seconds", str(seconds), "--out",
                        str(wav)], cwd=REPO, check=True, capture_output=True)
    wall, rss, _ = run_child_rss([PY, "scripts/run.py", f"data.path={wav}", "data.start=0",
                                  "data.end=null", "stream.enabled=true",
                                  f"hydra.run.dir={tmp / f'e2e{int(seconds)}'}"])
    return {"audio_s": seconds, "wall_s": wall, "s_per_audio_hour": wall * 3600 / seconds,
            "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1 and 10 min only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", choices=["reference"],
                        help="one case only: reference = (a), the reference example")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], float(args.worker[1]))
    durations = [60.0, 600.0] + ([] if args.quick else [3600.0])
    results: dict = {"cpus": os.cpu_count(), "load_before": load()}
    print(f"convscope benchmarks: {os.cpu_count()} CPUs, load average {results['load_before']}")
    with tempfile.TemporaryDirectory(prefix="convscope_bench_") as tmp_name:
        tmp = Path(tmp_name)
        ref = results["reference"] = reference_vs_baseline(args.repeat, tmp)
        print_reference(ref, args.repeat)
        if args.only != "reference":  # (b, c): the streamed forward and end to end
            results["forward"] = forward_rows = []
            print("\n(b, c) reference stack forward over noise, each in its own process")
            print(f"{'mode':<9}{'audio':>8}{'forward s':>11}{'s/audio-h':>11}{'peak RSS MB':>13}")
            for seconds in durations:
                for mode in ("stream", "oneshot"):
                    need = ONE_SHOT_GB_PER_HOUR * seconds / 3600
                    if mode == "oneshot" and need > 0.8 * mem_available_gb():
                        print(f"{mode:<9}{seconds / 60:>6.0f} m  skipped: needs ~{need:.0f} GB, "
                              f"{mem_available_gb():.0f} GB available")
                        continue
                    row = forward_case(mode, seconds)
                    forward_rows.append(row)
                    print(f"{mode:<9}{seconds / 60:>6.0f} m{row['forward_s']:>11.2f}"
                          f"{row['s_per_audio_hour']:>11.2f}{row['peak_rss_mb']:>13.0f}")
            results["end_to_end"] = e2e = []
            print("\n(c) scripts/run.py streamed end to end (read, forward, 4 float WAVs, plots)")
            print(f"{'audio':>8}{'wall s':>9}{'s/audio-h':>11}{'peak RSS MB':>13}")
            for seconds in durations:
                row = end_to_end_streamed(seconds, tmp)
                e2e.append(row)
                print(f"{seconds / 60:>6.0f} m{row['wall_s']:>9.2f}{row['s_per_audio_hour']:>11.1f}"
                      f"{row['peak_rss_mb']:>13.0f}")
    results["load_after"] = load()
    print(f"\nload average after: {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
