"""(e) hifigan_v1 streamed over log-mel frames (frontend, forward, WAV): real-time factor."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench_common import BENCH, PY, REPO, run_child_rss


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
    wav = Path(tempfile.gettempdir()) / f"convscope_bench_vocoder_{int(seconds)}s.wav"
    if not wav.exists():
        subprocess.run([PY, "scripts/make_long_audio.py", "--seconds", str(seconds), "--sr",
                        str(cfg.data.sr), "--out", str(wav)], cwd=REPO, check=True,
                       capture_output=True)
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


def vocoder_case(seconds_cpu: float, seconds_cuda: float, tmp: Path) -> list[dict]:
    import torch  # only to know whether a GPU is here

    rows = []
    devices = [("cpu", seconds_cpu)] + ([("cuda", seconds_cuda)]
                                        if torch.cuda.is_available() else [])
    for device, seconds in devices:
        wall, rss, out = run_child_rss([PY, str(BENCH), "--vocoder", device, str(seconds),
                                        str(tmp)])
        row = json.loads(out.strip().splitlines()[-1])
        rows.append({**row, "process_wall_s": wall, "peak_rss_mb": rss})
    return rows


def print_vocoder(rows: list[dict]) -> None:
    print("\n(e) hifigan_v1 streamed over log-mel (frontend + forward + float WAV; imports and "
          "build not counted)")
    print(f"{'device':<8}{'audio s':>9}{'frontend s':>12}{'forward+WAV s':>15}{'x real time':>13}"
          f"{'peak RSS MB':>13}")
    for row in rows:
        print(f"{row['device']:<8}{row['audio_s']:>9.1f}{row['frontend_s']:>12.2f}"
              f"{row['forward_and_wav_s']:>15.2f}{row['rtf']:>13.1f}{row['peak_rss_mb']:>13.0f}")
    if not any(row["device"].startswith("cuda") for row in rows):
        print("(no CUDA device here: cuda row skipped)")
