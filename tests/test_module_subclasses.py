"""model=module: layers whose classes subclass Conv1d / ConvTranspose1d get their figures like
the torch classes themselves (issue 24, item 6: the figures picked layers by class name)."""

from __future__ import annotations

import textwrap

import convscope

MODEL = '''
from torch import nn


class Upsampler(nn.ConvTranspose1d):
    """A user's own transposed conv: torch's, with a name of its own."""


class Smoother(nn.Conv1d):
    pass


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = Upsampler(1, 2, 4, stride=2, padding=1)
        self.smooth = Smoother(2, 1, 3, padding=1)

    def forward(self, x):
        return self.smooth(self.up(x))
'''


def test_subclasses_of_the_torch_convs_get_layer_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "subclassed.py").write_text(textwrap.dedent(MODEL))
    report = convscope.run(["model=module", "model.target=subclassed.py:Net", "data.start=2",
                            "data.end=2.1", "plots.dpi=30", "plots.spectrogram=false",
                            "evaluate.enabled=false", "report=false",
                            "plots.layers=[up,smooth]"], out_dir="out")  # both, not only up
    types = [layer["type"] for layer in report.shapes["layers"]]
    assert types == ["Upsampler", "Smoother"]
    drawn = sorted(path.name for path in (tmp_path / "out" / "plots").glob("layer[0-9]*.png"))
    assert drawn == ["layer0_Upsampler.png", "layer1_Smoother.png"]
    assert (tmp_path / "out" / "plots" / "layers_overview.png").exists()  # every conv call
