"""(e) hifigan_v1 streamed over log-mel frames (frontend, forward, WAV): real-time factor."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench_common import BENCH, PY, REPO, long_wav, run_child_rss


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
    wav = long_wav(seconds, 22050)
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

        with safe_kernels(stack):
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


def vocoder_end_to_end(device: str, seconds: float, tmp: Path) -> dict:
    """scripts/run.py model=hifigan_v1 on `seconds` of audio, streamed, plots off, as a user
    runs it: imports, log-mel frontend, the stack block by block, float WAVs, report."""
    wav = long_wav(seconds, 22050)
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
        _, _, out = run_child_rss([PY, str(BENCH), "--vocoder", device, str(seconds), str(tmp)])
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
