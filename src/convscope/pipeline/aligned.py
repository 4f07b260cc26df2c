"""The run's alignment check: the rows of the stack that ran, against T x hop_length (a feature
input) or L_in x up / down (a waveform), logged in one line and written to shapes.json."""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Optional

from torch import nn

from convscope.stack.alignment import Alignment, check_alignment, expected_length
from convscope.stack.rows import LayerRow

log = logging.getLogger("convscope")


def run_alignment(model: nn.Module, rows: list[LayerRow], input_length: int, factor: Fraction,
                  hop_length: Optional[int] = None,
                  target_samples: Optional[int] = None) -> Alignment:
    """`rows` are the leaf calls of `model` (their `name` is the module's qualified name, their
    `key` the config key where there is one); `factor` the stack's exact rate factor."""
    expected, rule, note = expected_length(input_length, factor, hop_length)
    layers = [(getattr(row, "key", "") or row.name, model.get_submodule(row.name), row.type)
              for row in rows if row.name is not None]
    got = rows[-1].output_shape[-1]
    alignment = check_alignment(expected, got, rule, layers, target_samples, note)
    (log.info if alignment.ok else log.warning)("alignment: %s", alignment.summary())
    return alignment
