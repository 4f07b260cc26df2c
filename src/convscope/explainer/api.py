"""convscope.explain: the explainer from Python, returning exactly what scripts/explain.py prints.

    import convscope
    print(convscope.explain())                      # every worked example: reference, torch
    r = convscope.explain("tconv1d_stride")         # one example, step by step
    layer = torch.nn.ConvTranspose1d(2, 1, 3, stride=2)
    r = convscope.explain(input=torch.randn(2, 5), weight=layer.weight, bias=layer.bias, stride=2)
    r.ok, r.output, r.picture                       # in Jupyter, `r` shows the text and the picture

The arguments are the script's keys, with the same shape rule (input (L) or (C_in, L), no batch
axis; weight (k), (C_in, k) or torch's layout; see explainer/custom.py) and the same one-line
messages, raised as ConvscopeError. input/weight/bias may be lists, NumPy arrays or torch tensors
(a layer's Parameters included).

The picture (scatter.png, for one example or custom input) is drawn only when asked for: with
out_dir it is written there (picture=False turns it off); picture=True without out_dir writes it
into a fresh temporary directory. Otherwise nothing is drawn and matplotlib is never imported.
Hydra never is: the script is its only client.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.config import ExplainConfig
from convscope.explainer.explain import run_explain
from convscope.explainer.reference.arrays import to_numpy

__all__ = ["ExplainResult", "explain"]

INT_KEYS = ("stride", "padding", "output_padding", "dilation")


@dataclass(frozen=True)
class ExplainResult:
    """What convscope.explain did: the script's text, whether everything matched, the outputs."""

    text: str  # exactly the script's stdout for the same request
    ok: bool  # every check passed (the script's exit status 0)
    outputs: dict[str, np.ndarray] = field(repr=False)  # example name -> last layer's output
    picture: Path | None = None  # scatter.png, when one was drawn

    @property
    def output(self) -> np.ndarray | None:
        """The walked-through example's output, (1, C_out, L_out); None when checking them all.

        Computed by convscope's NumPy reference; `ok` says whether torch gave the same.
        """
        return next(iter(self.outputs.values())) if len(self.outputs) == 1 else None

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        names = list(self.outputs)
        what = names[0] if len(names) == 1 else f"{len(names)} examples"
        return f"ExplainResult({what}, ok={self.ok}, picture={self.picture})"

    def _repr_html_(self) -> str:
        """Jupyter: the text as preformatted, then the picture inline (base64 PNG)."""
        parts = [f"<pre>{html.escape(self.text)}</pre>"]
        if self.picture is not None and self.picture.exists():
            data = base64.b64encode(self.picture.read_bytes()).decode("ascii")
            alt = html.escape(str(self.picture), quote=True)
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{alt}">')
        return "\n".join(parts)


def explain(example: str | None = None, *, input: Any = None, weight: Any = None,
            bias: Any = None, conv: str = "transpose", stride: int = 1, padding: int = 0,
            output_padding: int = 0, dilation: int = 1,
            out_dir: str | os.PathLike | None = None,
            picture: bool | None = None) -> ExplainResult:
    """Check every catalogue example (no arguments), or walk through one example or your numbers.

    example: a catalogue name (run with no arguments to list them). input/weight/bias: your own
    numbers instead, through conv="transpose" (ConvTranspose1d) or conv="conv1d". out_dir and
    picture: where scatter.png goes, if anywhere (see the module docstring).
    """
    for key, value in (("example", example), ("conv", conv)):
        if value is not None and not isinstance(value, str):
            raise ConvscopeError(f"{key} must be a string, got {key}={value!r}")
    ints = {key: _int(key, value) for key, value in zip(
        INT_KEYS, (stride, padding, output_padding, dilation))}
    cfg = ExplainConfig(example=example, conv=conv, input=_plain(input), weight=_plain(weight),
                        bias=_plain(bias), picture=picture is not False, **ints)
    directory = _picture_dir(out_dir, picture)
    text = io.StringIO()
    outcome = run_explain(cfg, directory, text)
    outputs = {run.example.name: run.reference[-1] for run in outcome.runs}
    return ExplainResult(text.getvalue(), outcome.status == 0, outputs, outcome.picture)


def _picture_dir(out_dir: str | os.PathLike | None, picture: bool | None) -> Path | None:
    if picture is False:
        return None
    if out_dir is not None:
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    if picture:
        return Path(tempfile.mkdtemp(prefix="convscope-explain-"))
    return None


def _plain(value: Any) -> Any:
    """Tensors and arrays as nested lists: the form the script's config has, checked in one place.

    Tensors (Parameters, ones that require grad, on any device) go through the reference's own
    conversion.
    """
    if hasattr(value, "detach") or isinstance(value, (np.ndarray, np.generic)):
        return to_numpy(value).tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _int(key: str, value: Any) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise ConvscopeError(f"{key} must be an int, got {key}={value!r}")
