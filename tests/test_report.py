"""The run report (index.html) and the sweep index: escaping, links, the layer table, and a browser.

One reference run is shared by every test (module fixture). Its input file lives under a name with a
<script> in it, and extra files with URL-hostile names are added, so the same run checks escaping,
URL quoting and what a real browser makes of the page.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from hydra import compose, initialize_config_dir

from convscope.config.convert import register_configs, to_run_config
from convscope.config.schema import RunConfig
from convscope.pipeline.results import RunResult
from convscope.pipeline.single import run
from convscope.report.page import RunCommand, refresh_report
from convscope.sweep.index import write_sweep_index
from convscope.text import shape_text
from tests.browser import browser_or_skip, headless_chromium
from tests.helpers import REPO, run_script

# If a page ever runs this, window.pwned is set and the title changes: the browser test checks both.
SCRIPT_PATH = "a<script>window.pwned=1;document.title='pwned'</script>.wav"
# No '/' needed to inject markup; this one would fire onerror if it reached the DOM as a tag.
HOSTILE_WAV = '<img src=x onerror="window.pwned=2">.wav'
HOSTILE_PLOT = "odd name #1?&.png"  # '#' and '?' break an unquoted relative URL
HOSTILE_OVERRIDE = "+note='<script>window.pwned=3</script>'"


@dataclass(frozen=True)
class ReferenceRun:
    result: RunResult
    html: str
    data_path: Path

    @property
    def dir(self) -> Path:
        return self.result.out_dir


def compose_run_config(*overrides: str) -> RunConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return to_run_config(compose(config_name="run", overrides=list(overrides)))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> ReferenceRun:
    """The reference example on data/sample.wav copied to a <script> name, plus hostile files."""
    root = tmp_path_factory.mktemp("report")
    data_path = root / SCRIPT_PATH  # the '/' in </script> makes a directory: fine for a path
    data_path.parent.mkdir(parents=True)
    shutil.copy(REPO / "data" / "sample.wav", data_path)
    cfg = compose_run_config("plots.dpi=60")  # small figures: the test is about the page
    cfg.data.path = str(data_path)
    command = RunCommand(argv=("scripts/run.py", HOSTILE_OVERRIDE), overrides=(HOSTILE_OVERRIDE,),
                         cwd=str(root))
    result = run(cfg, root / "run", command=command)
    # Files a later stage (or a user) adds: the refreshed page must link them safely.
    shutil.copy(result.out_dir / "audio" / "input.wav", result.out_dir / "audio" / HOSTILE_WAV)
    shutil.copy(result.out_dir / "plots" / "spectrogram.png", result.out_dir / "plots" / HOSTILE_PLOT)
    page = refresh_report(result.out_dir, command)
    return ReferenceRun(result, page.read_text(encoding="utf-8"), data_path)


class LinkCollector(HTMLParser):
    """Every href/src in a page, and the text of each row of table.layers."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []
        self.layer_rows: list[list[str]] = []
        self._in_layers = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.links += [attrs[k] for k in ("href", "src") if attrs.get(k)]
        if tag == "table":
            self._in_layers = "layers" in (attrs.get("class") or "")
        elif tag == "tr" and self._in_layers:
            self.layer_rows.append([])
        elif tag == "td" and self._in_layers:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_layers = False
        elif tag == "td" and self._cell is not None:
            self.layer_rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(html_text: str) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(html_text)
    return collector


def expected_layer_cells(result: RunResult) -> list[list[str]]:
    return [[str(r.index), r.type, shape_text(r.weight_shape), shape_text(r.bias_shape),
             f"{r.params:,}", f"{r.macs:,}", shape_text(r.input_shape), shape_text(r.output_shape),
             str(r.receptive_field), str(r.lookahead)]
            for r in result.rows]


# --- the HTML itself -----------------------------------------------------------------------------

