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
(e) `--only vocoder`: hifigan_v1 through scripts/run.py streamed end to end (plots off), real-time
    factor = audio s / wall s on the CPU and, where torch sees one, on CUDA
    (`--vocoder-seconds CPU CUDA`), beside the forward alone (log-mel, blocks, float WAV).
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

def reference_vs_baseline(repeat: int, tmp: Path) -> dict:
    run_py, baseline = [], []
    for i in range(repeat):  # interleaved, so load changes hit both alike
        baseline.append(run_child_rss([PY, "scripts/bench_tutorial_baseline.py", "--out",
                                       str(tmp / f"baseline{i}")])[0])
        run_py.append(run_child_rss([PY, "scripts/run.py", f"hydra.run.dir={tmp / f'run{i}'}"])[0])
    a, b = statistics.median(run_py), statistics.median(baseline)
    return {"run_py_s": a, "baseline_s": b, "ratio": a / b, "run_py_all": run_py,
            "baseline_all": baseline}


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


# ------------------------------------------------------------------------------------------
# corpus: LJSpeech-like clips through convscope and through a plain loop
# ------------------------------------------------------------------------------------------

CORPUS_SR = 22050  # LJSpeech: 13,100 mono 16-bit clips at 22,050 Hz, 1.1-10.1 s, mean ~6.6 s
CORPUS_SECONDS = (6.6, 2.2, 1.1, 10.1)  # mean, sd, shortest, longest


def corpus_clips(count: int) -> tuple[Path, float]:
    """`count` clips with LJSpeech's lengths (a normal distribution clipped to its range,
    seeded), cached in the temp folder; (folder, seconds it took to write them, 0 if cached)."""
    import numpy as np
    import soundfile

    folder = Path(tempfile.gettempdir()) / f"convscope_bench_corpus_{count}"
    if (folder / "done").exists():
        return folder, 0.0
    started = time.perf_counter()
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    mean, sd, low, high = CORPUS_SECONDS
    for index in range(count):
        seconds = float(np.clip(rng.normal(mean, sd), low, high))
        t = np.arange(int(seconds * CORPUS_SR)) / CORPUS_SR
        # a gliding tone under noise: speech-like levels, every clip its own length
        clip = 0.3 * np.sin(2 * np.pi * (150 + 100 * t) * t) + 0.03 * rng.standard_normal(t.size)
        soundfile.write(str(folder / f"LJ{index:05d}.wav"), clip, CORPUS_SR, subtype="PCM_16")
    (folder / "done").write_text(f"{count}\n")
    return folder, time.perf_counter() - started


def corpus_loop(folder: str, out: str, onednn: str) -> None:
    """The plain loop the corpus case compares with: what one would write without convscope."""
    started = time.perf_counter()
    import librosa
    import soundfile
    import torch

    torch.backends.mkldnn.enabled = onednn == "on"
    torch.manual_seed(0)
    stack = torch.nn.Sequential(  # configs/model/seed_example.yaml
        torch.nn.ConvTranspose1d(1, 2, 3, stride=1, padding=1),
        torch.nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1))
    Path(out).mkdir(parents=True, exist_ok=True)
    paths = sorted(Path(folder).glob("*.wav"))
    for path in paths:
        y, _ = librosa.load(path, sr=16000)
        with torch.no_grad():
            output = stack(torch.from_numpy(y)[None, None])
        soundfile.write(str(Path(out) / path.name), output[0].T.numpy(), 32000)
    print(json.dumps({"files": len(paths), "seconds": time.perf_counter() - started}))


def corpus_case(count: int, repeat: int, tmp: Path) -> dict:
    """Files/s of each (wall time of its process, start-up included), interleaved."""
    folder, made = corpus_clips(count)
    runs: dict[str, list[float]] = {"convscope": [], "loop": [], "loop_onednn_off": []}
    for i in range(repeat):
        runs["loop"].append(run_child_rss([PY, __file__, "--corpus-loop", str(folder),
                                           str(tmp / f"loop{i}"), "on"])[0])
        runs["convscope"].append(run_child_rss(
            [PY, "scripts/run.py", f"data.path={folder}", "data.start=0", "data.end=null",
             f"hydra.run.dir={tmp / f'corpus{i}'}"])[0])
        runs["loop_onednn_off"].append(run_child_rss(
            [PY, __file__, "--corpus-loop", str(folder), str(tmp / f"loop_off{i}"), "off"])[0])
    rates = {name: count / statistics.median(walls) for name, walls in runs.items()}
    return {"files": count, "generated_s": made, "files_per_s": rates, "walls": runs,
            "ratio": rates["convscope"] / rates["loop"],
            "ratio_onednn_off": rates["convscope"] / rates["loop_onednn_off"]}


