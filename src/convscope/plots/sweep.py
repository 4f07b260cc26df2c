"""summary.png at a sweep root: one bar chart per numeric column, one bar per job.

Each panel says in words what it measures and which way is better; every bar carries its value;
the dB floors (-200: nothing measurable) read "none" instead of a bar that dwarfs the rest; output
lengths are drawn as the difference from the shortest job's, so 31998 and 32001 look different.
"""

from __future__ import annotations

import math
from pathlib import Path

from convscope.quality.metrics import FLOOR_DB, db_text

# column: (what it measures, which way is better); columns not named here show their key
COLUMN_WORDS: dict[str, tuple[str, str]] = {
    "snr_db": ("SNR vs the reference (dB)", "higher is better"),
    "lsd_db": ("log-spectral distance (dB)", "lower is better"),
    "image_db": ("images above the input Nyquist (dB)", "lower is better"),
    "tone_db": ("stride tone (dB re output)", "lower is better"),
    "output_length": ("output length (samples)", "as expected is best"),
    "macs": ("multiply-accumulates", "lower is cheaper"),
    "lookahead_ms": ("lookahead (ms)", "lower is better for streaming"),
}


def summary_columns(rows: list[dict]) -> list[str]:
    """The numeric columns drawn, in first-seen order."""
    return [key for key in dict.fromkeys(k for row in rows for k in row)
            if key not in ("job", "output_rate", "files", "files_failed", "channel")
            and all(_number(row.get(key)) or row.get(key) is None for row in rows)
            and any(_number(row.get(key)) for row in rows)]


def column_label(key: str) -> str:
    words, better = COLUMN_WORDS.get(key, (key, ""))
    return f"{words}\n{better}" if better else words


def plot_summary(path: Path, rows: list[dict]):
    """One bar chart per numeric column (the metrics, and output length), one bar per job;
    returns the saved figure."""
    # matplotlib only when drawing: the sweep scan and index import this module without it
    from convscope.plots.figure import save_figure, subplots

    rows = [{**row, "output_length": int(row["output_shape"].split("x")[-1])}
            if row.get("output_shape") and "output_length" not in row else row for row in rows]
    numeric = summary_columns(rows)
    labels, common = job_labels(rows)
    panels = numeric or ["(no numeric results)"]
    fig, axes = subplots(len(panels), 1, figsize=(max(7, 1.3 * len(rows) + 4),
                                                      2.1 * len(panels) + 1.4),
                         squeeze=False, sharex=True)
    colors = ["C0" if row["status"] == "ok" else "C3" for row in rows]
    for ax, key in zip(axes[:, 0], panels):
        values = [row.get(key) if _number(row.get(key)) else math.nan for row in rows]
        texts = [_value_text(key, v) for v in values]
        if key.endswith("_db"):  # the floors are "none", not a -200 dB bar
            values = [math.nan if abs(v) >= FLOOR_DB else v for v in values]
        label = column_label(key)
        if key == "output_length" and any(not math.isnan(v) for v in values):
            base = min(v for v in values if not math.isnan(v))
            values = [v - base for v in values]
            label = f"output length - {base:g}\n(samples; bars: difference)"
        bars = ax.bar(range(len(rows)), [0 if math.isnan(v) else v for v in values],
                      color=colors)
        ax.bar_label(bars, texts, fontsize=7, padding=2)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.margins(y=0.25)  # room for the value labels inside the frame
        ax.set_ylabel(label, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(range(len(rows)), labels, fontsize=7)
    axes[-1, 0].set_xlabel("job (its overrides)")
    fig.suptitle(f"sweep: {len(rows)} jobs (red: not ok); each panel says which way is better"
                 + (f"\nevery job: {' '.join(common)}" if common else ""), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, 100)
    return fig


def job_labels(rows: list[dict]) -> tuple[list[str], list[str]]:
    """Each job's overrides that not every job shares (one per line), and those every job
    shares (said once, in the title, instead of under every bar)."""
    tokens = [str(row.get("overrides") or "").split() for row in rows]
    common = [t for t in tokens[0] if all(t in other for other in tokens)] if len(rows) > 1 \
        else []
    labels = ["\n".join(t for t in own if t not in common) or f"job {row['job']}"
              for own, row in zip(tokens, rows)]
    return labels, common


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_text(key: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    if key.endswith("_db"):
        return db_text(value).removesuffix(" dB")
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"
