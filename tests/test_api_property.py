"""The Python API under hostile arguments, as test_cli_property does the command line (issue 24
item 7): `describe`, `formula`, `explain` and `run` either answer or raise ConvscopeError with one
line; never another exception, and never an allocation far beyond what the answer needs (the
process's peak RSS grows by less than MAX_GROWTH_KB over every example).

Hypothesis draws the arguments from hostile values (zero, negative, NaN, inf, 2**70, strings,
wrong types, shapes of huge or empty tensors); `-m slow` draws more examples.
"""

from __future__ import annotations

import math
import resource

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import convscope
from convscope.errors import ConvscopeError

MAX_GROWTH_KB = 1_000_000  # 1 GB over the whole test: real answers here need a few MB
EXAMPLES = 60
HOSTILE_NUMBERS = [0, -1, 1, 2, 3, 2**31, 2**63 - 1, 2**70, -(2**70), 0.5, -0.0, math.nan,
                   math.inf, -math.inf, 1e308, True, False, None, "", "3", "abc", "1/0", "nan",
                   [], [1], {}, b"1"]
number = st.sampled_from(HOSTILE_NUMBERS) | st.integers(-(2**80), 2**80) | st.floats()


class Raises(nn.Module):
    def forward(self, x):
        raise RuntimeError("inside forward")


class ReturnsTuple(nn.Module):
    def forward(self, x):
        return x, x


class InPlace(nn.Module):
    def forward(self, x):
        return x.mul_(2)


def _modules():
    return st.sampled_from([
        nn.Conv1d(1, 2, 3), nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1),
        nn.Sequential(nn.Conv1d(1, 1, 3), nn.LeakyReLU(0.1)), Raises(), ReturnsTuple(), InPlace(),
        nn.Linear(3, 3), nn.LSTM(1, 1), None, 3, "model", nn.Identity()])


def _example_inputs():
    shapes = st.lists(number, min_size=0, max_size=4) | st.sampled_from(
        [[1, 1, 2**70], [1, 1, 10**9], [1, 1, 0], [0, 1, 16], [1, -1, 16], [1, 1, 16]])
    tensors = st.sampled_from([torch.zeros(1, 1, 16), torch.zeros(0), torch.zeros(1, 1, 0),
                               torch.full((1, 1, 8), math.nan), torch.zeros(2, 3, 4, 5),
                               torch.zeros(1, 1, 16, dtype=torch.int64)])
    return st.one_of(tensors, shapes, number)


@pytest.fixture(scope="module")
def rss_budget():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < MAX_GROWTH_KB, f"peak RSS grew by {grown} KB"


def _answers_or_one_line(call) -> None:
    try:
        call()
    except ConvscopeError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(model=_modules(), x=_example_inputs(), rate=number)
def test_describe_answers_or_raises_one_line(rss_budget, model, x, rate):
    _answers_or_one_line(lambda: convscope.describe(model, x, sample_rate=rate))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(layer=_modules(), length=number)
def test_formula_answers_or_raises_one_line(rss_budget, layer, length):
    _answers_or_one_line(lambda: convscope.formula(layer, length))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(example=st.sampled_from([None, "tconv1d_basic", "nope", 3, ""]),
       data=st.lists(number, min_size=0, max_size=4) | number,
       weight=st.lists(number, min_size=0, max_size=4) | number,
       stride=number, padding=number, dilation=number, conv=st.sampled_from(
           ["transpose", "conv1d", "conv2d", 1, None]))
def test_explain_answers_or_raises_one_line(rss_budget, example, data, weight, stride, padding,
                                            dilation, conv):
    kwargs = dict(input=data, weight=weight, stride=stride, padding=padding, dilation=dilation,
                  conv=conv) if example is None else {}
    _answers_or_one_line(lambda: convscope.explain(example, picture=False, **kwargs))


@settings(max_examples=EXAMPLES // 3, deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=True)
@given(overrides=st.lists(st.sampled_from([
    "model.layers.0.stride=0", "data.end=nan", "data.start=2**70", "model=nope", "data=null",
    "seed=-1", "limits.memory_gb=1e308", "model.layers.0.kernel_size=100000000000",
    "stream.block_seconds=1e-300", "data.path=/dev/zero", "plots.enabled=maybe", 3, None,
    "=1", "+=", "model.layers=[]", "audio.subtype=MP3", "data.sr=0",
]), min_size=1, max_size=3))
def test_run_answers_or_raises_one_line(rss_budget, tmp_path_factory, overrides):
    out = tmp_path_factory.mktemp("run")
    # everything else small: 50 ms of the sample clip, no figures
    _answers_or_one_line(lambda: convscope.run(
        ["data.end=2.05", "plots.enabled=false", *overrides], out_dir=out / "r"))
