"""Benchmarks, measured in one run on this machine, printed as tables and ratios.

    python scripts/bench.py                 # everything (~3-4 min on 2 cores; 1 h one-shot needs ~12 GB)
    python scripts/bench.py --quick         # 1 and 10 min only
    python scripts/bench.py --json out.json

(a) the reference example end to end (scripts/run.py) against scripts/bench_tutorial_baseline.py,
    the plain script the tutorial shows (wall time of each as a subprocess, median of --repeat);
(b) streamed against one-shot forward of the reference stack: seconds per audio-hour and peak RSS,
    each in its own subprocess (RSS from wait4's ru_maxrss);
(c) how the streamed forward and a streamed end-to-end run.py grow from 1 min to 1 h;
(corpus) files/s of scripts/run.py on a folder of LJSpeech-like clips (default corpus settings:
    every core, figures for the first 3 files) against a plain loop in one process
    (librosa.load + the same torch stack + soundfile.write), and that loop with oneDNN off:
    python scripts/bench.py --only corpus --corpus-files 200
(d) `--only hour`: an hour of 16 kHz streamed end to end (default outputs, plots off, plots off
    without the I/O threads) beside the floor: a process that imports torch, reads the file and
    writes the bytes the run's float WAVs hold; s per audio-hour, x floor, peak RSS;
(e) `--only vocoder`: hifigan_v1 streamed over log-mel (frontend, forward, float WAV), real-time
    factor on the CPU and, where torch sees one, on CUDA (`--vocoder-seconds CPU CUDA`).
Other work on the machine inflates times: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench_common import load, mem_available_gb
from bench_corpus import corpus_case, corpus_loop, print_corpus
from bench_forward import ONE_SHOT_GB_PER_HOUR, end_to_end_streamed, forward_case, worker
from bench_hour import floor_worker, hour_case, print_hour
from bench_reference import print_reference, reference_vs_baseline
from bench_vocoder import print_vocoder, vocoder_case, vocoder_worker


def finish(results: dict, json_path: Path | None) -> None:
    results["load_after"] = load()
    print(f"\nload average after: {results['load_after']}")
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
# hour: a streamed hour end to end beside the floor (read the file, write the same WAV bytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=2, metavar=("WAV", "OUT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--vocoder", nargs=3, metavar=("DEVICE", "SECONDS", "OUT_DIR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["corpus", "hour", "reference", "vocoder"],
                        help="run this case alone")
    parser.add_argument("--vocoder-seconds", type=float, nargs=2, default=[10.0, 600.0],
                        metavar=("CPU", "CUDA"), help="audio for the vocoder case")
    parser.add_argument("--quick", action="store_true", help="1 and 10 min only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--corpus-files", type=int, default=1000,
                        help="clips in the corpus case (default 1000)")
    parser.add_argument("--corpus-repeat", type=int, default=1,
                        help="runs of each in the corpus case (the loop takes minutes)")
    parser.add_argument("--corpus-loop", nargs=3, metavar=("FOLDER", "OUT", "ONEDNN"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], float(args.worker[1]))
    if args.corpus_loop:
        return corpus_loop(*args.corpus_loop)
    if args.floor:
        return floor_worker(*args.floor)
    if args.vocoder:
        return vocoder_worker(args.vocoder[0], float(args.vocoder[1]), args.vocoder[2])
    if args.only == "vocoder":
        print(f"convscope benchmarks: {os.cpu_count()} CPUs, load average {load()}")
        with tempfile.TemporaryDirectory(prefix="convscope_bench_") as tmp_name:
            rows = vocoder_case(*args.vocoder_seconds, Path(tmp_name))
        print_vocoder(rows)
        print(f"\nload average after: {load()}")
        if args.json:
            args.json.write_text(json.dumps({"vocoder": rows}, indent=2) + "\n")
        return
    if args.only == "hour":
        print(f"convscope benchmarks: {os.cpu_count()} CPUs, load average {load()}")
        with tempfile.TemporaryDirectory(prefix="convscope_bench_") as tmp_name:
            rows = hour_case(args.repeat, Path(tmp_name))
        print_hour(rows, args.repeat)
        print(f"\nload average after: {load()}")
        if args.json:
            args.json.write_text(json.dumps({"hour": rows}, indent=2) + "\n")
        return
    durations = [60.0, 600.0] + ([] if args.quick else [3600.0])
    results: dict = {"cpus": os.cpu_count(), "load_before": load()}
    print(f"convscope benchmarks: {os.cpu_count()} CPUs, load average {results['load_before']}")
    if args.only in (None, "corpus"):
        with tempfile.TemporaryDirectory(prefix="convscope_bench_") as tmp_name:
            results["corpus"] = corpus_case(args.corpus_files, args.corpus_repeat, Path(tmp_name))
        print_corpus(results["corpus"], args.corpus_repeat)
    if args.only not in (None, "reference"):
        return finish(results, args.json)
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
            if not args.quick:
                results["hour"] = hour_case(args.repeat, tmp)
                print_hour(results["hour"], args.repeat)
            results["vocoder"] = vocoder_case(*args.vocoder_seconds, tmp)
            print_vocoder(results["vocoder"])
    results["load_after"] = load()
    print(f"\nload average after: {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
