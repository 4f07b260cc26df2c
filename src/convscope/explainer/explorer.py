"""explorer=true: copy the interactive explorer page into the run dir, opened on the example.

The page (docs/explorer.html, found through convscope.resources) is one self-contained file; the
copy is byte-for-byte the packaged one. The link printed for it carries the example's numbers in
its address (#x=..&w=..&stride=..), which the page reads at load: only for what the page can show
exactly, a 1-channel-in, 1-channel-out ConvTranspose1d without bias.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from convscope.explainer.examples import TRANSPOSE1D, ExampleRun
from convscope.files import atomic_path
from convscope.resources import explorer_page

PARAMS = ("stride", "padding", "output_padding", "dilation")


def write_explorer(path: Path, run: ExampleRun | None = None) -> str:
    """Copy the page to `path`; return its file:// link, with the example's numbers if it fits."""
    with atomic_path(path) as temp:
        shutil.copyfile(explorer_page(), temp)
    return explorer_link(path, run)


def explorer_link(path: Path, run: ExampleRun | None = None) -> str:
    """The copied page's file:// link, opened on the example's numbers when the page can show it."""
    return path.resolve().as_uri() + explorer_fragment(run)


def explorer_fragment(run: ExampleRun | None) -> str:
    """'#x=1,2&w=1,0,-1&stride=2&...' for a run the page can show as it is, else ''."""
    if run is None or len(run.example.layers) != 1:
        return ""
    layer = run.example.layer
    one_to_one = layer.weight.shape[:2] == (1, 1) and layer.groups == 1
    if layer.kind != TRANSPOSE1D or not one_to_one or layer.bias is not None:
        return ""
    x, w = np.ravel(run.input), np.ravel(layer.weight.array())
    parts = [f"x={_numbers(x)}", f"w={_numbers(w)}"]
    parts += [f"{name}={int(getattr(layer, name))}" for name in PARAMS]
    return "#" + "&".join(parts)


def _numbers(values: np.ndarray) -> str:
    # repr: the shortest text that reads back as the same float64 (JavaScript's Number() too)
    return ",".join(repr(float(v)).removesuffix(".0") for v in values)
