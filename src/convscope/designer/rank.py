"""Order candidates by the user's keys (rank_by), each lower-first unless written '-key'.

Keys compare at a useful precision, so that a later key can decide: dB in whole dB, ms to
0.1 ms; MACs and layer counts exactly. An unmeasured tone sorts last.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from convscope.designer.candidates import Candidate
from convscope.designer.score import Scores

MEASURED = ("tone_db",)  # keys that cost a forward pass: measured for the leaders only


def key_value(name: str, candidate: Candidate, scores: Scores) -> float:
    if name == "macs":
        return scores.macs
    if name == "layers":
        return len(candidate.layers)
    if name in ("rf_ms", "lookahead_ms"):
        return round(getattr(scores, name), 1)
    value = getattr(scores, name)
    return math.inf if value is None else round(value)


def sort_key(rank_by: Sequence[str]) -> Callable[[tuple[Candidate, Scores]], tuple]:
    def key(item: tuple[Candidate, Scores]) -> tuple:
        values = []
        for spec in rank_by:
            value = key_value(spec.lstrip("-"), *item)
            values.append(-value if spec.startswith("-") and math.isfinite(value) else value)
        return tuple(values)
    return key


def cheap_keys(rank_by: Sequence[str]) -> list[str]:
    """rank_by without the measured keys (macs when nothing is left)."""
    return [k for k in rank_by if k.lstrip("-") not in MEASURED] or ["macs"]
