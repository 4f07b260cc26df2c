"""The stack designer (scripts/design.py): exact ConvTranspose1d upsamplers for a ratio, scored.

`design(cfg, out_dir)` enumerates the stride orders and kernels that give exactly L x ratio
outputs for every input length (designer.candidates), scores them (designer.score), ranks them
(designer.rank) and writes candidates.csv and model/best.yaml, top2.yaml, ... (designer.output).
"""

from convscope.designer.design import DesignResult, design

__all__ = ["DesignResult", "design"]
