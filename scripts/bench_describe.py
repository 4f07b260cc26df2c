"""(describe) convscope.describe against a plain forward of the same input, per published model
at its published size (tests/reference_generators.py, tests/reference_codecs.py): issue 20's
goal is describe <= 2x the forward, in time and in peak memory. Measured side by side in one
process (the models are built once; oneDNN's per-shape kernel builds paid by a warm-up forward
first), interleaved, medians. Peak memory is the RSS high-water mark each call adds, from a mark
reset just before it (Linux's /proc/self/clear_refs); beside it convscope.estimate's one-shot
figure for the same input, which the pre-flight holds against free memory.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import sys
import time
from typing import Callable, Optional

from bench_common import REPO

GOAL = 2.0  # describe / forward


def published_models() -> dict:
    """name: (model factory, example shape): the published sizes, about a second of audio."""
    sys.path.insert(0, str(REPO))  # the references live with the tests
    from tests.reference_codecs import DacDecoder, SEANetDecoder
    from tests.reference_generators import (
        BIGVGAN_V2_24K,
        HIFIGAN_CONFIGS,
        MELGAN_ARGS,
        BigVGANGenerator,
        HifiGanGenerator,
        MelGanGenerator,
    )

    return {
        "hifigan_v1": (lambda: HifiGanGenerator(HIFIGAN_CONFIGS["hifigan_v1"]), (1, 80, 86)),
        "hifigan_v2": (lambda: HifiGanGenerator(HIFIGAN_CONFIGS["hifigan_v2"]), (1, 80, 86)),
        "hifigan_v3": (lambda: HifiGanGenerator(HIFIGAN_CONFIGS["hifigan_v3"]), (1, 80, 86)),
        "melgan": (lambda: MelGanGenerator(**MELGAN_ARGS), (1, 80, 86)),
        "bigvgan_v2_24k": (lambda: BigVGANGenerator(BIGVGAN_V2_24K), (1, 100, 94)),
        "dac_decoder": (lambda: DacDecoder(1024, 1536), (1, 1024, 86)),
        "encodec_decoder": (lambda: SEANetDecoder(), (1, 128, 75)),
        "encodec_decoder_no_lstm": (lambda: SEANetDecoder(lstm=0), (1, 128, 75)),
    }


def describe_case(repeat: int) -> list[dict]:
    import torch

    import convscope

    rows = []
    for name, (factory, shape) in published_models().items():
        torch.manual_seed(0)
        model = factory().eval()
        x = torch.randn(shape)
        with torch.no_grad():
            model(x)  # warm-up: oneDNN builds its kernels for these shapes once
        forward, describe, forward_cpu, describe_cpu = [], [], [], []
        for _ in range(repeat):
            started, cpu = time.perf_counter(), time.process_time()
            with torch.no_grad():
                model(x)
            forward.append(time.perf_counter() - started)
            forward_cpu.append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            d = convscope.describe(model, x)
            describe.append(time.perf_counter() - started)
            describe_cpu.append(time.process_time() - cpu)
        filled = sum(r.receptive_field is not None or bool(r.receptive_reason) for r in d.rows)
        row = {"model": name, "input": list(shape), "rows": len(d.rows), "filled": filled,
               "forward_s": statistics.median(forward), "describe_s": statistics.median(describe),
               # CPU seconds (all threads): steadier than wall time on a shared, loaded machine
               "forward_cpu_s": statistics.median(forward_cpu),
               "describe_cpu_s": statistics.median(describe_cpu)}
        row["ratio"] = row["describe_s"] / row["forward_s"]
        row["cpu_ratio"] = row["describe_cpu_s"] / row["forward_cpu_s"]
        row.update(memory_row(model, x))
        rows.append(row)
        print_describe_row(row)
    return rows


def memory_row(model, x) -> dict:
    """Peak bytes a plain forward and describe each add, side by side; the estimate's figure."""
    import torch

    import convscope

    def forward() -> None:
        with torch.no_grad():
            model(x)

    forward_peak = peak_added(forward)
    describe_peak = peak_added(lambda: convscope.describe(model, x))
    estimated = convscope.estimate(model, tuple(x.shape), sample_rate=None).one_shot_bytes
    return {"forward_peak_bytes": forward_peak, "describe_peak_bytes": describe_peak,
            "estimate_bytes": estimated}


def peak_added(call: Callable[[], object]) -> Optional[int]:
    """The RSS high-water mark `call` raises above the RSS before it; None off Linux. The
    memory earlier calls freed is handed back first (glibc's malloc_trim), or a call reusing it
    would show no peak at all."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    before = _status_bytes("VmRSS")
    call()
    return _status_bytes("VmHWM") - before


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def print_describe_row(row: dict) -> None:
    verdict = "met" if row["ratio"] <= GOAL else "not met"
    print(f"{row['model']:<24} {str(row['input']):<16} rows {row['rows']:>3} "
          f"(filled or reasoned {row['filled']:>3})  forward {row['forward_s']:7.3f} s  "
          f"describe {row['describe_s']:7.3f} s  x{row['ratio']:.2f} (goal <= {GOAL}: {verdict})"
          + (f"; CPU time x{row['cpu_ratio']:.2f}" if "cpu_ratio" in row else ""))
    forward, described = row.get("forward_peak_bytes"), row.get("describe_peak_bytes")
    if forward is None or described is None:
        return
    ratio = described / max(forward, 1)
    verdict = "met" if ratio <= GOAL else "not met"
    print(f"{'':<24} peak memory: forward {forward / 1e6:7.1f} MB  describe "
          f"{described / 1e6:7.1f} MB  x{ratio:.2f} (goal <= {GOAL}: {verdict})  estimate "
          f"{row['estimate_bytes'] / 1e6:7.1f} MB (x{row['estimate_bytes'] / max(forward, 1):.2f} "
          "of the forward's)")
