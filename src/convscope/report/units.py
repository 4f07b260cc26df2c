"""Numbers as the figure captions say them: dB with "none" for nothing measured, Hz or kHz, and
exact rates read back from shapes.json."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

from convscope.quality.metrics import FLOOR_DB

NONE = "none"


def db_text(value: Optional[float]) -> str:
    """`-12.2 dB`; "none" for a missing value or the metrics' floor (nothing measurable)."""
    if value is None or not isinstance(value, (int, float)) or value <= -FLOOR_DB:
        return NONE
    return f"{value:.1f} dB"


def hz_text(hz: float) -> str:
    """8 kHz, 11.025 kHz, 86.1328 Hz."""
    hz = float(hz)
    return f"{hz / 1000:.6g} kHz" if hz >= 1000 else f"{hz:.6g} Hz"


def rate_of(section: dict, key: str = "sample_rate") -> Fraction:
    """A rate from shapes.json, exact when its fraction text is there."""
    fraction = section.get(f"{key}_fraction")
    return Fraction(fraction) if fraction else Fraction(section[key])


def final_metrics(metrics: Optional[dict]) -> dict:
    """The metrics of the stack the run wrote: a learn run's "after", else the flat dict."""
    if not metrics:
        return {}
    after = metrics.get("after")
    return after if isinstance(after, dict) else metrics