def test_script_in_a_file_name_is_text(reference_run):
    page = reference_run.html
    assert "<script" not in page.lower()  # the page has no scripts of its own either
    assert "window.pwned=1;document.title=&#x27;pwned&#x27;&lt;/script&gt;.wav" in page
    assert "&lt;img src=x onerror=&quot;window.pwned=2&quot;&gt;.wav" in page
    assert 'onerror="' not in page


def test_overrides_are_escaped(reference_run):
    command = RunCommand(argv=("scripts/run.py", HOSTILE_OVERRIDE))
    assert escape(command.command_line()) in reference_run.html  # the shell-quoted command line
    escaped = "+note=&#x27;&lt;script&gt;window.pwned=3&lt;/script&gt;&#x27;"
    assert f"<code>{escaped}</code>" in reference_run.html  # the overrides list


def test_links_are_relative_and_exist(reference_run):
    links = parse(reference_run.html).links
    files = [link for link in links if not link.startswith("#")]
    assert files, "the page links no files"
    for link in files:
        url = urlparse(link)
        assert not url.scheme and not url.netloc and not link.startswith("/"), link
        assert (reference_run.dir / unquote(url.path)).exists(), link
    quoted = [link for link in files if "odd%20name%20%231%3F%26.png" in link]
    assert quoted, "a '#'/'?' file name must be percent-quoted"


def test_page_shows_every_plot_and_wav(reference_run):
    links = {unquote(link) for link in parse(reference_run.html).links}
    for path in [*(reference_run.dir / "plots").glob("*.png"), *(reference_run.dir / "audio").glob("*.wav")]:
        assert path.relative_to(reference_run.dir).as_posix() in links, path.name
    assert "audio/reference.wav" in links  # the evaluate stage ran: the rate changes


def test_every_figure_has_its_computed_caption(reference_run):
    from convscope.report.captions import figure_caption

    shapes = reference_run.result.shapes
    metrics = json.loads((reference_run.dir / "metrics.json").read_text())
    for path in (reference_run.dir / "plots").glob("*.png"):
        caption = figure_caption(path.name, shapes, metrics)
        if path.name != HOSTILE_PLOT:  # a user's file: no caption, just its (escaped) name
            assert caption, path.name
        assert (f"<figcaption>{escape(caption) + ' ' if caption else ''}"
                f'<span class="file">{escape(path.name)}</span></figcaption>') in reference_run.html
    conv = shapes["layers"][1]["conv"]
    assert (f"layer 1 (ConvTranspose1d k{conv['kernel_size']} s{conv['stride']} "
            f"p{conv['padding']}") in reference_run.html


def test_layer_table_holds_the_run_shapes(reference_run):
    rows = [row for row in parse(reference_run.html).layer_rows if row]
    assert rows == expected_layer_cells(reference_run.result)
    for row in reference_run.result.rows:
        assert row.formula in reference_run.html
    assert rows[-1][-3:] == ["[1,3,32000]", "5", "2"]  # the design's reference example


def test_metrics_table_when_metrics_json_exists(reference_run):
    metrics = json.loads((reference_run.dir / "metrics.json").read_text())
    assert "SNR (dB)" in reference_run.html
    assert f"{metrics['snr_db']:,.2f}" in reference_run.html


def test_report_false_writes_no_page(tmp_path):
    cfg = compose_run_config("report=false", "plots.enabled=false", "audio.enabled=false",
                             "evaluate.enabled=false", "data.end=2.1")
    assert cfg.report is False
    run(cfg, tmp_path / "run", base_dir=REPO)
    assert (tmp_path / "run" / "shapes.json").exists()
    assert not (tmp_path / "run" / "index.html").exists()


# --- the sweep index -----------------------------------------------------------------------------

def fake_job(sweep: Path, number: int, shapes: dict | None, overrides: list[str],
             metrics: dict | None = None) -> Path:
    job = sweep / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {json.dumps(o)}\n" for o in overrides))
    if shapes is not None:
        (job / "shapes.json").write_text(json.dumps(shapes))
        (job / "index.html").write_text("<!DOCTYPE html>")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    return job


