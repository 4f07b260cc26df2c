"""summary.png at a sweep root: one bar chart per numeric column, one bar per job."""

from __future__ import annotations

from pathlib import Path


def plot_summary(path: Path, rows: list[dict]) -> None:
    """One bar chart per numeric column (the metrics, and output length), one bar per job."""
    # matplotlib only when drawing: the sweep scan and index import this module without it
    from convscope.plots.figure import save_figure, subplots

    rows = [{**row, "output_length": int(row["output_shape"].split("x")[-1])}
            if row.get("output_shape") and "output_length" not in row else row for row in rows]
    numeric = [key for key in dict.fromkeys(k for row in rows for k in row)
               if key not in ("job", "output_rate", "files", "files_failed", "channel")
               and all(isinstance(row.get(key), (int, float)) or row.get(key) is None
                       for row in rows)
               and any(isinstance(row.get(key), (int, float)) for row in rows)]
    labels = [row["overrides"] or f"job {row['job']}" for row in rows]
    panels = numeric or ["(no numeric results)"]
    fig, axes = subplots(len(panels), 1, figsize=(max(6, 1.2 * len(rows) + 3),
                                                      1.9 * len(panels) + 1.2),
                             squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], panels):
        values = [row.get(key) if isinstance(row.get(key), (int, float)) else float("nan")
                  for row in rows]
        ax.bar(range(len(rows)), values, color=["C0" if row["status"] == "ok" else "C3"
                                                for row in rows])
        ax.set_ylabel(key, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=7)
    fig.suptitle(f"sweep: {len(rows)} jobs (red: not ok)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, 100)
