"""docs/explorer.html: its functions and its controls against torch, in headless Chromium, offline.

One browser and one page load serve the whole comparison: the random cases (made here with a fixed
seed, valid and invalid) go to the page in one execute_script call, and torch is the oracle for
every output, length, tap count and error message. The controls are then driven like a user would
(typing, sliders, a click) and what the page shows is read back and compared with torch.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convscope.errors import ConvscopeError
from convscope.explainer.catalogue import find_example
from convscope.explainer.examples import run_example
from convscope.explainer.explain import ExplainConfig, explain
from convscope.explainer.explorer import explorer_fragment
from convscope.resources import explorer_page
from convscope.rundir import RunDir
from tests.browser import browser_or_skip, headless_chromium
from tests.helpers import REPO

PAGE = REPO / "docs" / "explorer.html"
PARAMS = ("stride", "padding", "output_padding", "dilation")
N_RANDOM = 700  # random cases; fixed edge cases come on top
MIN_VALID = 500  # the issue asks for at least this many compared outputs


# --- the cases and torch's answers ---------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    x: list
    w: list
    stride: object = 1  # object: a few cases pass a non-integer on purpose
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1

    def opts(self) -> dict:
        return {name: getattr(self, name) for name in PARAMS}


def edge_cases() -> list[Case]:
    one = [1.5]
    return [
        Case(one, [1.0, 2.0, 3.0]),                                   # length-1 input
        Case(one, [2.0], stride=5),                                   # length 1 in and out
        Case([1.0, 2.0, 3.0], [1.0, -1.0], dilation=3, output_padding=2),  # op < d, op >= s
        Case([1.0, 2.0, 3.0, 4.0], [1.0, 1.0], stride=3, padding=4),  # padding > kernel
        Case([1.0, 2.0], [1.0, 2.0], padding=1),                      # L_out = 1
        Case([1.0], [1.0, 2.0], padding=1),                           # L_out = 0
        Case([1.0], [1.0], padding=1),                                # L_out = -1
        Case([], [1.0, 2.0]),                                         # empty input
        Case([1.0, 2.0], []),                                         # empty kernel
        Case([1.0], [1.0], stride=1, output_padding=1),               # op = s = d
        Case([1.0], [1.0], stride=2, output_padding=2, dilation=2),
        Case([1.0], [1.0], stride=0), Case([1.0], [1.0], stride=-2),
        Case([1.0], [1.0], padding=-1), Case([1.0], [1.0], output_padding=-1),
        Case([1.0], [1.0], dilation=0), Case([1.0], [1.0], dilation=-1),
        Case([1.0], [1.0], stride=0, padding=-1, output_padding=-1, dilation=0),  # torch's order
        Case([], [], stride=0, dilation=0),
        Case([1.0], [1.0], stride=0, output_padding=-1),
    ]


def random_cases(seed: int = 12) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(N_RANDOM):
        L, k = int(rng.integers(1, 13)), int(rng.integers(1, 8))
        s, d = int(rng.integers(1, 6)), int(rng.choice([1, 1, 2, 3, 4]))
        params = {"stride": s, "dilation": d, "padding": int(rng.integers(0, 7)),
                  "output_padding": int(rng.integers(0, max(s, d)))}
        if rng.random() < 0.12:  # break one rule
            key, value = [("output_padding", max(s, d) + int(rng.integers(0, 2))),
                          ("padding", 20), ("stride", 0), ("dilation", 0),
                          ("padding", -1)][int(rng.integers(0, 5))]
            params[key] = value
        cases.append(Case(rng.normal(size=L).round(3).tolist(),
                          rng.normal(size=k).round(3).tolist(), **params))
    return cases


def torch_answer(case: Case) -> dict:
    """conv_transpose1d on (1, 1, L) in float64: the output and the tap counts, or the error."""
    x = torch.tensor(case.x, dtype=torch.float64).view(1, 1, -1)
    w = torch.tensor(case.w, dtype=torch.float64).view(1, 1, -1)
    try:
        y = F.conv_transpose1d(x, w, **case.opts())
    except (RuntimeError, TypeError) as err:
        return {"error": str(err), "type": type(err).__name__}
    taps = F.conv_transpose1d(torch.ones_like(x), torch.ones_like(w), **case.opts())
    return {"y": y.view(-1).tolist(), "taps": taps.view(-1).round().int().tolist()}


# --- the page, offline ------------------------------------------------------------------------

ALL_CASES = """
const cs = window.convscope;
function attempt(f) {
  try { return {value: f()}; } catch (e) { return {error: e.message, name: e.name}; }
}
return arguments[0].map((c) => {
  const opts = {stride: c.stride, padding: c.padding, output_padding: c.output_padding,
                dilation: c.dilation};
  const lay = attempt(() => cs.layout(c.x, c.w, opts));
  if (lay.value) lay.value = {taps: lay.value.taps, flipped: lay.value.flipped,
                              z: lay.value.z.map((q) => q.value)};
  return {y: attempt(() => cs.convTranspose1d(c.x, c.w, opts)),
          length: attempt(() => cs.outputLength(c.x.length, {kernel_size: c.w.length, ...opts})),
          layout: lay};
});
"""


@pytest.fixture(scope="module")
def page_session(tmp_path_factory):
    """One offline Chromium with the page loaded from file://, for every test in this module."""
    chromium, chromedriver = browser_or_skip()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with headless_chromium(chromium, chromedriver, profile) as browser:
        browser.set_network_conditions(offline=True, latency=0, download_throughput=0,
                                       upload_throughput=0)
        browser.get(PAGE.as_uri())
        yield browser


