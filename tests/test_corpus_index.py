"""A corpus run's index.html: a row per file in summary.csv's order, with its shapes, metrics and a
link to its page, the bad file with its error; every link resolves, and Chromium loads the index
and each file's page with no missing resource. One corpus run is shared by the module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import soundfile

from convscope.config.convert import to_run_config
from convscope.errors import ConvscopeError
from convscope.corpus.run import run_corpus
from convscope.report.html import number_text
from convscope.text import shape_text
from tests.helpers import REPO
from tests.test_report import AUDIO_METADATA, browser_or_skip, headless_chromium

FILES = {"a.wav": 0.3, "b one.wav": 0.2, "sub/c.wav": 0.25}  # a space and a folder in the names
BAD = "broken.wav"


@dataclass(frozen=True)
class Corpus:
    out: Path
    summary: list[dict]
    html: str


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus_index")
    for name, seconds in FILES.items():
        path = root / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * 8000)) / 8000
        soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), 8000)
    (root / "in" / BAD).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    cfg = to_run_config({"data": {"path": str(root / "in"), "start": 0.0, "end": None,
                                  "sr": 8000},
                         "model": {"layers": [{"type": "ConvTranspose1d", "in_channels": 1,
                                               "out_channels": 2, "kernel_size": 4, "stride": 2,
                                               "padding": 1}]},
                         "plots": {"enabled": False},  # pages, audio and metrics stay on
                         # a page for every file; in this process (workers: test_corpus_workers)
                         "corpus": {"figures_files": -1, "workers": 1}})
    out = root / "run"
    with pytest.raises(ConvscopeError, match="1 of 4 files failed"):
        run_corpus(cfg, out, REPO)
    summary = json.loads((out / "summary.json").read_text())
    return Corpus(out, summary, (out / "index.html").read_text(encoding="utf-8"))


class Rows(HTMLParser):
    """Every href/src, and the cells (as text, and their links) of table.corpus's body rows."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.rows: list[list[str]] = []
        self.row_links: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("href", "src") if attrs.get(k)]
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
            self.row_links.append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "a" and self._cell is not None:
            self.row_links[-1].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> Rows:
    rows = Rows()
    rows.feed(page)
    return rows


def test_a_row_per_file_in_summary_order_with_shapes_metrics_and_errors(corpus):
    table = parse(corpus.html)
    assert [row[0] for row in table.rows] == [row["file"] for row in corpus.summary]
    assert sorted(row["file"] for row in corpus.summary) == sorted([*FILES, BAD])
    for cells, links, row in zip(table.rows, table.row_links, corpus.summary):
        if row["status"] != "ok":
            assert cells[1] == f"error: {row['error']}" and "cannot decode" in row["error"]
            assert not links  # no page to link: its subfolder was never written
            continue
        assert links == [f"{row['subdir'].replace(' ', '%20')}/index.html"]
        assert cells[1] == "ok"
        assert cells[3:5] == [shape_text(row["input_shape"]), shape_text(row["output_shape"])]
        assert cells[5] == f"{row['output_rate']:,} Hz"
        metrics = json.loads((corpus.out / row["subdir"] / "metrics.json").read_text())
        assert cells[-4:] == [number_text(metrics[key]) for key in
                              ("snr_db", "lsd_db", "image_db", "tone_db")]
    assert "4 files, 3 ok, 1 failed" in corpus.html
    assert escape(corpus.summary[1]["error"]) in corpus.html


def test_every_href_and_src_resolves_to_a_file(corpus):
    links = [link for link in parse(corpus.html).links if not link.startswith("#")]
    assert "summary.csv" in links and "summary.json" in links
    for link in links:
        assert not urlparse(link).scheme, link  # relative: the folder can be moved
        assert (corpus.out / unquote(link)).is_file(), link


MISSING = """
const missing = [];
for (const el of document.querySelectorAll('img')) {
  if (!el.complete || el.naturalWidth === 0) missing.push(el.src);
}
return {missing: missing,
        resources: performance.getEntriesByType('resource').map(e => [e.name, e.responseEnd])};
"""


def test_index_and_file_pages_load_in_a_browser(corpus, tmp_path):
    # Checked in the test body (not a fixture) so that in CI a missing browser is a FAILED test.
    chromium, chromedriver = browser_or_skip()
    from selenium.webdriver.common.by import By

    with headless_chromium(chromium, chromedriver, tmp_path / "chromium-profile") as browser:
        browser.get((corpus.out / "index.html").as_uri())
        assert browser.title == f"convscope corpus · {corpus.out.name}"
        pages = [a.get_attribute("href") for a in
                 browser.find_elements(By.CSS_SELECTOR, "table.corpus a")]
        assert len(pages) == sum(row["status"] == "ok" for row in corpus.summary)
        for url in [browser.current_url, *pages]:
            browser.get(url)
            state = browser.execute_script(MISSING)
            assert state["missing"] == [], url
            for name, end in state["resources"]:  # a file:// load that failed never ends
                assert end > 0 and Path(unquote(urlparse(name).path)).is_file(), (url, name)
            for element in browser.find_elements(By.CSS_SELECTOR, "[href], [src]"):
                target = element.get_attribute("href") or element.get_attribute("src")
                if urlparse(target).scheme == "file":
                    assert Path(unquote(urlparse(target).path)).exists(), (url, target)
            for audio in browser.find_elements(By.TAG_NAME, "audio"):
                state = browser.execute_async_script(AUDIO_METADATA, audio)
                assert state["error"] is None and state["duration"] > 0, (url, state)
        assert len(browser.find_elements(By.TAG_NAME, "audio")) > 0  # a file page was checked