def print_corpus(row: dict, repeat: int) -> None:
    made = (f"generated in {row['generated_s']:.1f} s" if row["generated_s"]
            else "cached")
    rates = row["files_per_s"]
    print(f"\n(corpus) {row['files']} LJSpeech-like clips ({made}), median of {repeat}, "
          "files/s with start-up:")
    print(f"  convscope (default corpus settings) {rates['convscope']:8.2f}")
    print(f"  plain loop                          {rates['loop']:8.2f}   ratio "
          f"{row['ratio']:.2f}")
    print(f"  plain loop, oneDNN off              {rates['loop_onednn_off']:8.2f}   ratio "
          f"{row['ratio_onednn_off']:.2f}")


def finish(results: dict, json_path: Path | None) -> None:
    results["load_after"] = load()
    print(f"\nload average after: {results['load_after']}")
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
# hour: a streamed hour end to end beside the floor (read the file, write the same WAV bytes)
# ------------------------------------------------------------------------------------------

def floor_worker(wav: str, out_dir: str) -> None:
    """What no streamed run can beat: start Python, import torch, read the file in 10-s blocks,
    write the bytes the run's float WAVs hold (input.wav and 3 channels at twice the rate, the
    reference stack's output) into the page cache. Each part timed; printed as JSON."""
    import numpy as np  # torch imports it anyway; here first, so timed apart

    started = time.perf_counter()
    import soundfile
    import torch  # noqa: F401 - every run pays for it

    imported = time.perf_counter()
    read_s = write_s = 0.0
    out = Path(out_dir)
    with soundfile.SoundFile(wav) as sf:
        channels = 3  # layer1_ch0..2 at 2x the rate, as the reference stack writes them
        files = [open(out / "input.wav", "wb")] + [open(out / f"layer1_ch{k}.wav", "wb")
                                                   for k in range(channels)]
        header = bytes(58)  # FloatWav's header size; the sizes do not change the cost
        for f in files:
            f.write(header)
        while True:
            t = time.perf_counter()
            block = sf.read(10 * sf.samplerate, dtype="float32")
            read_s += time.perf_counter() - t
            if not len(block):
                break
            t = time.perf_counter()
            files[0].write(block.tobytes())
            doubled = np.repeat(block, 2).tobytes()  # the output's bytes: 2x the samples
            for f in files[1:]:
                f.write(doubled)
            write_s += time.perf_counter() - t
        for f in files:
            f.close()
    written = sum((out / name).stat().st_size for name in os.listdir(out))
    print(json.dumps({"import_torch_s": imported - started, "read_s": read_s, "write_s": write_s,
                      "bytes_written": written}))


def hour_case(repeat: int, tmp: Path, seconds: float = 3600.0) -> dict:
    """Median of `repeat` of each, interleaved: the floor, run.py streamed with default outputs,
    with plots off, and with plots off and no read-ahead/write-behind threads."""
    wav = Path(tempfile.gettempdir()) / f"convscope_bench_{int(seconds)}s.wav"
    if not wav.exists():
        subprocess.run([PY, "scripts/make_long_audio.py", "--seconds", str(seconds), "--out",
                        str(wav)], cwd=REPO, check=True, capture_output=True)
    runs: dict[str, list] = {"floor": [], "run.py": [], "run.py plots off": [],
                             "... no I/O threads": []}
    parts = []
    for i in range(repeat):
        floor_dir = tmp / f"floor{i}"
        floor_dir.mkdir()
        wall, rss, out = run_child_rss([PY, __file__, "--floor", str(wav), str(floor_dir)])
        parts.append(json.loads(out.strip().splitlines()[-1]))
        runs["floor"].append((wall, rss))
        subprocess.run(["rm", "-rf", str(floor_dir)], check=True)  # page cache, not the disk
        for name, extra in (("run.py", []), ("run.py plots off", ["plots.enabled=false"]),
                            ("... no I/O threads", ["plots.enabled=false",
                                                    "stream.background_io=false"])):
            run_dir = tmp / f"hour{i}{len(extra)}"
            runs[name].append(run_child_rss(
                [PY, "scripts/run.py", f"data.path={wav}", "data.start=0", "data.end=null",
                 "stream.enabled=true", f"hydra.run.dir={run_dir}", *extra])[:2])
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    floor = statistics.median(w for w, _ in runs["floor"])
    rows = {name: {"wall_s": statistics.median(w for w, _ in values),
                   "peak_rss_mb": max(r for _, r in values),
                   "s_per_audio_hour": statistics.median(w for w, _ in values) * 3600 / seconds,
                   "ratio_to_floor": statistics.median(w for w, _ in values) / floor,
                   "all_s": [w for w, _ in values]} for name, values in runs.items()}
    rows["floor_parts"] = {key: statistics.median(p[key] for p in parts) for key in parts[0]}
    return rows