def test_functions_match_torch_on_random_and_edge_cases(page_session):
    cases = edge_cases() + random_cases() + [Case([1.0], [1.0], stride=1.5),
                                              Case([1.0], [1.0], padding=0.5)]
    got = page_session.execute_script(ALL_CASES, [case.__dict__ for case in cases])
    valid = 0
    for case, js in zip(cases, got):
        want = torch_answer(case)
        where = f"{case}: torch {want}, page {js}"
        if "error" in want:
            # torch raises iff the page throws; the RuntimeErrors say the same words
            assert "error" in js["y"] and "error" in js["layout"], where
            if want["type"] == "RuntimeError":
                assert js["y"]["name"] == "RuntimeError", where
                assert js["y"]["error"] == want["error"], where
                assert js["length"]["error"] == want["error"], where
            continue
        valid += 1
        y = np.array(want["y"])
        assert js["length"].get("value") == len(y), where
        np.testing.assert_allclose(js["y"]["value"], y, rtol=1e-12, atol=1e-12, err_msg=where)
        view = js["layout"]["value"]
        assert view["taps"] == want["taps"], where
        # the zero-insertion view is a second route to the same numbers: correlate z with the
        # flipped kernel, taps `dilation` apart
        z, flipped, d = np.array(view["z"]), np.array(view["flipped"]), case.dilation
        assert len(z) == len(y) + d * (len(case.w) - 1), where
        via_zeros = [sum(z[n + i * d] * flipped[i] for i in range(len(flipped)))
                     for n in range(len(y))]
        np.testing.assert_allclose(via_zeros, y, rtol=1e-12, atol=1e-12, err_msg=where)
    assert valid >= MIN_VALID and len(cases) - valid >= 60, (valid, len(cases))


# --- the controls ------------------------------------------------------------------------------

def set_value(browser, element_id: str, value) -> None:
    """What typing or dragging does: a new value, then the input event the page listens to."""
    browser.execute_script(
        "const el = document.getElementById(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('input', {bubbles: true}));", element_id, str(value))


SHOWN = """
const text = (id) => document.getElementById(id).textContent.replaceAll("\u2212", "-");
const value = (id) => document.getElementById(id).value;
return {output: text("output"), formula: text("formula"), error: text("error"),
        error_shown: getComputedStyle(document.getElementById("error")).display !== "none",
        taps: [...document.querySelectorAll("#scatter text.taps")].map((t) => Number(t.textContent)),
        controls: Object.fromEntries(["x", "w", ...arguments[0]].map((id) => [id, value(id)]))};
"""


def shown(browser) -> dict:
    """What the page shows (one round trip): output values, formula, error, taps, the controls."""
    page = browser.execute_script(SHOWN, list(PARAMS))
    output = page.pop("output")
    page["y"] = None
    if output.startswith("y = ["):
        page["y"] = [float(v) for v in output.removeprefix("y = [").removesuffix("]").split(",")]
    return page


def controls_case(page: dict) -> Case:
    """The numbers the controls hold, as the test's Case."""
    def numbers(text):
        return [float(v) for v in re.split(r"[\s,]+", text.strip()) if v]

    controls = page["controls"]
    return Case(numbers(controls["x"]), numbers(controls["w"]),
                **{name: int(controls[name]) for name in PARAMS})


