"""The run's alignment check: the rows of the stack that ran, against T x hop_length (a feature
input) or L_in x up / down (a waveform), logged in one line and written to shapes.json."""

from __future__ import annotations

import logging
from fractions import Fraction

from torch import nn

from convscope.audio.features import FeatureInput
from convscope.stack.alignment import Alignment, check_alignment, expected_length
from convscope.stack.rows import LayerRow

log = logging.getLogger("convscope")


def run_alignment(model: nn.Module, rows: list[LayerRow], source, output_length: int,
                  factor: Fraction) -> Alignment:
    """`rows` are the leaf calls of `model` (`name`: the module's qualified name; `key`: the
    config key, where there is one), `source` the stack's input (a Segment, SegmentSpan or
    FeatureInput), `factor` the stack's exact rate factor."""
    length = source.shape[-1]
    if isinstance(source, FeatureInput):
        hop = source.settings.hop_length
        target = None if source.target is None else int(source.target.samples.shape[-1])
    else:
        hop, target = None, None
    expected, rule, note = expected_length(length, factor, hop)
    layers = [(row.key or row.name, model.get_submodule(row.name), row.type) for row in rows]
    alignment = check_alignment(expected, output_length, rule, layers, target, note)
    (log.info if alignment.ok else log.warning)("alignment: %s", alignment.summary())
    return alignment
