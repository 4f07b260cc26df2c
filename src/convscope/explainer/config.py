"""The explainer's typed request: configs/explain.yaml's schema, also built by convscope.explain.

No OmegaConf or Hydra here: the script validates its composed config into this dataclass
(convscope.explainer.explain.to_explain_config), the Python API fills it in directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional


@dataclass
class ExplainConfig:
    example: Optional[str] = None  # a catalogue name; null with no input: check every example
    conv: str = "transpose"  # custom input only: transpose (ConvTranspose1d) | conv1d
    # Custom input as (nested) lists; the shape rules and their errors live in custom.py.
    # List[Any] so that OmegaConf takes one level of channels; the numbers are checked there.
    input: Optional[List[Any]] = None  # (L) samples, or (C_in, L): one list per input channel
    weight: Optional[List[Any]] = None  # (k), (C_in, k), or torch's layout
    bias: Any = None  # a number, or one number per output channel; null: no bias
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    picture: bool = True  # write scatter.png into the run dir
    animate: bool = False  # also scatter.gif + index.html: the output built one input at a time
    explorer: bool = False  # write explorer.html (docs/explorer.html) into the run dir
    replace: bool = False  # a run dir that holds a run: refused, or with true emptied first
