"""convscope.reference against torch over random shapes and parameters (float64, 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convscope.errors import ConvscopeError
from convscope.explainer import reference as ref
from convscope.stack.lengths import conv1d_output_length, conv_transpose1d_output_length

TOL = 1e-5
PROPERTY = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.filter_too_much])


def random_arrays(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def torch_call(fn, x, weight, bias, **kwargs) -> np.ndarray:
    as_tensor = (lambda a: None if a is None else torch.from_numpy(a))
    return fn(as_tensor(x), as_tensor(weight), as_tensor(bias), **kwargs).numpy()


@st.composite
def transpose1d_cases(draw):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    length, batch = draw(st.integers(1, 6)), draw(st.integers(1, 2))
    op = draw(st.integers(0, max(s, d) - 1))
    p = draw(st.integers(0, d * (k - 1) + 2))  # beyond d*(k-1) the zero-insert view crops
    assume(conv_transpose1d_output_length(length, k, s, p, op, d) >= 1)
    x, w, b = random_arrays(draw(st.integers(0, 2**16)), (batch, c_in, length),
                            (c_in, c_out // groups, k), (c_out,))
    bias = b if draw(st.booleans()) else None
    return x, w, bias, dict(stride=s, padding=p, output_padding=op, dilation=d, groups=groups)


@PROPERTY
@given(transpose1d_cases())
def test_conv_transpose1d_all_methods_match_torch(case):
    x, w, b, params = case
    expected = torch_call(F.conv_transpose1d, x, w, b, **params)
    for method in ref.TRANSPOSE_METHODS_1D:
        got = ref.conv_transpose1d(x, w, b, method=method, **params)
        np.testing.assert_allclose(got, expected, atol=TOL, rtol=0, err_msg=method)


@PROPERTY
@given(transpose1d_cases())
def test_scatter_rows_sum_to_the_output(case):
    x, w, b, params = case
    rows = ref.scatter_rows(x, w, **params)  # (N, C_in, L_in, C_out, L_out)
    bias = 0.0 if b is None else b[None, :, None]
    expected = torch_call(F.conv_transpose1d, x, w, b, **params)
    np.testing.assert_allclose(rows.sum(axis=(1, 2)) + bias, expected, atol=TOL, rtol=0)


@st.composite
def conv1d_cases(draw):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k, s, d, p = (draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3)),
                  draw(st.integers(0, 3)))
    shortest = max(1, d * (k - 1) + 1 - 2 * p)  # the kernel must fit in the padded input
    length = draw(st.integers(shortest, shortest + 8))
    x, w, b = random_arrays(draw(st.integers(0, 2**16)), (draw(st.integers(1, 2)), c_in, length),
                            (c_out, c_in // groups, k), (c_out,))
    bias = b if draw(st.booleans()) else None
    return x, w, bias, dict(stride=s, padding=p, dilation=d, groups=groups)


@PROPERTY
@given(conv1d_cases())
def test_conv1d_matches_torch(case):
    x, w, b, params = case
    np.testing.assert_allclose(ref.conv1d(x, w, b, **params),
                               torch_call(F.conv1d, x, w, b, **params), atol=TOL, rtol=0)


@PROPERTY
@given(conv1d_cases())
def test_conv_matrix_times_input_is_conv1d(case):
    x, w, _, params = case
    matrix = ref.conv_matrix(w, x.shape[2], **params)
    y = ref.conv1d(x, w, None, **params)
    np.testing.assert_allclose(x.reshape(len(x), -1) @ matrix.T, y.reshape(len(y), -1),
                               atol=TOL, rtol=0)


@st.composite
def transpose2d_cases(draw):
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    axes = []
    for _ in range(2):
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        op, length = draw(st.integers(0, max(s, d) - 1)), draw(st.integers(1, 4))
        p = draw(st.integers(0, d * (k - 1) + 1))
        assume(conv_transpose1d_output_length(length, k, s, p, op, d) >= 1)
        axes.append((k, s, d, op, length, p))
    k, s, d, op, length, p = (tuple(values) for values in zip(*axes))
    x, w, b = random_arrays(draw(st.integers(0, 2**16)), (1, c_in, *length),
                            (c_in, c_out // groups, *k), (c_out,))
    bias = b if draw(st.booleans()) else None
    return x, w, bias, dict(stride=s, padding=p, output_padding=op, dilation=d, groups=groups)


@settings(PROPERTY, max_examples=60)
@given(transpose2d_cases())
def test_conv_transpose2d_matches_torch(case):
    x, w, b, params = case
    expected = torch_call(F.conv_transpose2d, x, w, b, **params)
    for method in ref.TRANSPOSE_METHODS_2D:
        got = ref.conv_transpose2d(x, w, b, method=method, **params)
        np.testing.assert_allclose(got, expected, atol=TOL, rtol=0, err_msg=method)


@settings(PROPERTY, max_examples=60)
@given(st.integers(1, 8), st.integers(1, 3), st.integers(0, 3), st.integers(0, 2**16))
def test_simplified_recipe_is_right_only_for_symmetric_kernels(length, stride, padding, seed):
    half = np.random.default_rng(seed).standard_normal(2)
    symmetric = np.array([half[0], half[1], half[0]])[None, None]  # k=3, d=1, no output_padding
    assume(conv_transpose1d_output_length(length, 3, stride, padding) >= 1)
    x = np.random.default_rng(seed + 1).standard_normal((1, 1, length))
    expected = torch_call(F.conv_transpose1d, x, symmetric, None, stride=stride, padding=padding)
    np.testing.assert_allclose(ref.simplified_recipe(x, symmetric, stride, padding), expected,
                               atol=TOL, rtol=0)


def test_simplified_recipe_breaks_for_an_asymmetric_kernel():
    x, w = np.array([[[1.0, 2.0, 3.0]]]), np.array([[[1.0, 2.0, 3.0]]])
    np.testing.assert_allclose(ref.simplified_recipe(x, w), [[[3, 8, 14, 8, 3]]])
    np.testing.assert_allclose(ref.conv_transpose1d(x, w), [[[1, 4, 10, 12, 9]]])


def test_zero_insertion_puts_no_zero_after_the_last_sample():
    x = np.array([[[1.0, 2.0, 3.0]]])
    np.testing.assert_array_equal(ref.insert_zeros(x, 3), [[[1, 0, 0, 2, 0, 0, 3]]])
    padded = ref.zero_insert_and_pad(x, kernel_size=3, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(padded, [[[0, 1, 0, 2, 0, 3, 0, 0]]])  # 1 left, 1+1 right


def test_flip_kernel_swaps_channels_and_reverses_taps():
    w = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)  # (in=2, out=3, k=4)
    flipped = ref.flip_kernel(w)
    assert flipped.shape == (3, 2, 4)
    for o, i, j in np.ndindex(3, 2, 4):
        assert flipped[o, i, j] == w[i, o, 3 - j]


def test_long_audio_is_fast_enough():
    x, w = random_arrays(0, (1, 2, 16000), (2, 3, 5))
    y = ref.conv_transpose1d(x, w, stride=2, padding=2, output_padding=1)
    assert y.shape == (1, 3, 32000)


@pytest.mark.parametrize("kwargs, words", [
    (dict(stride=2, output_padding=2), "output_padding must be smaller than stride or dilation"),
    (dict(output_padding=1), "output_padding=1, stride=1, dilation=1"),
    (dict(padding=9), "padding=9 leaves no output"),
    (dict(stride=0), "stride must be >= 1"),
    (dict(groups=2), "divisible by groups=2"),
    (dict(method="fft"), "method must be one of"),
])
def test_conv_transpose1d_rejects_bad_arguments(kwargs, words):
    x, w = random_arrays(0, (1, 3, 4), (3, 1, 3))
    with pytest.raises(ConvscopeError, match=words):
        ref.conv_transpose1d(x, w, **kwargs)


def test_conv_transpose1d_names_the_weight_layout():
    x, w = random_arrays(0, (1, 2, 4), (3, 2, 3))  # (out, in, k): the tutorials' wrong layout
    with pytest.raises(ConvscopeError, match=r"layout \(in, out/groups, k\)"):
        ref.conv_transpose1d(x, w)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, words", [
    ((1, 1, 2), (1, 1, 3), {}, "more than the padded input"),
    ((1, 1, 0), (1, 1, 1), {}, "input is empty"),
    ((1, 3, 4), (2, 1, 1), dict(groups=2), "divisible by groups=2"),
    ((1, 4, 4), (2, 1, 1), dict(groups=2), "expects 2 input channels"),
])
def test_conv1d_rejects_bad_arguments(x_shape, w_shape, kwargs, words):
    x, w = random_arrays(0, x_shape, w_shape)
    with pytest.raises(ConvscopeError, match=words):
        ref.conv1d(x, w, **kwargs)


def test_conv1d_output_length_rule_from_the_tutorial():
    x, w = random_arrays(0, (4, 2, 6), (3, 2, 5))
    assert ref.conv1d(x, w).shape == (4, 3, conv1d_output_length(6, 5)) == (4, 3, 2)


# ---------------------------------------------------------------------------------------------
# torch tensors as arguments: requiring grad, nn.Parameters, other devices
# ---------------------------------------------------------------------------------------------

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


@pytest.mark.parametrize("device", DEVICES)
def test_conv_transpose1d_takes_a_layers_parameters_and_grad_tensors(device):
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose1d(3, 2, 5, stride=2, padding=1, output_padding=1).to(device)
    x = torch.randn(2, 3, 7, device=device, requires_grad=True)
    expected = F.conv_transpose1d(x, layer.weight, layer.bias, stride=2, padding=1,
                                  output_padding=1).detach().cpu().numpy()
    for method in ref.TRANSPOSE_METHODS_1D:
        got = ref.conv_transpose1d(x, layer.weight, layer.bias, stride=2, padding=1,
                                   output_padding=1, method=method)
        assert got.dtype == np.float32  # a float32 tensor stays float32, as a float32 array does
        np.testing.assert_allclose(got, expected, atol=TOL)


@pytest.mark.parametrize("device", DEVICES)
def test_conv1d_takes_a_layers_parameters_and_grad_tensors(device):
    torch.manual_seed(1)
    layer = torch.nn.Conv1d(2, 4, 3, padding=1, dilation=2, groups=2).to(device)
    x = torch.randn(1, 2, 9, device=device, requires_grad=True)
    expected = layer(x).detach().cpu().numpy()
    got = ref.conv1d(x, layer.weight, layer.bias, padding=1, dilation=2, groups=2)
    np.testing.assert_allclose(got, expected, atol=TOL)


@pytest.mark.parametrize("device", DEVICES)
def test_conv_transpose2d_takes_a_layers_parameters_and_grad_tensors(device):
    torch.manual_seed(2)
    layer = torch.nn.ConvTranspose2d(2, 3, (3, 2), stride=(2, 1), padding=1).to(device)
    x = torch.randn(1, 2, 4, 5, device=device, requires_grad=True)
    expected = layer(x).detach().cpu().numpy()
    for method in ref.TRANSPOSE_METHODS_2D:
        got = ref.conv_transpose2d(x, layer.weight, layer.bias, stride=(2, 1), padding=1,
                                   method=method)
        np.testing.assert_allclose(got, expected, atol=TOL)


def test_views_take_tensors_and_float64_arrays_stay_float64():
    w = torch.nn.Parameter(torch.tensor([[[1.0, 2.0, -1.0]]]))
    x = torch.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    rows = ref.scatter_rows(x, w, stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(rows.sum(axis=(1, 2)), [[[2, 1, 4, 1, 6, -3]]])
    np.testing.assert_array_equal(ref.flip_kernel(w), [[[-1.0, 2.0, 1.0]]])
    np.testing.assert_array_equal(ref.insert_zeros(x, 2), [[[1, 0, 2, 0, 3]]])
    assert ref.conv_transpose1d(x.detach().double().numpy(), w.detach().double().numpy()).dtype \
        == np.float64
    assert ref.conv_transpose1d([[[1, 2]]], [[[1, 1]]]).dtype == np.float64  # ints -> float64
    half = ref.conv_transpose1d(x.detach().bfloat16(), w.detach().bfloat16())  # no NumPy bfloat16
    np.testing.assert_allclose(half, [[[1, 4, 6, 4, -3]]])
