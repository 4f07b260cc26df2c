"""The animation's arithmetic: a ConvTranspose1d output built one input sample at a time.

Frame i holds the weighted kernel copies of inputs 0..i on the scatter canvas (copy l lands at
output index l*s - p + j*d) and their running sum; one last frame crops the sum to y (columns
outside [0, L_out) fall away, output_padding extends the right end) and adds the bias. So there
are L_in + 1 frames, and the last one is torch's conv_transpose1d output.

The canvas is the static picture's (steps.transpose1d.scatter_canvas), so the GIF and scatter.png
cannot place a copy differently. No matplotlib here: explain.py checks a request with
`check_animatable` before anything is printed or drawn; animation_gif.py draws the frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.examples import CONV1D, TRANSPOSE1D, Layer
from convscope.explainer.steps.transpose1d import ScatterCanvas, scatter_canvas


@dataclass(frozen=True)
class Frame:
    placed: int  # how many copies are on the canvas: inputs 0..placed-1
    running: np.ndarray  # their column sums over the whole canvas (no bias yet)
    final: bool = False  # the closing frame: the cropped sum plus bias, y

    @property
    def newest(self) -> int | None:
        """The input whose copy this frame adds (highlighted); None on the closing frame."""
        return None if self.final else self.placed - 1


@dataclass(frozen=True)
class Animation:
    x: np.ndarray  # the animated input samples, (L_in,)
    layer: Layer  # one input channel -> one output channel (see picture.one_channel_slice)
    canvas: ScatterCanvas
    frames: tuple[Frame, ...]

    @property
    def bias(self) -> float:
        return 0.0 if self.layer.bias is None else float(self.layer.bias.array()[0])

    @property
    def output(self) -> np.ndarray:
        """y as the closing frame shows it: the kept columns of the last running sum, plus b."""
        return self.frames[-1].running[self.canvas.kept] + self.bias

    def landing(self, l: int) -> np.ndarray:
        """Canvas columns that input l's copy reaches (column u is output index u - padding)."""
        return np.flatnonzero(self.canvas.reached[l])


def scatter_animation(x: np.ndarray, layer: Layer) -> Animation:
    """The frames for one channel pair: x is (1, 1, L_in), layer has one channel in and out."""
    canvas = scatter_canvas(x, layer)
    running = np.cumsum(canvas.rows, axis=0)  # row i: inputs 0..i placed
    frames = [Frame(i + 1, running[i]) for i in range(len(running))]
    frames.append(Frame(len(running), running[-1], final=True))
    return Animation(x[0, 0], layer, canvas, tuple(frames))


def check_animatable(layer: Layer, what: str) -> None:
    """Refuse, naming `animate`, what the scatter animation cannot show.

    A learner asking for the animation expects to watch copies of the kernel pile up: that is
    the transposed convolution. A Conv1d gathers a window per output instead (scatter.png draws
    those windows), and 2-D copies land on a grid the 1-D canvas cannot hold.
    """
    if layer.kind == TRANSPOSE1D:
        return
    if layer.kind == CONV1D:
        raise ConvscopeError(
            f"animate=true: {what} is a Conv1d, which gathers a window of inputs per output; "
            "the animation scatters a ConvTranspose1d's input samples one at a time: choose a "
            "tconv1d_* example or conv=transpose (scatter.png shows the Conv1d's windows)")
    raise ConvscopeError(
        f"animate=true: {what} is a ConvTranspose2d; the animation is 1-D (ConvTranspose1d) "
        "only: choose a tconv1d_* example (scatter.png shows the 2-D copies)")
