"""(corpus) LJSpeech-like clips through convscope and through a plain loop, files/s."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import BENCH, PY, run_child_rss

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
        runs["loop"].append(run_child_rss([PY, str(BENCH), "--corpus-loop", str(folder),
                                           str(tmp / f"loop{i}"), "on"])[0])
        runs["convscope"].append(run_child_rss(
            [PY, "scripts/run.py", f"data.path={folder}", "data.start=0", "data.end=null",
             f"hydra.run.dir={tmp / f'corpus{i}'}"])[0])
        runs["loop_onednn_off"].append(run_child_rss(
            [PY, str(BENCH), "--corpus-loop", str(folder), str(tmp / f"loop_off{i}"), "off"])[0])
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