def test_sweep_index_lists_jobs(tmp_path, reference_run):
    shapes = reference_run.result.shapes
    fake_job(tmp_path, 0, shapes, ["model.layers.1.stride=2"],
             {"before": {"snr_db": 1.5}, "after": {"snr_db": 9.25}})
    fake_job(tmp_path, 1, None, ["x=<b>bold</b>"])  # failed: no shapes.json
    page_text = write_sweep_index(tmp_path).read_text()
    links = [link for link in parse(page_text).links if not link.startswith("#")]
    assert links == ["0/index.html", "1"]
    assert "x=&lt;b&gt;bold&lt;/b&gt;" in page_text and "<b>" not in page_text
    assert "SNR dB (after)" in page_text and "9.25" in page_text
    assert "no shapes.json" in page_text


def test_multirun_writes_sweep_index(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_script("run.py", "-m", "model.layers.1.stride=2,4", "model.layers.1.output_padding=1",
                      "plots.enabled=false", "evaluate.enabled=false", "data.end=2.2",
                      f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    page_text = (sweep / "index.html").read_text()
    assert [link for link in parse(page_text).links if not link.startswith("#")][:2] == \
        ["0/index.html", "1/index.html"]
    assert "[1,3,6400]" in page_text and "[1,3,12798]" in page_text
    # one callback writes the summary, then the index that links it
    assert 'href="summary.csv"' in page_text and 'src="summary.png"' in page_text
    job_page = (sweep / "1" / "index.html").read_text()
    assert "model.layers.1.stride=4" in job_page and 'href="../index.html"' in job_page


# --- a real browser ------------------------------------------------------------------------------

AUDIO_METADATA = """
const audio = arguments[0], done = arguments[arguments.length - 1];
const report = () => done({duration: isFinite(audio.duration) ? audio.duration : -1,
                           error: audio.error ? audio.error.code : null});
if (audio.readyState >= 1 || audio.error) { report(); return; }
audio.addEventListener('loadedmetadata', report);
audio.addEventListener('error', report);
"""


def test_page_in_a_browser(reference_run, tmp_path):
    # Checked in the test body (not a fixture) so that in CI a missing browser is a FAILED test.
    chromium, chromedriver = browser_or_skip()
    with headless_chromium(chromium, chromedriver, tmp_path / "chromium-profile") as browser:
        check_page_in_browser(browser, reference_run)


def check_page_in_browser(browser, reference_run: ReferenceRun) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    title = f"convscope · {reference_run.dir.name}"
    browser.get((reference_run.dir / "index.html").as_uri())
    assert browser.title == title
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == len(list((reference_run.dir / "plots").glob("*.png")))
    WebDriverWait(browser, 20).until(
        lambda d: all(d.execute_script("return arguments[0].complete", img) for img in images))
    for img in images:
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 0, \
            img.get_attribute("src")

    players = browser.find_elements(By.TAG_NAME, "audio")
    assert len(players) == len(list((reference_run.dir / "audio").glob("*.wav")))
    for audio in players:
        src = audio.get_attribute("src")  # the resolved file:// URL
        assert Path(unquote(urlparse(src).path)).is_file(), src
        assert audio.get_attribute("preload") == "metadata"
        state = browser.execute_async_script(AUDIO_METADATA, audio)
        assert state["error"] is None and state["duration"] > 0, (src, state)

    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")]
             for row in browser.find_elements(By.CSS_SELECTOR, "table.layers tbody tr")]
    assert cells == expected_layer_cells(reference_run.result)

    body = browser.find_element(By.TAG_NAME, "body").text
    assert str(reference_run.data_path) in body  # the <script> name, shown as text
    assert HOSTILE_WAV in body
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.title == title
