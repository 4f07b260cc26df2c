"""Strided transposed convs run on torch's native kernel, not oneDNN's, which hangs on them
(issue 24, item 4): the routing on a grid around the reported case, and that case for real."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from convscope.stack.backends import hangs_on_onednn, safe_kernels
from tests.helpers import REPO


class Probe:
    """Mixin: records whether oneDNN was on while the layer itself computed."""

    def forward(self, x):
        self.onednn.append(torch.backends.mkldnn.enabled)
        return super().forward(x)


class ProbedTranspose(Probe, nn.ConvTranspose1d):
    pass


class ProbedConv(Probe, nn.Conv1d):
    pass


def probed(layer: type, *args, **kwargs) -> nn.Module:
    module = layer(*args, **kwargs)
    module.onednn = []
    return module


# The reported case is Conv1d(1 -> 4, k=1) then ConvTranspose1d(4 -> 4, k=800, s=400) on 2.6 s
# at 16 kHz; around it: kernels shorter and longer than twice the stride, strides from 2 to 800,
# few and more channels. The rule reads no length (the hang came at 1,000 to 160,000 samples),
# so each shape is run on a few samples.
GRID = [(c_in, c_out, kernel, stride)
        for kernel in (4, 80, 400, 800, 1600) for stride in (2, 8, 40, 200, 400, 800)
        for c_in, c_out in ((1, 4), (4, 4), (16, 4), (4, 16), (64, 64))]


@pytest.mark.parametrize("c_in,c_out,kernel,stride", GRID)
def test_strided_transposed_convs_run_natively_and_the_rest_keeps_onednn(c_in, c_out, kernel,
                                                                        stride):
    up = probed(ProbedTranspose, c_in, c_out, kernel, stride=stride)
    # a Conv1d too big for the small-stack rule: it keeps oneDNN, where it is the faster kernel
    before = probed(ProbedConv, 1, c_in, 1)
    after = probed(ProbedConv, c_out, 32, 7)
    stack = nn.Sequential(before, up, after)
    assert hangs_on_onednn(up)
    with torch.no_grad(), safe_kernels(stack):
        stack(torch.zeros(1, 1, 3))
    gapped = stride > kernel  # the older rule: such a stack runs natively throughout
    assert up.onednn == [False]
    assert before.onednn == after.onednn == [not gapped]
    assert torch.backends.mkldnn.enabled  # restored after


def test_an_unstrided_transposed_conv_keeps_onednn():
    layer = probed(ProbedTranspose, 16, 16, 7)
    stack = nn.Sequential(layer, nn.Conv1d(16, 16, 7))
    assert not hangs_on_onednn(layer)
    with torch.no_grad(), safe_kernels(stack):
        stack(torch.zeros(1, 16, 20))
    assert layer.onednn == [True]


def test_onednn_is_back_on_after_a_forward_that_raised_inside_the_layer():
    class Failing(nn.ConvTranspose1d):
        def forward(self, x):
            raise RuntimeError("the user's layer failed")

    stack = nn.Sequential(Failing(4, 4, 8, stride=4), nn.Conv1d(4, 32, 7))
    with pytest.raises(RuntimeError), safe_kernels(stack):
        stack(torch.zeros(1, 4, 10))
    assert torch.backends.mkldnn.enabled
    assert not stack[0]._forward_pre_hooks and not stack[0]._forward_hooks  # hooks removed


REPORTED_CASE = textwrap.dedent("""
    import torch
    from torch import nn

    import convscope

    torch.set_num_threads(2)  # the reported hang; at 1 thread oneDNN took 4 s
    model = nn.Sequential(nn.Conv1d(1, 4, 1), nn.ConvTranspose1d(4, 4, 800, stride=400))
    print(convscope.describe(model, (1, 1, 41600)).rows[-1].output_shape)
""")


def test_the_reported_case_finishes_within_seconds():
    """Through describe (one forward, as a run's trace): oneDNN never finished it (over 60 s,
    deaf to SIGTERM); the native kernel takes about a second."""
    try:
        done = subprocess.run([sys.executable, "-c", REPORTED_CASE], cwd=REPO, timeout=20,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("the transposed conv did not finish in 20 s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([1, 4, (41600 - 1) * 400 + 800])  # L_out = (L-1)s + k
