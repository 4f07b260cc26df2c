"""(describe) convscope.describe against a plain forward of the same input, per published model
at its published size (tests/reference_generators.py, tests/reference_codecs.py): issue 20's
goal is describe <= 2x the forward. Measured side by side in one process (the models are built
once; oneDNN's per-shape kernel builds paid by a warm-up forward first), interleaved, medians.
"""

from __future__ import annotations

import statistics
import sys
import time

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
        forward, describe = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            with torch.no_grad():
                model(x)
            forward.append(time.perf_counter() - started)
            started = time.perf_counter()
            d = convscope.describe(model, x)
            describe.append(time.perf_counter() - started)
        filled = sum(r.receptive_field is not None or bool(r.receptive_reason) for r in d.rows)
        row = {"model": name, "input": list(shape), "rows": len(d.rows), "filled": filled,
               "forward_s": statistics.median(forward), "describe_s": statistics.median(describe)}
        row["ratio"] = row["describe_s"] / row["forward_s"]
        rows.append(row)
        print_describe_row(row)
    return rows


def print_describe_row(row: dict) -> None:
    verdict = "met" if row["ratio"] <= GOAL else "not met"
    print(f"{row['model']:<24} {str(row['input']):<16} rows {row['rows']:>3} "
          f"(filled or reasoned {row['filled']:>3})  forward {row['forward_s']:7.3f} s  "
          f"describe {row['describe_s']:7.3f} s  x{row['ratio']:.2f} (goal <= {GOAL}: {verdict})")
