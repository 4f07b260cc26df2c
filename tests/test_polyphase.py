"""The streamed transposed conv's polyphase Conv1d equals torch's conv_transpose1d, and the
cheap non-finite check still finds (and only finds) real NaN/inf."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from convscope.errors import ConvscopeError
from convscope.stack.backends import only_small_convs, safe_kernels
from convscope.stack.polyphase import conv_transpose1d_polyphase, polyphase_weight
from convscope.stack.trace import check_finite


def test_polyphase_equals_conv_transpose1d_on_random_shapes():
    rng = random.Random(0)
    torch.manual_seed(0)
    for _ in range(200):
        groups = rng.choice([1, 1, 2, 3])
        c_in, c_out = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
        k, s, d = rng.randint(1, 9), rng.randint(1, 12), rng.randint(1, 4)
        x = torch.randn(rng.randint(1, 2), c_in, rng.randint(1, 40))
        w = torch.randn(c_in, c_out // groups, k)
        bias = torch.randn(c_out) if rng.random() < 0.5 else None
        expected = F.conv_transpose1d(x, w, bias, s, 0, 0, groups, d)
        got = conv_transpose1d_polyphase(x, polyphase_weight(w, s, d, groups), bias)
        assert got.shape == expected.shape, (k, s, d, groups)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_polyphase_of_a_gapped_stride_leaves_only_the_bias_in_the_gaps():
    """stride 700 > kernel span 3: the shape class oneDNN's transposed kernel crashes on."""
    x, w, bias = torch.randn(1, 2, 50), torch.randn(2, 5, 3), torch.randn(5)
    pw = polyphase_weight(w, 700)
    assert pw.phases == (0, 1, 2)
    got = conv_transpose1d_polyphase(x, pw, bias)
    with warnings.catch_warnings():  # torch warns about Intel GPUs when the flag changes
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):  # oneDNN crashes on this shape
            expected = F.conv_transpose1d(x, w, bias, 700)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_check_finite_passes_finite_values_whose_sum_overflows():
    check_finite(torch.full((1, 2, 8), 3e38), "model.layers.0", "Conv1d")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_names_the_first_bad_sample(bad):
    y = torch.zeros(1, 3, 10)
    y[0, 2, 7] = bad
    y[0, 1, 4] = 3e38  # a huge finite value beside it changes nothing
    with pytest.raises(ConvscopeError, match=r"model.layers.1: .* at channel 2, sample 107\)"):
        check_finite(y, "model.layers.1", "ConvTranspose1d", start=100)


def test_onednn_is_turned_off_only_for_stacks_of_small_convs():
    nn = torch.nn
    small = nn.Sequential(nn.ConvTranspose1d(1, 2, 3), nn.ConvTranspose1d(2, 3, 5, stride=2))
    wide = nn.Sequential(nn.ConvTranspose1d(1, 2, 3), nn.Conv1d(32, 32, 7))
    assert only_small_convs(small) and not only_small_convs(wide)
    for stack, native in ((small, True), (wide, False)):
        with safe_kernels(stack):  # one-shot and streamed alike
            assert torch.backends.mkldnn.enabled != native
        assert torch.backends.mkldnn.enabled  # restored after
