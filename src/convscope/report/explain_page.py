"""index.html in an explainer run dir (animate=true): the animation, the picture, the walkthrough.

A GIF plays in any browser but says nothing about itself; the page puts it beside the static
picture and the printed steps, each with a caption the explainer computed for this example.
Like the run page it is rendered from what is on disk: a missing picture is simply left out.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from convscope.files import write_text
from convscope.report.html import href, image_tag, page, section, text
from convscope.rundir import RunDir


def write_explain_page(run_dir: Path, heading: str, summary: str, walkthrough: str,
                       captions: dict[str, str], explorer_link: str | None = None) -> Path:
    """`captions`: file name in the run dir (RunDir.ANIMATION, RunDir.SCATTER) -> one sentence;
    `explorer_link`: explorer.html in the run dir, opened on this example's numbers."""
    run_dir = Path(run_dir)
    parts = [(anchor, title, _figure(run_dir, name, captions[name]))
             for anchor, title, name in (("animation", "Animation", RunDir.ANIMATION),
                                         ("picture", "Picture", RunDir.SCATTER))
             if name in captions and (run_dir / name).is_file()]
    parts.append(("steps", "Step by step", f"<pre>{text(walkthrough)}</pre>"))
    if explorer_link is not None:
        # relative, so the page and its explorer move together; the fragment carries the numbers
        target = RunDir.EXPLORER + explorer_link.partition("#")[1] + explorer_link.partition("#")[2]
        parts.append(("explorer", "Explore it live",
                      f'<p><a href="{text(target)}">explorer.html</a>: change the input, kernel, '
                      "stride, padding, output_padding and dilation and watch the output.</p>"))
    html = page(title=f"convscope explain: {heading}", heading=heading, subtitle=text(summary),
                nav=[(f"#{anchor}", title) for anchor, title, _ in parts],
                sections=[section(anchor, title, body) for anchor, title, body in parts])
    path = RunDir(run_dir).report
    write_text(path, html)
    return path


def _figure(run_dir: Path, name: str, caption: str) -> str:
    relative = PurePath(name)
    return (f'<figure><a href="{href(relative)}">{image_tag(run_dir, relative, caption)}</a>'
            f"<figcaption>{text(caption)}</figcaption></figure>")
