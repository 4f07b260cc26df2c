"""index.html at a sweep root: one row per job, linking each job's own page.

Jobs are found on disk rather than collected from Hydra's job returns, so the page is right for any
launcher (joblib and submitit run jobs in other processes) and can be rebuilt for an old sweep. The
jobs are the ones convscope.sweep.summary.scan_sweep finds, the same records summary.csv is made of.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePath
from typing import Optional

from convscope.files import write_text
from convscope.report.html import (
    IMAGE_SUFFIXES,
    error_html,
    figure_html,
    href,
    hz_html,
    metric_html,
    natural_key,
    page,
    page_link,
    section,
    shape_html,
    table,
    text,
)
from convscope.report.metrics import metric_cells, metric_label
from convscope.rundir import RunDir
from convscope.sweep.summary import SweepJob, scan_sweep

log = logging.getLogger("convscope")


def render_sweep_index(sweep_dir: Path, jobs: list[SweepJob]) -> str:
    sweep_dir = Path(sweep_dir)
    metric_names: list[str] = []
    for job in jobs:
        metric_names += [m for m in metric_cells(job.metrics) if m not in metric_names]
    header = ["job", "overrides", "status", "output shape", "output rate",
              *(metric_label(m, short=True) for m in metric_names)]
    rows = [_job_row(sweep_dir, job, metric_names) for job in jobs]
    finished = sum(job.status == "ok" for job in jobs)
    body = table(header, rows, numeric=[0, 4, *range(5, 5 + len(metric_names))], css_class="sweep") \
        if jobs else '<p class="note">No job dirs found under this sweep.</p>'
    subtitle = f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}, {finished} ok"
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
    files = sorted((p for p in sweep_dir.iterdir() if p.is_file() and p.name != RunDir.REPORT
                    and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    figures = "".join(figure_html(sweep_dir, PurePath(p.name)) for p in images)
    others = [p for p in files if p not in images]
    links = "<ul>" + "".join(f'<li><a href="{href(p.name)}">{text(p.name)}</a></li>'
                             for p in others) + "</ul>" if others else ""
    return figures + links


def _job_row(sweep_dir: Path, job: SweepJob, metric_names: list[str]) -> list[str]:
    relative = job.directory.relative_to(sweep_dir)
    link = page_link(sweep_dir, job.directory,
                     str(job.number if job.number is not None else relative.as_posix()))
    overrides = " ".join(f'<span class="tag mono">{text(o)}</span>' for o in job.overrides) or "-"
    metrics = metric_cells(job.metrics)
    metric_texts = [metric_html(metrics.get(name)) for name in metric_names]
    if job.shapes is not None:
        output = job.shapes["output"]
        return [link, overrides, text(job.status), shape_html(output["shape"]),
                hz_html(output.get("sample_rate")), *metric_texts]
    if job.corpus is not None:  # one output per file: the job's own index and summary list them
        files = len(job.corpus)
        csv_link = (f'<a href="{href(relative / RunDir.SUMMARY_CSV)}">{RunDir.SUMMARY_CSV}</a>'
                    if RunDir(job.directory).summary_csv.is_file() else RunDir.SUMMARY_JSON)
        return [link, overrides, text(job.status),
                f'{text(files)} file{"s" if files != 1 else ""}: {csv_link}', "-", *metric_texts]
    if job.error is not None:
        status = error_html(job.error)
    else:
        status = '<span class="note">unfinished: no shapes.json (failed or still running)</span>'
    return [link, overrides, status, "-", "-", *metric_texts]


def write_sweep_index(sweep_dir: Path, jobs: Optional[list[SweepJob]] = None) -> Path:
    """index.html at the sweep root; `jobs` from scan_sweep (scanned here when not given)."""
    sweep_dir = Path(sweep_dir)
    path = RunDir(sweep_dir).report
    jobs = scan_sweep(sweep_dir) if jobs is None else jobs
    write_text(path, render_sweep_index(sweep_dir, jobs))
    log.info("sweep index: %s", path)
    return path
