"""metrics.json as the report pages show it: labels that say how to read each number.

The evaluate stage (convscope.pipeline.evaluate) writes either one flat dict or {"before": {...},
"after": {...}}; both become a table, one column per variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from convscope.quality.metrics import db_text
from convscope.report.html import number_text, table, text
from convscope.rundir import RunDir

CONTEXT_KEYS = ("channel", "reference")  # metrics.json keys that say what was compared

# The evaluate stage's keys (convscope.quality.evaluate), with what a reader needs to judge the number.
METRIC_LABELS: dict[str, tuple[str, str, str]] = {  # key: (label, short label, how to read it)
    "snr_db": ("SNR (dB)", "SNR dB", "higher is closer to the reference"),
    "lsd_db": ("log-spectral distance (dB)", "LSD dB", "0 is the reference's spectrum"),
    "image_db": ("images above input Nyquist (dB)", "images dB", "lower is better"),
    "tone_db": ("stride tone (dB)", "tone dB", "lower is better; relative to the output"),
}


def read_metrics(run_dir: Path) -> Optional[dict]:
    """metrics.json as a dict, or None; a broken file becomes {"error": ...} instead of a crash."""
    path = RunDir(run_dir).metrics
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"cannot read {RunDir.METRICS}: {exc}"}
    return metrics if isinstance(metrics, dict) else {"value": metrics}


def metrics_columns(metrics: dict) -> dict[str, dict]:
    """{"before": {...}, "after": {...}} keeps its columns; a flat dict is one column."""
    if metrics and all(isinstance(v, dict) for v in metrics.values()):
        return metrics
    return {"value": metrics}


def metric_label(key: str, short: bool = False) -> str:
    label, short_label, _ = METRIC_LABELS.get(key, (key, key, ""))
    return short_label if short else label


def metric_hint(key: str) -> str:
    return METRIC_LABELS.get(key, (key, key, ""))[2]


def metric_text(key: str, value) -> str:
    """A metric's cell: the dB floors read "none" / "exact" (metrics.json keeps -200 / 200, the
    numbers JSON can hold), everything else as number_text writes it."""
    if key.endswith("_db") and isinstance(value, (int, float)) and not isinstance(value, bool):
        words = db_text(float(value))
        if not words.endswith(" dB"):
            return words
    return number_text(value)


def metrics_table(metrics: dict) -> str:
    columns = metrics_columns(metrics)
    keys: list[str] = []
    for values in columns.values():
        keys += [k for k in values if k not in keys and k not in CONTEXT_KEYS]
    rows = [[text(metric_label(k)), f'<span class="note">{text(metric_hint(k))}'
             "</span>"] + [text(metric_text(k, c.get(k, "-"))) for c in columns.values()]
            for k in keys]
    return table(["metric", "", *columns], rows, numeric=range(2, len(columns) + 2),
                 css_class="metrics")


def metrics_context(metrics: dict) -> str:
    """'output channel 0 against the soxr_hq reference', from the keys that are not measurements."""
    first = next(iter(metrics_columns(metrics).values()), {})
    if "channel" in first and "reference" in first:
        return (f'<p class="note">Output channel {text(first["channel"])} against the '
                f'<code>{text(first["reference"])}</code> reference resampler at the output rate '
                "(listen to both above).</p>")
    return ""


def metric_cells(metrics: Optional[dict]) -> dict[str, object]:
    """Numeric metrics flattened to one column each: snr_db, or 'SNR dB (after)' for before/after."""
    if not metrics:
        return {}
    cells: dict[str, object] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            cells.update({f"{metric_label(inner, short=True)} ({key})": v for inner, v in value.items()
                          if _is_number(v) and inner not in CONTEXT_KEYS})
        elif _is_number(value):
            cells[key] = value
    for key in CONTEXT_KEYS:  # what was compared, not a measurement
        cells.pop(key, None)
    return cells


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