def print_hour(rows: dict, repeat: int) -> None:
    parts = rows["floor_parts"]
    print(f"\n(d) an hour of 16 kHz streamed end to end vs the floor, median of {repeat}")
    print(f"floor parts: import torch {parts['import_torch_s']:.2f} s, read "
          f"{parts['read_s']:.2f} s, write {parts['bytes_written'] / 1e9:.2f} GB "
          f"{parts['write_s']:.2f} s (the rest: Python start-up)")
    print(f"{'':<18}{'wall s':>8}{'s/audio-h':>11}{'x floor':>9}{'peak RSS MB':>13}")
    for name in ("floor", "run.py plots off", "... no I/O threads", "run.py"):
        row = rows[name]
        print(f"{name:<18}{row['wall_s']:>8.2f}{row['s_per_audio_hour']:>11.2f}"
              f"{row['ratio_to_floor']:>9.2f}{row['peak_rss_mb']:>13.0f}")


# ------------------------------------------------------------------------------------------
# vocoder: hifigan_v1 streamed over log-mel frames (frontend, forward, WAV), real-time factor
# ------------------------------------------------------------------------------------------

def vocoder_worker(device_name: str, seconds: float, out_dir: str) -> None:
    """The streamed pipeline's parts on `seconds` of 22.05 kHz audio: the log-mel frontend
    run.py uses, the stack block by block (pinned, overlapped copies on CUDA), a float WAV
    written; timed after imports and the stack's build. Printed as JSON."""
    import torch
    from omegaconf import OmegaConf

    from convscope.audio.blockio import WavWriters
    from convscope.audio.features import compute_features
    from convscope.audio.segment import load_segment
    from convscope.config.convert import to_run_config
    from convscope.stack.backends import safe_kernels
    from convscope.stack.build import build_stack
    from convscope.stack.plan import plan_stack
    from convscope.stack.streaming import layer_rules, stream_forward
    from convscope.stack.trace import check_finite, pick_device
    from convscope.stack.transfer import HostHandoff, to_device_ahead

    preset = OmegaConf.to_container(OmegaConf.load(REPO / "configs/model/hifigan_v1.yaml"))
    cfg = to_run_config(preset)
    device = pick_device(device_name)
    wav = vocoder_wav(seconds)
    cfg.data.path, cfg.data.start, cfg.data.end = str(wav), 0.0, None
    # stream.block_seconds of output per block (4 s: 344 frames), 16x that on a GPU, as run.py
    # streams; 64-frame blocks measured 1.8x slower on the CPU (the MRF's context recomputed)
    frames_per_block = round(cfg.stream.block_seconds * cfg.data.sr / cfg.data.hop_length)
    frames_per_block *= 16 if device.type == "cuda" else 1
    torch.set_num_threads(os.cpu_count() if device.type == "cpu" else 1)
    started = time.perf_counter()
    features = compute_features(load_segment(cfg.data, REPO), cfg.data)
    frontend = time.perf_counter()
    plans = plan_stack(cfg.model.layers, features.shape)
    stack = build_stack(plans, 0).to(device).eval()
    hop = cfg.data.hop_length
    out_len = plans[-1].output_shape[-1]
    built = time.perf_counter()
    frames = torch.from_numpy(features.samples)[None]
    host_blocks = (frames[..., i: i + frames_per_block]
                   for i in range(0, frames.shape[-1], frames_per_block))
    last = len(plans) - 1
    with WavWriters([Path(out_dir) / "out.wav"], cfg.data.sr, "FLOAT", out_len) as writer:
        def write(layer: int, start: int, samples: torch.Tensor) -> None:
            check_finite(samples, plans[layer].key, plans[layer].type, start)
            if layer == last:
                writer.write(samples[0].to("cpu", torch.float32).numpy())

        with safe_kernels(stack, streaming=True):
            if device.type == "cuda":
                sink = HostHandoff(write, last, device, all_layers=False)
                stream_forward(layer_rules(plans, stack), to_device_ahead(host_blocks, device),
                               frames_per_block * hop, sink)
                sink.finish()
            else:
                stream_forward(layer_rules(plans, stack), host_blocks, frames_per_block * hop,
                               write)
    done = time.perf_counter()
    wall = (frontend - started) + (done - built)
    print(json.dumps({"device": str(device), "audio_s": out_len / cfg.data.sr,
                      "frontend_s": frontend - started, "forward_and_wav_s": done - built,
                      "rtf": out_len / cfg.data.sr / wall, "threads": torch.get_num_threads()}))


