"""The catalogue reproduces every worked example, through the reference code and torch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convscope.errors import ConvscopeError
from convscope.explainer import reference
from convscope.explainer.catalogue import CATALOGUE, find_example
from convscope.explainer.examples import given, run_example

# Every example in shared/WORKED_EXAMPLES.md (names given there, or ours for the unnamed ones),
# hard-coded so the test does not depend on the shared/ directory.
WORKED_EXAMPLES = [
    "tconv1d_basic", "tconv1d_padding", "tconv1d_stride",
    "tconv1d_audio_demo", "tconv1d_dilation2", "tconv1d_dilation3", "tconv1d_asymmetric_kernel",
    "tconv2d_basic", "tconv2d_stride2", "tconv2d_stride3", "tconv2d_stride_1_2",
    "tconv2d_dilation2", "tconv2d_padding1", "tconv2d_output_padding", "tconv2d_model",
    "conv1d_k1", "conv1d_k2", "conv1d_k3", "conv1d_k3_padding1", "conv1d_k5_padding2",
    "conv1d_k3_stride3", "conv1d_k3_dilation2", "conv1d_groups2", "conv1d_depthwise",
    "conv1d_by_hand",
]
FROM_DESIGN = ["tconv1d_checkerboard", "tconv1d_no_checkerboard"]


def test_catalogue_covers_every_worked_example():
    names = [example.name for example in CATALOGUE]
    assert len(names) == len(set(names))
    assert set(WORKED_EXAMPLES + FROM_DESIGN) <= set(names)
    assert len(names) >= 20


@pytest.mark.parametrize("example", CATALOGUE, ids=lambda example: example.name)
def test_example_matches_the_tutorial(example):
    assert example.expected is not None or example.expected_shapes
    run = run_example(example)
    failed = [check.what for check in run.checks if not check.ok]
    assert not failed, failed
    assert any(check.what == "reference = torch" for check in run.checks)


def test_a_wrong_expected_value_is_caught():
    example = find_example("tconv1d_stride")
    wrong = dataclasses.replace(example, expected=given([1, 2, 1, 2, 1, 2, 2], (1, 1, 7)))
    run = run_example(wrong)
    assert not run.matches
    assert {c.what for c in run.checks if not c.ok} == {"reference = tutorial", "torch = tutorial"}


def test_tutorials_2d_decimals_match_to_1e_4():
    run = run_example(find_example("tconv2d_basic"))
    assert run.matches
    np.testing.assert_allclose(run.reference[0][0, 0, 2], [6.6, 18.7, 13.2], atol=1e-4)


def test_simplified_recipe_differs_for_the_asymmetric_kernel():
    example = find_example("tconv1d_asymmetric_kernel")
    x, weight = example.input.array(), example.layer.weight.array()
    shortcut = reference.simplified_recipe(x, weight, example.layer.stride, example.layer.padding)
    exact = example.layer.reference(x)
    assert shortcut.shape == exact.shape and not np.allclose(shortcut, exact)
    np.testing.assert_allclose(exact, example.expected.array())


def test_simplified_recipe_agrees_for_the_tutorials_symmetric_kernel():
    example = find_example("tconv1d_stride")
    x, weight = example.input.array(), example.layer.weight.array()
    np.testing.assert_allclose(reference.simplified_recipe(x, weight, 2, 1),
                               example.expected.array())


def test_transposed_weight_layout_is_in_out():
    run = run_example(find_example("tconv2d_model"))
    assert run.matches
    assert find_example("tconv2d_model").expected_weight_shapes == ((32, 64, 4, 4),)
    assert run.reference[0].shape == (1, 64, 32, 32)


def test_random_examples_are_seeded():
    first = run_example(find_example("conv1d_by_hand"))
    second = run_example(find_example("conv1d_by_hand"))
    np.testing.assert_array_equal(first.input, second.input)
    np.testing.assert_array_equal(first.reference[0], second.reference[0])


def test_unknown_example_lists_the_known_ones():
    with pytest.raises(ConvscopeError, match="example 'foo' is not in the catalogue; known: "
                                             "tconv1d_basic, "):
        find_example("foo")
