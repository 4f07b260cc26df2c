"""Every worked example from the source tutorials (shared/WORKED_EXAMPLES.md), as data."""

from __future__ import annotations

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.examples import (
    CONV1D,
    TRANSPOSE1D,
    TRANSPOSE2D,
    Example,
    Layer,
    Shape,
    Tensor,
    given,
    rand,
)


def find_example(name: str) -> Example:
    for example in CATALOGUE:
        if example.name == name:
            return example
    known = ", ".join(example.name for example in CATALOGUE)
    raise ConvscopeError(f"example '{name}' is not in the catalogue; known: {known}")


def _tconv1d(weight, shape: Shape | None = None, **params) -> Layer:
    shape = shape or (1, 1, len(weight))
    return Layer(TRANSPOSE1D, given(weight, shape), **params)


def _conv1d(weight, shape: Shape, **params) -> Layer:
    return Layer(CONV1D, given(weight, shape), **params)


def _tconv2d(**params) -> Layer:
    return Layer(TRANSPOSE2D, given([[1.1, 2.2], [3.3, 4.4]], (1, 1, 2, 2)), **params)


def _row(values) -> Tensor:
    return given(values, (1, 1, len(values)))


def _grid(rows) -> Tensor:
    return given(rows, (1, 1, len(rows), len(rows[0])))


SCATTER = "ConvTranspose1d: the scatter view"


AUDIO = "ConvTranspose1d: the audio demo and the zero-insertion view"


ARTIFACTS = "ConvTranspose1d: uneven overlap (docs/design.md, facts the code must get right)"


T2D = "ConvTranspose2d"


C1D = "Conv1d"


BY_HAND = "Conv1d: reading one output by hand"


ONES4 = _row([1, 1, 1, 1])


T2D_INPUT = _grid([[0, 1], [2, 3]])


STRIDE2_2D = [[0, 0, 1.1, 2.2], [0, 0, 3.3, 4.4], [2.2, 4.4, 3.3, 6.6], [6.6, 8.8, 9.9, 13.2]]


C1D_INPUT = _row([1, 2, 3, 4, 5, 6])


TWO_CHANNELS = given([[1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]], (1, 2, 6))


SIX = np.arange(1, 7)


