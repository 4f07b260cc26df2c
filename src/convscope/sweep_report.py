"""index.html at a sweep root: one row per job, linking each job's own page.

Jobs are found on disk rather than collected from Hydra's job returns, so the page is right for any
launcher (joblib and submitit run jobs in other processes) and can be rebuilt for an old sweep.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Optional

from convscope.atomic import write_text
from convscope.html_page import (IMAGE_SUFFIXES, href, image_tag, natural_key, number_text, page,
                                 section, shape_text, table, text)
from convscope.report import REPORT_NAME
from convscope.report_metrics import CONTEXT_KEYS, metric_label, read_metrics

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class SweepJob:
    """What the index shows of one job: where it is, what changed, what came out."""

    directory: Path
    number: Optional[int]
    overrides: tuple[str, ...]
    shapes: Optional[dict]  # None: the job failed or is unfinished (shapes.json is written last)
    metrics: Optional[dict]


def find_jobs(sweep_dir: Path) -> list[SweepJob]:
    """Every job dir under the sweep: the ones Hydra recorded (.hydra/) or that wrote shapes.json."""
    sweep_dir = Path(sweep_dir)
    marked = {p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")}
    marked |= {p.parent for p in sweep_dir.glob("**/shapes.json")}
    marked.discard(sweep_dir)
    jobs = [read_job(d) for d in marked]
    return sorted(jobs, key=lambda j: (j.number is None, j.number or 0, natural_key(str(j.directory))))


def read_job(directory: Path) -> SweepJob:
    import yaml

    hydra_dir = directory / ".hydra"
    overrides: list = []
    number: Optional[int] = int(directory.name) if directory.name.isdigit() else None
    if (hydra_dir / "overrides.yaml").is_file():
        overrides = yaml.safe_load((hydra_dir / "overrides.yaml").read_text(encoding="utf-8")) or []
    if (hydra_dir / "hydra.yaml").is_file():
        recorded = yaml.safe_load((hydra_dir / "hydra.yaml").read_text(encoding="utf-8")) or {}
        num = recorded.get("hydra", {}).get("job", {}).get("num")
        number = num if isinstance(num, int) else number
    shapes_path = directory / "shapes.json"
    shapes = json.loads(shapes_path.read_text(encoding="utf-8")) if shapes_path.is_file() else None
    return SweepJob(directory, number, tuple(str(o) for o in overrides), shapes,
                    read_metrics(directory))


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


def render_sweep_index(sweep_dir: Path, jobs: list[SweepJob]) -> str:
    sweep_dir = Path(sweep_dir)
    metric_names: list[str] = []
    for job in jobs:
        metric_names += [m for m in metric_cells(job.metrics) if m not in metric_names]
    header = ["job", "overrides", "output shape", "output rate", *(metric_label(m, short=True) for m in metric_names)]
    rows = [_job_row(sweep_dir, job, metric_names) for job in jobs]
    finished = sum(job.shapes is not None for job in jobs)
    body = table(header, rows, numeric=[0, 3, *range(4, 4 + len(metric_names))], css_class="sweep") \
        if jobs else '<p class="note">No job dirs found under this sweep.</p>'
    subtitle = f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}, {finished} finished"
    sections = [("jobs", "Jobs", body)]
    extras = root_files_html(sweep_dir)
    if extras:
        sections.append(("summary", "Sweep summary", extras))
    return page(title=f"convscope sweep · {sweep_dir.name}",
                heading=f"convscope sweep · {sweep_dir.name}", subtitle=text(subtitle),
                nav=[(f"#{anchor}", title) for anchor, title, _ in sections],
                sections=[section(*parts) for parts in sections])


def root_files_html(sweep_dir: Path) -> str:
    """What other sweep-level stages left at the root (summary plots, CSV, Hydra's multirun.yaml)."""
    files = sorted((p for p in sweep_dir.iterdir() if p.is_file() and p.name != REPORT_NAME
                    and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    figures = "".join(f'<figure><a href="{href(p.name)}">{image_tag(sweep_dir, PurePath(p.name), p.name)}'
                      f"</a><figcaption>{text(p.name)}</figcaption></figure>" for p in images)
    others = [p for p in files if p not in images]
    links = "<ul>" + "".join(f'<li><a href="{href(p.name)}">{text(p.name)}</a></li>'
                             for p in others) + "</ul>" if others else ""
    return figures + links


def _job_row(sweep_dir: Path, job: SweepJob, metric_names: list[str]) -> list[str]:
    relative = job.directory.relative_to(sweep_dir)
    label = text(job.number if job.number is not None else relative.as_posix())
    target = relative / REPORT_NAME if (job.directory / REPORT_NAME).is_file() else relative
    link = f'<a href="{href(target)}">{label}</a>'
    overrides = " ".join(f'<span class="tag mono">{text(o)}</span>' for o in job.overrides) or "-"
    if job.shapes is None:
        missing = '<span class="note">no shapes.json: failed or unfinished</span>'
        return [link, overrides, missing, "-", *["-"] * len(metric_names)]
    output = job.shapes["output"]
    metrics = metric_cells(job.metrics)
    return [link, overrides, f"<code>{text(shape_text(output['shape']))}</code>",
            text(f"{output['sample_rate']:,} Hz"),
            *[text(number_text(metrics.get(name, "-"))) for name in metric_names]]


def write_sweep_index(sweep_dir: Path) -> Path:
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / REPORT_NAME
    write_text(path, render_sweep_index(sweep_dir, find_jobs(sweep_dir)))
    log.info("sweep index: %s", path)
    return path
