"""What a run's forward pass cost: MACs per second of audio (the stack's arithmetic, from its
rows) and the real-time factor this run measured (seconds of compute per second of audio)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

from convscope.stack.rows import LayerRow
from convscope.text import fmt_macs

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class RunCost:
    macs: int  # every row's MACs: one forward pass over the whole input
    audio_seconds: float  # the output's duration
    compute_seconds: float  # wall time of that pass, including the hooks that kept the outputs

    @property
    def macs_per_audio_second(self) -> float:
        return self.macs / self.audio_seconds

    @property
    def real_time_factor(self) -> float:
        """< 1: faster than real time on this machine."""
        return self.compute_seconds / self.audio_seconds

    def as_json(self) -> dict:
        return {"macs": self.macs, "audio_seconds": self.audio_seconds,
                "compute_seconds": self.compute_seconds,
                "macs_per_audio_second": self.macs_per_audio_second,
                "real_time_factor": self.real_time_factor}

    def summary(self) -> str:
        return (f"{fmt_macs(self.macs_per_audio_second)} per second of audio; this run: "
                f"{self.compute_seconds:.3f} s for {self.audio_seconds:.3f} s of audio (real-time "
                f"factor {self.real_time_factor:.3g})")


def run_cost(rows: list[LayerRow], output_samples: int, output_rate: Fraction,
             compute_seconds: float) -> RunCost:
    cost = RunCost(sum(row.macs for row in rows), float(output_samples / output_rate),
                   compute_seconds)
    log.info("cost: %s", cost.summary())
    return cost
