"""index.html at a corpus job's root: one row per file, linking the page in that file's subfolder.

Rendered from what is on disk: summary.json (the rows of summary.csv, in its order: sorted by
path) and each file's own metrics.json, so it can be rebuilt for an old corpus run. A file that
failed shows its error; its subfolder (if any) is still linked, since it may hold the log. The
cells look like the sweep index's (shared helpers in report/html.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePath
from typing import Optional

from convscope.files import write_text
from convscope.report.html import (
    error_html,
    href,
    hz_html,
    metric_html,
    page,
    page_link,
    section,
    shape_html,
    table,
    text,
)
from convscope.report.metrics import metric_cells, metric_label, read_metrics
from convscope.rundir import RunDir

log = logging.getLogger("convscope")


def read_summary(run_dir: Path) -> list[dict]:
    """summary.json's rows (one per file of this shard); [] when it is missing or unreadable."""
    try:
        rows = json.loads(RunDir(run_dir).summary_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def render_corpus_index(run_dir: Path, rows: list[dict],
                        figures_files: Optional[int] = None) -> str:
    """`figures_files`: only the first this many files have figures and a page (None: all)."""
    run_dir = Path(run_dir)
    metrics = [metric_cells(read_metrics(run_dir / row["subdir"]) if row.get("subdir") else None)
               for row in rows]
    metric_names: list[str] = []
    for cells in metrics:
        metric_names += [name for name in cells if name not in metric_names]
    header = ["file", "status", "duration s", "input shape", "output shape", "output rate",
              "wall s", *(metric_label(name, short=True) for name in metric_names)]
    body = [_file_row(run_dir, row, cells, metric_names) for row, cells in zip(rows, metrics)]
    ok = sum(row.get("status") == "ok" for row in rows)
    files = (table(header, body, numeric=[2, 5, 6, *range(7, 7 + len(metric_names))],
                   css_class="corpus") if rows
             else '<p class="note">No files in summary.json.</p>')
    links = [name for name in (RunDir.SUMMARY_CSV, RunDir.SUMMARY_JSON, RunDir.LOG,
                               RunDir.WEIGHTS)
             if (run_dir / name).is_file()]
    summary = "<ul>" + "".join(f'<li><a href="{href(name)}">{text(name)}</a></li>'
                               for name in links) + "</ul>" if links else ""
    if figures_files is not None and rows:
        first = "the first file" if figures_files == 1 else f"first {figures_files} files"
        files = (f'<p class="note">figures: {first} only '
                 f'(corpus.figures_files={figures_files}); the others link to their shapes.json '
                 "and output audio</p>\n" + files)
    sections = [("files", "Files", files)]
    if summary:
        sections.append(("summary", "Summary files", summary))
    subtitle = (f"{len(rows)} file{'s' if len(rows) != 1 else ''}, {ok} ok, "
                f"{len(rows) - ok} failed")
    return page(title=f"convscope corpus · {run_dir.name}",
                heading=f"convscope corpus · {run_dir.name}", subtitle=text(subtitle),
                nav=[(f"#{anchor}", title) for anchor, title, _ in sections],
                sections=[section(*parts) for parts in sections])


def _file_row(run_dir: Path, row: dict, metrics: dict, metric_names: list[str]) -> list[str]:
    subdir = run_dir / row["subdir"] if row.get("subdir") else None
    name = str(row.get("file", "?"))
    link = _file_link(run_dir, subdir, name) if subdir is not None and subdir.is_dir() \
        else text(name)
    status = text(row.get("status", "-")) if row.get("status") == "ok" \
        else error_html(str(row.get("error", "")))
    duration = row.get("duration")
    return [link, status, text("-" if duration is None else f"{duration:g}"),
            shape_html(row.get("input_shape")), shape_html(row.get("output_shape")),
            hz_html(row.get("output_rate")), metric_html(row.get("seconds")),
            *(metric_html(metrics.get(m)) for m in metric_names)]


def _file_link(run_dir: Path, subdir: Path, name: str) -> str:
    """The file's page; a file without one (past corpus.figures_files): its shapes.json and
    its first output WAV, where they exist; else its folder."""
    files = RunDir(subdir)
    if files.report.is_file() or not files.shapes.is_file():
        return page_link(run_dir, subdir, name)
    links = [f'<a href="{href(PurePath(subdir.relative_to(run_dir)) / files.SHAPES)}">'
             f"{text(name)}</a>"]
    wavs = sorted(files.audio_dir.glob("layer*_ch0.wav")) if files.audio_dir.is_dir() else []
    if wavs:
        links.append(f'<a href="{href(PurePath(wavs[-1].relative_to(run_dir)))}">audio</a>')
    return " · ".join(links)


def write_corpus_index(run_dir: Path, figures_files: Optional[int] = None) -> Path:
    """index.html at the corpus job's root, from its summary.json; `figures_files`: only the
    first this many files have figures and a page (None: every file has)."""
    run_dir = Path(run_dir)
    path = RunDir(run_dir).corpus_index
    write_text(path, render_corpus_index(run_dir, read_summary(run_dir), figures_files))
    log.info("corpus index: %s", path)
    return path
