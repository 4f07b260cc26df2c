"""Benchmarks, measured in one run on this machine, printed as tables and ratios.

    python scripts/bench.py                              # every case (~12 min on 2 cores)
    python scripts/bench.py --write docs/benchmarks.md   # ... and the tables there (+ .json)
    python scripts/bench.py --only corpus --corpus-files 200     # one case (or a,b,...)

Cases, each timing whole processes (start-up included) with peak RSS from wait4, interleaved so
load changes hit every variant alike, medians of --repeat:
(reference) the reference example end to end (scripts/run.py: figures on the second core, with
    two figure workers, in-process, without plots) against scripts/bench_tutorial_baseline.py,
    the plain script the tutorial shows; issue 14's goals: <= 0.7x in-process, <= 0.6x overlapped.
(forward) the reference stack's forward streamed and one-shot over 1 min, 10 min and 1 h of
    noise (s per audio-hour, peak RSS), and scripts/run.py streamed end to end at those lengths.
(corpus) files/s of scripts/run.py on 1,000 LJSpeech-like clips with default corpus settings
    against a plain loop in one process (librosa.load + the same torch stack + soundfile.write),
    and that loop with oneDNN off.
(hour) an hour of 16 kHz streamed end to end (default outputs, plots off, plots off without the
    I/O threads) beside the floor: a process that imports torch, reads the file and writes the
    bytes the run's float WAVs hold; s per audio-hour, x floor, peak RSS.
(vocoder) hifigan_v1 through scripts/run.py streamed end to end (plots off): real-time factor
    = audio s / wall s on the CPU and, where torch sees one, on CUDA (`--vocoder-seconds CPU
    CUDA`), beside the forward alone (log-mel, blocks, float WAV, after imports and build).
(describe) convscope.describe against a plain forward of the same input, per published vocoder
    and codec decoder at its published size, in one process (not a child): the ratio, goal <= 2.
(figures) 1 s of speech through the published HiFi-GAN V1 as model=module (78 conv calls): the
    time its figures take against the rest of the same run, in one process; goal <= 1.
Other work on the machine inflates times: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench_common import load, machine
from bench_corpus import corpus_case, corpus_loop, print_corpus
from bench_describe import describe_case
from bench_figures import figures_case, print_figures
from bench_forward import forward_growth, worker
from bench_hour import floor_worker, hour_case, print_hour
from bench_markdown import markdown
from bench_reference import print_reference, reference_vs_baseline
from bench_vocoder import print_vocoder, vocoder_case, vocoder_worker

CASES = ("reference", "forward", "corpus", "hour", "vocoder", "describe", "figures")


def run_case(name: str, args: argparse.Namespace, tmp: Path) -> object:
    if name == "reference":
        result = reference_vs_baseline(args.repeat, tmp)
        print_reference(result, args.repeat)
    elif name == "forward":
        result = forward_growth([60.0, 600.0] + ([] if args.quick else [3600.0]), tmp)
    elif name == "corpus":
        result = corpus_case(args.corpus_files, args.corpus_repeat, tmp)
        print_corpus(result, args.corpus_repeat)
    elif name == "hour":
        result = hour_case(args.repeat, tmp)
        print_hour(result, args.repeat)
    elif name == "vocoder":
        result = vocoder_case(*args.vocoder_seconds, tmp)
        print_vocoder(result)
    elif name == "figures":
        result = figures_case(tmp)
        print_figures(result)
    else:
        result = describe_case(args.repeat)
    return result


def case_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: cases are {', '.join(CASES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=case_list, default=list(CASES),
                        help=f"these cases, comma-separated ({', '.join(CASES)})")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (median)")
    parser.add_argument("--quick", action="store_true", help="forward case: 1 and 10 min only")
    parser.add_argument("--corpus-files", type=int, default=1000,
                        help="clips in the corpus case (default 1000)")
    parser.add_argument("--corpus-repeat", type=int, default=1,
                        help="runs of each in the corpus case (the loop takes minutes)")
    parser.add_argument("--vocoder-seconds", type=float, nargs=2, default=[10.0, 600.0],
                        metavar=("CPU", "CUDA"), help="audio for the vocoder case")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--write", type=Path,
                        help="also write the tables to this Markdown file (and the results "
                             "beside it as .json)")
    # the child processes the cases time
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=2, metavar=("WAV", "OUT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--vocoder", nargs=3, metavar=("DEVICE", "SECONDS", "OUT_DIR"),
                        help=argparse.SUPPRESS)
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

    results: dict = {"machine": machine(), "load_before": load(),
                     "repeat": args.repeat, "corpus_repeat": args.corpus_repeat}
    print(f"convscope benchmarks: {results['machine']['summary']}, load average "
          f"{results['load_before']}")
    for name in args.only:
        with tempfile.TemporaryDirectory(prefix="convscope_bench_") as tmp_name:
            results[name] = run_case(name, args, Path(tmp_name))
    results["load_after"] = load()
    print(f"\nload average after: {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.write:
        args.write.write_text(markdown(results))
        args.write.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.write} and {args.write.with_suffix('.json')}")


if __name__ == "__main__":
    main()
