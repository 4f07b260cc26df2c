"""Shared pieces of convscope's static HTML pages: escaping, relative links, tables, the page shell.

The pages are opened straight from disk (file://), often from a copied or zipped run dir, so they
carry their CSS inline and link only to relative paths. Every piece of text goes through `text()`
because file names, paths and Hydra overrides come from users.
"""

from __future__ import annotations

import html
import re
import struct
from pathlib import Path, PurePath
from typing import Optional, Sequence
from urllib.parse import quote

from convscope.rundir import RunDir
from convscope.text import shape_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


def text(value: object) -> str:
    """Any value as HTML text, quotes included, so it is safe in element bodies and attributes."""
    return html.escape(str(value), quote=True)


def href(relative: PurePath | str) -> str:
    """A relative path as an attribute-ready URL.

    Percent-quoting keeps '#', '?', ':' and spaces in file names from being read as URL syntax
    (a name like `a:b.png` would otherwise look like a scheme).
    """
    return text(quote(PurePath(relative).as_posix(), safe="/"))


def number_text(value: object) -> str:
    """Integers with thousands separators, floats to 2 decimals; anything else as it is."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def natural_key(name: str) -> list:
    """Sort key that puts layer2 before layer10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_files(directory: Path, suffixes: Sequence[str]) -> list[Path]:
    """The files in `directory` whose suffix (any case) is one of `suffixes`, hidden ones left
    out, in natural order; [] when there is no such directory."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.suffix.lower() in suffixes
                   and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def png_size(path: Path) -> Optional[tuple[int, int]]:
    """Width and height from a PNG header, so the page can reserve space before images load."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def image_tag(run_dir: Path, relative: PurePath, alt: str) -> str:
    size = png_size(run_dir / relative)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return f'<img src="{href(relative)}" alt="{text(alt)}"{dims}>'


def figure_html(root: Path, relative: PurePath, caption: str = "") -> str:
    """An image linked to itself, above what to notice in it (if anything) and its file name."""
    said = f"{text(caption)} " if caption else ""
    return (f'<figure><a href="{href(relative)}">'
            f"{image_tag(root, relative, caption or relative.name)}</a>"
            f'<figcaption>{said}<span class="file">{text(relative.name)}</span></figcaption>'
            "</figure>")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (),
          css_class: str = "") -> str:
    """A table of cells that are already HTML; columns listed in `numeric` align right."""
    def cell(tag: str, column: int, content: str) -> str:
        attr = ' class="num"' if column in numeric else ""
        return f"<{tag}{attr}>{content}</{tag}>"

    head = "".join(cell("th", i, text(name)) for i, name in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                     for row in rows)
    cls = f' class="{text(css_class)}"' if css_class else ""
    return (f'<div class="scroll"><table{cls}>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table></div>")


# --- cells of the index pages (a sweep's jobs, a corpus's files): one look for both --------------

def page_link(root: Path, run_dir: Path, label: str) -> str:
    """A link from an index at `root` to a run dir's page, or to the folder when it has none."""
    relative = PurePath(run_dir.relative_to(root))
    target = relative / RunDir.REPORT if RunDir(run_dir).report.is_file() else relative
    return f'<a href="{href(target)}">{text(label)}</a>'


def error_html(message: str) -> str:
    return f'<span class="mono">error:</span> {text(message) or "(no message)"}'


def shape_html(shape: Optional[Sequence[int]]) -> str:
    return f"<code>{text(shape_text(shape))}</code>" if shape else "-"


def hz_html(rate: object) -> str:
    return text(f"{rate:,} Hz" if isinstance(rate, (int, float)) else "-")


def metric_html(value: object) -> str:
    return text(number_text("-" if value is None else value))


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{text(anchor)}">\n<h2>{text(title)}</h2>\n{body}\n</section>'


def page(title: str, heading: str, subtitle: str, nav: Sequence[tuple[str, str]],
         sections: Sequence[str]) -> str:
    """The whole document; `subtitle` is HTML, everything else plain text.

    `nav` holds (href, label): '#anchor' for a section, or a relative URL already quoted.
    """
    links = "".join(f'<a href="{text(target)}">{text(label)}</a>' for target, label in nav)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="convscope">
<title>{text(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{text(heading)}</h1>
<p class="subtitle">{subtitle}</p>
<nav>{links}</nav>
</header>
<main>
{chr(10).join(sections)}
</main>
<footer>Written by convscope. All links are relative: the folder can be moved or zipped.</footer>
</body>
</html>
"""


# System fonts only: the page must look the same offline as online.
CSS = """
:root { --fg:#1d2430; --muted:#5b6675; --bg:#f6f7f9; --card:#fff; --line:#dde1e7;
        --accent:#2f6fde; --code:#f0f2f5; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#e4e7ec; --muted:#9aa4b2; --bg:#14171c; --card:#1c2027; --line:#2d333d;
          --accent:#7aa7ff; --code:#242a33; }
}
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header, main, footer { max-width:1160px; margin:0 auto; padding:0 24px; }
header { padding-top:28px; }
h1 { font-size:26px; margin:0 0 4px; letter-spacing:-0.01em; word-break:break-all; }
h2 { font-size:18px; margin:0 0 12px; }
h3 { font-size:15px; margin:18px 0 8px; }
.subtitle { color:var(--muted); margin:0 0 14px; }
nav { display:flex; flex-wrap:wrap; gap:6px 16px; padding-bottom:8px; }
nav a, a { color:var(--accent); text-decoration:none; }
a:hover { text-decoration:underline; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
          padding:18px 22px; margin:16px 0; }
code, pre, .mono { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;
                   font-size:13px; }
code { background:var(--code); padding:1px 5px; border-radius:4px; overflow-wrap:anywhere; }
pre { background:var(--code); padding:10px 12px; border-radius:6px; margin:0 0 10px;
      white-space:pre-wrap; overflow-wrap:anywhere; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; margin:0; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; overflow-wrap:anywhere; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
table.metrics { width:auto; min-width:50%; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:13px; white-space:nowrap; }
td.num, th.num { text-align:right; }
td code { white-space:nowrap; overflow-wrap:normal; }  /* a shape reads as one token */
tbody tr:nth-child(even) { background:color-mix(in srgb, var(--code) 55%, transparent); }
ul.formulas { list-style:none; padding:0; margin:12px 0 0; }
ul.formulas li { margin:4px 0; }
.players { display:grid; grid-template-columns:repeat(auto-fill,minmax(330px,1fr)); gap:12px; }
.player { border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.player .name { font-weight:600; }
.player .meta { color:var(--muted); font-size:13px; margin-bottom:6px; overflow-wrap:anywhere; }
audio { width:100%; height:36px; }
figure { margin:0 0 22px; }
figure img { display:block; max-width:100%; height:auto; border:1px solid var(--line);
             border-radius:6px; background:#fff; }
figcaption { font-size:14px; margin-top:6px; max-width:80ch; overflow-wrap:anywhere; }
figcaption .file { color:var(--muted); font-size:12px; white-space:nowrap;
                   font-family:ui-monospace,Menlo,Consolas,monospace; }
.note { color:var(--muted); font-size:13px; margin:8px 0 0; }
.tag { display:inline-block; background:var(--code); border-radius:4px; padding:0 6px; margin:1px 2px;
       font-size:12px; }
footer { color:var(--muted); font-size:12px; padding-bottom:28px; }
"""
