"""(d) A streamed hour end to end beside the floor: start Python, import torch, read the file,
write the same WAV bytes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from bench_common import BENCH, PY, long_wav, run_child_rss


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
    wav = long_wav(seconds)
    runs: dict[str, list] = {"floor": [], "run.py": [], "run.py plots off": [],
                             "... no I/O threads": []}
    parts = []
    for i in range(repeat):
        floor_dir = tmp / f"floor{i}"
        floor_dir.mkdir()
        wall, rss, out = run_child_rss([PY, str(BENCH), "--floor", str(wav), str(floor_dir)])
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
