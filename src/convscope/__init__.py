"""convscope: see what torch.nn.Conv1d and ConvTranspose1d do to real audio.

    import convscope
    d = convscope.describe(model, torch.randn(1, 80, 32), sample_rate=22050 / 256)
    print(d)                    # the table the CLI prints; d.rows, d.to_dict(), HTML in Jupyter
    convscope.estimate(model, (1, 80, 100_000), sample_rate=22050 / 256)  # before a big run
    convscope.formula(nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1), 16000)
    r = convscope.run(["model=sinc_x2", "data=speech"])   # the pipeline; renders inline
    convscope.explain("tconv1d_stride")                  # the explainer's walkthrough
    print(convscope.chunks(generator, mel, chunk=8, sample_rate="22050/256"))  # chunk clicks

Names are imported on first use, so `import convscope` loads neither torch's heavier corners,
matplotlib nor Hydra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it (imported on first use: PEP 562)
_EXPORTS = {
    "describe": "convscope.stack.describe",
    "Description": "convscope.stack.describe",
    "LayerRow": "convscope.stack.describe",
    "formula": "convscope.stack.describe",
    "estimate": "convscope.stack.estimate",
    "ModelEstimate": "convscope.stack.estimate",
    "run": "convscope.api",
    "RunReport": "convscope.api",
    "chunks": "convscope.chunk_debugger.api",
    "ChunksReport": "convscope.chunk_debugger.api",
    "explain": "convscope.explainer.api",
    "ExplainResult": "convscope.explainer.api",
    "ConvscopeError": "convscope.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time __getattr__ imports lazily
    from convscope.api import RunReport, run  # noqa: F401
    from convscope.chunk_debugger.api import ChunksReport, chunks  # noqa: F401
    from convscope.errors import ConvscopeError  # noqa: F401
    from convscope.explainer.api import ExplainResult, explain  # noqa: F401
    from convscope.stack.describe import Description, LayerRow, describe, formula  # noqa: F401
    from convscope.stack.estimate import ModelEstimate, estimate  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'convscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
