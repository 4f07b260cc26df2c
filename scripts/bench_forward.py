"""(b, c) The reference stack's forward, streamed and one-shot, over 1 min to 1 h of noise, and
scripts/run.py streamed end to end at those lengths."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench_common import BENCH, PY, SR, long_wav, mem_available_gb, run_child_rss

ONE_SHOT_GB_PER_HOUR = 12.0  # measured peak of the one-shot forward; skipped without this much


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
    wall, rss, out = run_child_rss([PY, str(BENCH), "--worker", mode, str(seconds)])
    forward = json.loads(out.strip().splitlines()[-1])["seconds"]
    return {"mode": mode, "audio_s": seconds, "forward_s": forward,
            "s_per_audio_hour": forward * 3600 / seconds, "peak_rss_mb": rss, "wall_s": wall}


def end_to_end_streamed(seconds: float, tmp: Path) -> dict:
    wav = long_wav(seconds)
    wall, rss, _ = run_child_rss([PY, "scripts/run.py", f"data.path={wav}", "data.start=0",
                                  "data.end=null", "stream.enabled=true",
                                  f"hydra.run.dir={tmp / f'e2e{int(seconds)}'}"])
    return {"audio_s": seconds, "wall_s": wall, "s_per_audio_hour": wall * 3600 / seconds,
            "peak_rss_mb": rss}


def forward_growth(durations: list[float], tmp: Path) -> dict:
    """(b) the forward streamed and one-shot at each duration (one-shot skipped where it would
    not fit in memory), (c) run.py streamed end to end at each; printed as they come."""
    rows: list[dict] = []
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
            rows.append(row)
            print(f"{mode:<9}{seconds / 60:>6.0f} m{row['forward_s']:>11.2f}"
                  f"{row['s_per_audio_hour']:>11.2f}{row['peak_rss_mb']:>13.0f}")
    e2e: list[dict] = []
    print("\n(c) scripts/run.py streamed end to end (read, forward, 4 float WAVs, plots)")
    print(f"{'audio':>8}{'wall s':>9}{'s/audio-h':>11}{'peak RSS MB':>13}")
    for seconds in durations:
        row = end_to_end_streamed(seconds, tmp)
        e2e.append(row)
        print(f"{seconds / 60:>6.0f} m{row['wall_s']:>9.2f}{row['s_per_audio_hour']:>11.1f}"
              f"{row['peak_rss_mb']:>13.0f}")
    return {"forward": rows, "end_to_end": e2e}