def vocoder_wav(seconds: float) -> Path:
    """`seconds` of synthetic audio at hifigan_v1's 22050 Hz, cached in the temp folder."""
    wav = Path(tempfile.gettempdir()) / f"convscope_bench_vocoder_{int(seconds)}s.wav"
    if not wav.exists():
        subprocess.run([PY, "scripts/make_long_audio.py", "--seconds", str(seconds), "--sr",
                        "22050", "--out", str(wav)], cwd=REPO, check=True, capture_output=True)
    return wav


def vocoder_end_to_end(device: str, seconds: float, tmp: Path) -> dict:
    """scripts/run.py model=hifigan_v1 on `seconds` of audio, streamed, plots off, as a user
    runs it: imports, log-mel frontend, the stack block by block, float WAVs, report."""
    wav = vocoder_wav(seconds)
    wall, rss, _ = run_child_rss([PY, "scripts/run.py", "model=hifigan_v1", f"data.path={wav}",
                                  "data.start=0", "data.end=null", "stream.enabled=true",
                                  "plots.enabled=false", f"device={device}",
                                  f"hydra.run.dir={tmp / f'vocoder_{device}'}"])
    shapes = json.loads((tmp / f"vocoder_{device}" / "shapes.json").read_text())
    audio_s = shapes["output"]["shape"][-1] / shapes["output"]["sample_rate"]
    return {"device": device, "audio_s": audio_s, "wall_s": wall, "rtf": audio_s / wall,
            "peak_rss_mb": rss, "blocks": shapes["stream"]["blocks"],
            "block_samples": shapes["stream"]["block_samples"]}


def vocoder_case(seconds_cpu: float, seconds_cuda: float, tmp: Path) -> list[dict]:
    """Per device: run.py end to end, then the forward alone (vocoder_worker, its own process:
    frontend, stack and WAV timed after imports and build) on the same audio."""
    import torch  # only to know whether a GPU is here

    rows = []
    devices = [("cpu", seconds_cpu)] + ([("cuda", seconds_cuda)]
                                        if torch.cuda.is_available() else [])
    for device, seconds in devices:
        row = vocoder_end_to_end(device, seconds, tmp)
        _, _, out = run_child_rss([PY, __file__, "--vocoder", device, str(seconds), str(tmp)])
        forward = json.loads(out.strip().splitlines()[-1])
        rows.append({**row, "forward_rtf": forward["rtf"],
                     "forward_and_wav_s": forward["forward_and_wav_s"],
                     "frontend_s": forward["frontend_s"]})
    return rows


def print_vocoder(rows: list[dict]) -> None:
    print("\n(e) hifigan_v1, scripts/run.py streamed end to end (plots off; imports, log-mel, "
          "float WAVs), x real time = audio s / wall s; forward x: frontend + blocks + WAV "
          "alone, after imports and build")
    print(f"{'device':<8}{'audio s':>9}{'wall s':>9}{'x real time':>13}{'peak RSS MB':>13}"
          f"{'blocks':>8}{'forward x':>11}")
    for row in rows:
        print(f"{row['device']:<8}{row['audio_s']:>9.1f}{row['wall_s']:>9.2f}{row['rtf']:>13.2f}"
              f"{row['peak_rss_mb']:>13.0f}{row['blocks']:>8}{row['forward_rtf']:>11.2f}")
    if not any(row["device"].startswith("cuda") for row in rows):
        print("(no CUDA device here: cuda row skipped)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=2, metavar=("WAV", "OUT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--vocoder", nargs=3, metavar=("DEVICE", "SECONDS", "OUT_DIR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["corpus", "hour", "vocoder"], help="run this case alone")
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
    if args.only is not None:
        return finish(results, args.json)
    with tempfile.TemporaryDirectory(prefix="convscope_bench_") as tmp_name:
        tmp = Path(tmp_name)
        ref = results["reference"] = reference_vs_baseline(args.repeat, tmp)
        print(f"\n(a) reference example, median of {args.repeat}: run.py {ref['run_py_s']:.2f} s, "
              f"tutorial baseline {ref['baseline_s']:.2f} s, ratio {ref['ratio']:.2f}")
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
