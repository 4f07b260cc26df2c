"""The one matplotlib set-up every figure module shares: the Agg backend, chosen before
pyplot is imported, and an atomic save that always closes the figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from convscope.files import atomic_path  # noqa: E402


def save_figure(fig, path: Path, dpi: int) -> None:
    """Save atomically and always close the figure (pyplot keeps every open figure alive)."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