CATALOGUE: tuple[Example, ...] = (
    Example("tconv1d_basic", SCATTER,
            "y1 feeds x1..x3 with w1..w3, y2 feeds x2..x4; overlapping contributions add",
            ONES4, (_tconv1d([1, 1, 1]),), expected=_row([1, 2, 3, 3, 2, 1])),
    Example("tconv1d_padding", SCATTER, "padding removes positions from the output's ends",
            ONES4, (_tconv1d([1, 1, 1], padding=1),), expected=_row([2, 3, 3, 2])),
    Example("tconv1d_stride", SCATTER, "stride spaces the kernel copies apart on the output side",
            ONES4, (_tconv1d([1, 1, 1], stride=2, padding=1),),
            expected=_row([1, 2, 1, 2, 1, 2, 1])),
    Example("tconv1d_audio_demo", AUDIO,
            "the demo stack on 1 s at 16 kHz doubles the length: (1,1,16000) -> (1,3,32000)",
            rand((1, 1, 16000), seed=0, low=-1.0),
            (Layer(TRANSPOSE1D, rand((1, 2, 3), seed=1, low=-1.0), rand((2,), seed=2, low=-1.0),
                   stride=1, padding=1),
             Layer(TRANSPOSE1D, rand((2, 3, 5), seed=3, low=-1.0), rand((3,), seed=4, low=-1.0),
                   stride=2, padding=2, output_padding=1)),
            expected_shapes=((1, 2, 16000), (1, 3, 32000)),
            expected_weight_shapes=((1, 2, 3), (2, 3, 5)), expected_bias_shapes=((2,), (3,)),
            note="seeded noise in [-1, 1) stands in for the WAV segment; weights are seeded too"),
    Example("tconv1d_dilation2", AUDIO,
            "dilation=2 spreads [w1,w2,w3] to [w1,0,w2,0,w3] (span 5), still 3 weights",
            ONES4, (_tconv1d([1, 2, 3], dilation=2),), expected=_row([1, 1, 3, 3, 5, 5, 3, 3]),
            same_as=_tconv1d([1, 0, 2, 0, 3])),
    Example("tconv1d_dilation3", AUDIO,
            "dilation=3 spreads [w1,w2,w3] to [w1,0,0,w2,0,0,w3] (span 7), still 3 weights",
            ONES4, (_tconv1d([1, 2, 3], dilation=3),),
            expected=_row([1, 1, 1, 3, 2, 2, 5, 3, 3, 3]), same_as=_tconv1d([1, 0, 0, 2, 0, 0, 3])),
    Example("tconv1d_asymmetric_kernel", AUDIO,
            "the tutorials' zero insertion + k-p-1 padding recipe skips the kernel flip: "
            "fine for [1,1,1], wrong for [1,2,3]",
            _row([1, 2, 3]), (_tconv1d([1, 2, 3]),), expected=_row([1, 4, 10, 12, 9]),
            expected_simplified=_row([3, 8, 14, 8, 3])),
    Example("tconv1d_checkerboard", ARTIFACTS,
            "k=5 is not divisible by s=2: a constant input comes out as [2,2,3,2,3,...], "
            "a tone at the new Nyquist frequency",
            _row([1] * 8), (_tconv1d([1] * 5, stride=2, padding=2, output_padding=1),),
            expected=_row([2, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 2, 1])),
    Example("tconv1d_no_checkerboard", ARTIFACTS,
            "k = 2*stride with p = (k-s)/2 overlaps evenly: a constant input stays constant inside",
            _row([1] * 8), (_tconv1d([1] * 4, stride=2, padding=1),),
            expected=_row([1] + [2] * 14 + [1])),
    Example("tconv2d_basic", T2D, "each input pixel adds a weighted copy of the 2x2 kernel",
            T2D_INPUT, (_tconv2d(),),
            expected=_grid([[0, 1.1, 2.2], [2.2, 11, 11], [6.6, 18.7, 13.2]])),
    Example("tconv2d_stride2", T2D, "stride 2: the four copies no longer overlap",
            T2D_INPUT, (_tconv2d(stride=2),), expected=_grid(STRIDE2_2D)),
    Example("tconv2d_stride3", T2D, "stride 3: the four 2x2 blocks with a row and column of "
            "zeros between them", T2D_INPUT, (_tconv2d(stride=3),),
            expected=_grid([[0, 0, 0, 1.1, 2.2], [0, 0, 0, 3.3, 4.4], [0, 0, 0, 0, 0],
                            [2.2, 4.4, 0, 3.3, 6.6], [6.6, 8.8, 0, 9.9, 13.2]])),
    Example("tconv2d_stride_1_2", T2D, "stride (1,2): overlap down the rows, none across",
            T2D_INPUT, (_tconv2d(stride=(1, 2)),),
            expected=_grid([[0, 0, 1.1, 2.2], [2.2, 4.4, 6.6, 11], [6.6, 8.8, 9.9, 13.2]])),
    Example("tconv2d_dilation2", T2D, "dilation 2 equals dilation 1 with kernel "
            "[[1.1,0,2.2],[0,0,0],[3.3,0,4.4]]", T2D_INPUT, (_tconv2d(dilation=2),),
            expected=_grid([[0, 1.1, 0, 2.2], [2.2, 3.3, 4.4, 6.6], [0, 3.3, 0, 4.4],
                            [6.6, 9.9, 8.8, 13.2]]),
            same_as=Layer(TRANSPOSE2D, _grid([[1.1, 0, 2.2], [0, 0, 0], [3.3, 0, 4.4]]))),
    Example("tconv2d_padding1", T2D, "padding 1 removes one ring from the basic output",
            T2D_INPUT, (_tconv2d(padding=1),), expected=_grid([[11]])),
    Example("tconv2d_output_padding", T2D, "output_padding 1 adds one row at the bottom and one "
            "column at the right of the stride-2 output (half a ring)", T2D_INPUT,
            (_tconv2d(stride=2, output_padding=1),),
            expected=_grid([row + [0] for row in STRIDE2_2D] + [[0] * 5])),
    Example("tconv2d_model", T2D, "ConvTranspose2d(32,64,k=4,s=2,p=1) doubles 16x16 to 32x32; "
            "its weight is (in, out, kH, kW) = (32,64,4,4), not (out, in, ...)",
            rand((1, 32, 16, 16), seed=5),
            (Layer(TRANSPOSE2D, rand((32, 64, 4, 4), seed=6, low=-1.0),
                   rand((64,), seed=7, low=-1.0), stride=2, padding=1),),
            expected_shapes=((1, 64, 32, 32),), expected_weight_shapes=((32, 64, 4, 4),)),
    Example("conv1d_k1", C1D, "k=1 scales every sample", C1D_INPUT,
            (_conv1d([2], (1, 1, 1)),), expected=_row(2 * SIX)),
    Example("conv1d_k2", C1D, "k=2 adds neighbours: L_out = L_in - k + 1", C1D_INPUT,
            (_conv1d([2, 2], (1, 1, 2)),), expected=_row([6, 10, 14, 18, 22])),
    Example("conv1d_k3", C1D, "k=3 sums windows of three", C1D_INPUT,
            (_conv1d([2] * 3, (1, 1, 3)),), expected=_row([12, 18, 24, 30])),
    Example("conv1d_k3_padding1", C1D, "padding 1 keeps the length ('same' for k=3)", C1D_INPUT,
            (_conv1d([2] * 3, (1, 1, 3), padding=1),), expected=_row([6, 12, 18, 24, 30, 22])),
    Example("conv1d_k5_padding2", C1D, "padding 2 keeps the length for k=5", C1D_INPUT,
            (_conv1d([2] * 5, (1, 1, 5), padding=2),), expected=_row([12, 20, 30, 40, 36, 30])),
    Example("conv1d_k3_stride3", C1D, "stride 3: windows do not overlap", C1D_INPUT,
            (_conv1d([2] * 3, (1, 1, 3), stride=3),), expected=_row([12, 30])),
    Example("conv1d_k3_dilation2", C1D, "dilation 2 reads every other sample (span 5)",
            C1D_INPUT, (_conv1d([2] * 3, (1, 1, 3), dilation=2),), expected=_row([18, 24])),
    Example("conv1d_groups2", C1D, "groups=2: each channel has its own kernel", TWO_CHANNELS,
            (_conv1d([2, 4], (2, 1, 1), groups=2),),
            expected=given([2 * SIX, 40 * SIX], (1, 2, 6))),
    Example("conv1d_depthwise", C1D, "in=2 out=4 groups=2: two kernels per input channel",
            TWO_CHANNELS, (_conv1d([2, 4, 6, 8], (4, 1, 1), groups=2),),
            expected=given([2 * SIX, 4 * SIX, 60 * SIX, 80 * SIX], (1, 4, 6))),
    Example("conv1d_by_hand", BY_HAND,
            "Conv1d(2,3,k=5) on rand(4,2,6): y[0,0,0] = x[0,0,0:5]·w[0,0] + x[0,1,0:5]·w[0,1] "
            "+ b[0]; L_out = L_in - k + 1 = 2",
            rand((4, 2, 6), seed=8),
            (Layer(CONV1D, rand((3, 2, 5), seed=9, low=-1.0), rand((3,), seed=10, low=-1.0)),),
            expected_shapes=((4, 3, 2),), expected_weight_shapes=((3, 2, 5),),
            expected_bias_shapes=((3,),)),
)