def check_shown_against_torch(browser) -> Case:
    page = shown(browser)
    case = controls_case(page)
    want = torch_answer(case)
    assert not page["error_shown"], page
    np.testing.assert_allclose(page["y"], want["y"], rtol=1e-5, atol=1e-6)  # 6 digits shown
    assert page["taps"] == want["taps"]
    L, k, n = len(case.x), len(case.w), len(want["y"])
    assert (f"= ({L} - 1)·{case.stride} - 2·{case.padding} + {case.dilation}·({k} - 1) + "
            f"{case.output_padding} + 1 = {n}") in page["formula"], page["formula"]
    return case


def test_controls_show_what_torch_computes(page_session):
    from selenium.webdriver.common.by import By

    browser = page_session
    browser.get(PAGE.as_uri())  # the default example, fresh
    check_shown_against_torch(browser)

    set_value(browser, "x", "0.5, -1.25, 2, 3")
    set_value(browser, "w", "1 2 -3 0.25")
    for name, value in (("stride", 3), ("padding", 2), ("output_padding", 1), ("dilation", 2)):
        set_value(browser, name, value)
    assert check_shown_against_torch(browser) == Case(
        [0.5, -1.25, 2, 3], [1, 2, -3, 0.25], stride=3, padding=2, output_padding=1, dilation=2)

    set_value(browser, "stride-range", 5)  # the slider moves the number box and the page
    assert check_shown_against_torch(browser).stride == 5

    # an invalid combination: the page says what torch says, word for word
    set_value(browser, "output_padding", 5)
    page = shown(browser)
    want = torch_answer(controls_case(page))
    assert page["error_shown"] and f"RuntimeError: {want['error']}" in page["error"], page
    set_value(browser, "output_padding", 1)
    set_value(browser, "padding", 40)
    page = shown(browser)
    want = torch_answer(controls_case(page))
    assert "Output size is too small" in want["error"] and want["error"] in page["error"]
    assert "- 2·40 +" in page["formula"]
    set_value(browser, "padding", 1)
    set_value(browser, "output_padding", 0)
    case = check_shown_against_torch(browser)

    # a click on an output explains it: its terms and its value
    want = torch_answer(case)["y"]
    browser.find_element(By.CSS_SELECTOR, "#scatter [data-n='3']").click()
    explained = browser.find_element(By.ID, "scatter-sum").text.replace("−", "-")
    assert explained.startswith("y[3] = x[")
    assert math.isclose(float(explained.split("=")[-1].split()[0]), want[3], rel_tol=1e-5)

    # presets are buttons over the same controls
    for button in browser.find_elements(By.CSS_SELECTOR, "#presets button"):
        button.click()
        check_shown_against_torch(browser)


def test_page_is_offline_and_quiet(page_session):
    browser = page_session
    browser.get(PAGE.as_uri())
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script("return typeof window.convscope.convTranspose1d") == "function"
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    html = PAGE.read_text(encoding="utf-8")
    assert not re.search(r"https?:|//[a-z]|\bsrc\s*=|\bhref\s*=|<link|@import|url\(", html)


def test_explain_link_opens_the_page_on_the_example(page_session, tmp_path):
    run = run_example(find_example("tconv1d_stride"))
    fragment = explorer_fragment(run)
    assert fragment.startswith("#x=")
    page_session.get(PAGE.as_uri() + fragment)
    case = check_shown_against_torch(page_session)
    layer = run.example.layer
    assert case.x == np.ravel(run.input).tolist()
    assert case.w == np.ravel(layer.weight.array()).tolist()
    assert [getattr(case, n) for n in PARAMS] == [getattr(layer, n) for n in PARAMS]


# --- explain explorer=true (no browser) --------------------------------------------------------

def test_explain_writes_the_packaged_page(tmp_path):
    assert explorer_page() == PAGE  # in a checkout: docs/explorer.html, the one copy
    out = io.StringIO()
    status = explain(ExplainConfig(example="tconv1d_stride", explorer=True, picture=False),
                     tmp_path, out)
    written = RunDir(tmp_path).explorer
    assert status == 0 and written.read_bytes() == PAGE.read_bytes()
    assert f"explorer: {written.as_uri()}#x=" in out.getvalue()
    assert not (tmp_path / RunDir.SCATTER).exists()


def test_explorer_needs_a_run_dir_and_skips_multichannel_links(tmp_path: Path):
    with pytest.raises(ConvscopeError, match="explorer=true"):
        explain(ExplainConfig(explorer=True), None, io.StringIO())
    out = io.StringIO()
    explain(ExplainConfig(input=[[1, 2], [3, 4]], weight=[[1, 0, -1], [1, 1, 1]], explorer=True,
                          picture=False), tmp_path, out)
    # two channels in: the page shows one, so the link carries no numbers
    assert out.getvalue().rstrip().endswith(f"explorer: {RunDir(tmp_path).explorer.as_uri()}")
