"""Figures drawn by the figure worker process (plots.workers) are the figures drawn in the
run's own process, pixel for pixel; its failures name the figure; a dead worker's figures are
drawn here instead; no worker or temp file outlives a job that failed or the session."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from matplotlib.image import imread

from convscope.config.schema import PlotsConfig
from convscope.errors import ConvscopeError
from convscope.files import partials
from convscope.plots import background
from convscope.plots.figure_worker import FigureJob
from convscope.plots.signals import LayerSignals
from convscope.plots.zoom import ConvGeometry, zoom_data, zoom_window
from tests.helpers import REPO

SMALL = PlotsConfig(dpi=30, width_inches=5)
SR = Fraction(1000)


def _layer(length: int = 3000) -> LayerSignals:
    """A stride-2 layer's figure: long enough that the envelope reduces it, with a zoom."""
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((2, length)).astype(np.float32)
    outputs = rng.standard_normal((1, 2 * length)).astype(np.float32)
    window = zoom_window(0.5, 20, length, 2 * length, SR, 2 * SR)
    zoom = zoom_data(window, inputs[0, window.input_start: window.input_stop],
                     outputs[0, window.output_start: window.output_stop], SR, 2 * SR, length,
                     ConvGeometry(True, 4, 2, 1))
    return LayerSignals(0, "ConvTranspose1d", inputs, [1, 2, length], SR, "the stack input",
                        outputs, [1, 1, 2 * length], 2 * SR, zoom)


def _stop(worker: background.FigureWorker) -> None:
    worker.stop()
    assert worker.process.poll() is not None


def test_the_worker_draws_the_same_pixels_as_this_process(tmp_path):
    layer = _layer()
    here = tmp_path / "here" / "layer0.png"
    background.InProcess().submit(FigureJob("layer", here, (layer, SMALL)))
    worker = background.FigureWorker()
    try:
        there = tmp_path / "there" / "layer0.png"
        # what crosses the pipe is the envelope plot_layer draws, not the 3000 samples
        assert len(background.compact(FigureJob("layer", there, (layer, SMALL))).args[0]
                   .input[0].times) < layer.input.shape[-1]
        worker.submit(FigureJob("layer", there, (layer, SMALL)))
        worker.wait()
    finally:
        _stop(worker)
    assert np.array_equal(imread(here), imread(there))
    assert partials(tmp_path) == []


def test_a_figure_the_worker_cannot_draw_is_one_error_naming_it(tmp_path):
    broken = replace(_layer(), output=[None])  # a channel that is no signal
    worker = background.FigureWorker()
    try:
        worker.submit(FigureJob("layer", tmp_path / "layer7_Conv1d.png", (broken, SMALL)))
        worker.submit(FigureJob("layer", tmp_path / "layer8_Conv1d.png", (_layer(), SMALL)))
        with pytest.raises(ConvscopeError, match=r"layer7_Conv1d\.png: the figure worker"):
            worker.wait()
        assert not worker.pending  # the next figure's reply was read too: still in step
        assert (tmp_path / "layer8_Conv1d.png").is_file()
    finally:
        _stop(worker)
    assert not (tmp_path / "layer7_Conv1d.png").exists() and partials(tmp_path) == []


def test_a_dead_workers_figures_are_drawn_here(tmp_path, caplog):
    worker = background.FigureWorker()
    worker.process.kill()
    worker.process.wait()
    path = tmp_path / "layer0.png"
    worker.submit(FigureJob("layer", path, (_layer(), SMALL)))
    with caplog.at_level(logging.WARNING, logger="convscope"):
        worker.wait()
    _stop(worker)
    assert path.is_file() and "figure worker stopped" in caplog.text


def test_a_failed_job_and_the_sessions_end_leave_no_worker_and_no_temp_file(tmp_path):
    wide = replace(SMALL, dpi=100, width_inches=30)  # slow enough to be caught drawing
    with background.session([]):
        sink = background.figure_sink(wide)
        assert isinstance(sink, background.FigurePool)
        pids = [worker.process.pid for worker in sink.workers]
        with pytest.raises(RuntimeError), background.job_figures():
            sink.submit(FigureJob("layer", tmp_path / "layer0.png", (_layer(20000), wide)))
            raise RuntimeError("the job failed while its figure was being drawn")
        assert not sink.alive and partials(tmp_path) == []
        # the next job gets fresh workers, figures spread over them; the session's end stops them
        second = background.figure_sink(SMALL)
        assert second is not sink and second.alive
        for i in range(len(second.workers)):
            second.submit(FigureJob("layer", tmp_path / f"layer{i + 1}.png", (_layer(), SMALL)))
        assert [len(worker.pending) for worker in second.workers] == [1] * len(second.workers)
        background.wait_for_figures()
        assert all((tmp_path / f"layer{i + 1}.png").is_file() for i in range(len(pids)))
    assert not second.alive
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # without a session (library calls, tests, corpus worker processes) figures are drawn here
    assert isinstance(background.figure_sink(SMALL), background.InProcess)
    assert isinstance(background.figure_sink(replace(SMALL, workers=0)),
                      background.InProcess)


def test_command_lines_that_draw_nothing_start_no_worker():
    assert background.wants_worker(["model=sinc_x2"])
    assert not background.wants_worker(["plots.enabled=false"])
    assert not background.wants_worker(["plots.workers=0"])
    assert background._workers_named(["plots.workers=2"]) == 2
    assert not background.wants_worker(["--cfg", "job"])


@pytest.mark.slow  # a whole scripts/run.py (~6 s): `pytest -m slow tests/test_figure_worker.py`
def test_sigterm_while_the_worker_draws_leaves_no_worker_and_no_temp_file(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run.py"), "plots.width_inches=60",
         "plots.dpi=150", f"hydra.run.dir={run_dir}"],  # figures slow enough to be caught
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run_dir.is_dir() and partials(run_dir / "plots")):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no figure was ever being written"
        time.sleep(0.05)
    drawing = partials(run_dir / "plots")[0]
    worker_pid = int(drawing.name.split("-")[-2])  # files.partial_path: ...-{pid}-{n}.png
    assert worker_pid != proc.pid  # the worker's temp file, not the main process's
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143 and err.startswith("error: interrupted (SIGTERM)"), err
    assert err.count("\n") == 1, err
    assert partials(run_dir) == [] and not (run_dir / "shapes.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
