"""Time the first call of one ConvTranspose1d with oneDNN and with torch's native kernel, over a
grid of shapes; the measurement behind convscope.stack.backends.native_transposed_convs.

Each point runs in a fresh process (a first call includes oneDNN building its kernel, where it
hangs) that SIGALRM's default action ends after --limit seconds: oneDNN's hang is in C code,
where no Python handler would run, and it ignores SIGTERM. The import is not timed.

    python scripts/bench_onednn_transposed.py [--limit 4] [--threads 2] > grid.txt

One line a shape: c_in c_out kernel stride length, then each kernel's seconds (>limit: ended).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

# kernels from s to 4s at strides 2 to 400, 1 to 64 channels, lengths from 1,000 to 160,000
# (torch picks oneDNN above 20480 input elements, or more than one channel): the 110 shapes
# behind the numbers in backends.py, in the order they were run
GRID = ([(4, 4, r * s, s, 8000) for s in (2, 4, 8, 16, 32, 64, 128, 256, 400)
         for r in (1, 2, 3, 4)]
        + [(c, c, 2 * s, s, max(24000 // c + 1, 1000)) for s in (8, 16, 32, 64, 128, 400)
           for c in (1, 16, 64)]
        + [(4, 4, k, s, length) for length in (6000, 12000, 24000, 41600)
           for k, s in ((80, 40), (800, 400))]
        + [(c, c, r * s, s, length) for s in (8, 16, 24, 32) for r in (1, 2, 4)
           for c, length in ((1, 160000), (4, 41600))]
        + [(c, c, r * s, s, length) for s in (2, 4) for r in (1, 2, 3, 4)
           for c, length in ((1, 160000), (4, 41600), (16, 16000))])

POINT = """
import signal, sys, time, torch
c_in, c_out, kernel, stride, length, native, threads = map(int, sys.argv[1:8])
torch.set_num_threads(threads)
torch.manual_seed(0)
layer = torch.nn.ConvTranspose1d(c_in, c_out, kernel, stride=stride)
x = torch.randn(1, c_in, length)
signal.setitimer(signal.ITIMER_REAL, float(sys.argv[8]))
with torch.no_grad(), torch.backends.mkldnn.flags(enabled=not native):
    began = time.perf_counter()
    layer(x)
print(f"{time.perf_counter() - began:.3f}")
"""


def first_call(shape: tuple, native: bool, threads: int, limit: float) -> str:
    args = [sys.executable, "-c", POINT, *map(str, shape), str(int(native)), str(threads),
            str(limit)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=limit + 120)
    except subprocess.TimeoutExpired:  # the import itself stalled: not a measurement
        return "stalled"
    if done.returncode == -14:  # SIGALRM: the call passed the limit
        return f">{limit:g}"
    return done.stdout.strip() or f"exit {done.returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=4.0, help="seconds a call may take")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    for shape in GRID:
        onednn = first_call(shape, False, args.threads, args.limit)
        native = first_call(shape, True, args.threads, args.limit)
        print(*shape, "onednn", onednn, "native", native, flush=True)


if __name__ == "__main__":
    main()
