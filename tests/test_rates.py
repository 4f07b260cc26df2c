"""Exact rates (stack.rates): Fractions through the plan, shapes.json's number + fraction, and a
run whose output rate is not a whole number of Hz (no WAV can hold it)."""

import json
from dataclasses import replace
from fractions import Fraction

import pytest
import soundfile

from convscope.config.schema import DataConfig, LayerConfig, ModelConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.single import run
from convscope.stack.plan import plan_stack
from convscope.stack.rates import integer_rate, layer_rates, output_sample_rate, rate_json
from tests.helpers import REPO


def test_rates_are_exact_fractions_through_the_stack():
    vocoder = [LayerConfig(type="ConvTranspose1d", in_channels=80, out_channels=4,
                           kernel_size=16, stride=8, padding=4),
               LayerConfig(type="ConvTranspose1d", out_channels=1, kernel_size=64, stride=32,
                           padding=16)]
    plans = plan_stack(vocoder, (1, 80, 10))
    rates = layer_rates(plans, Fraction(22050, 256))
    assert rates == [Fraction(22050, 32), 22050] and all(type(r) is Fraction for r in rates)
    assert integer_rate(rates[-1]) == 22050 and integer_rate(rates[0]) is None
    down = plan_stack([LayerConfig(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3,
                                   stride=3)], (1, 1, 30))
    assert output_sample_rate(down, 16000) == Fraction(16000, 3)
    assert output_sample_rate([], "22050/256") == Fraction(11025, 128)


def test_rate_json_writes_the_number_and_the_fraction():
    assert rate_json(Fraction(22050, 256)) == {"sample_rate": 86.1328125,
                                               "sample_rate_fraction": "11025/128"}
    whole = rate_json(Fraction(32000), "sample_rate_out")
    assert whole == {"sample_rate_out": 32000, "sample_rate_out_fraction": "32000"}
    assert type(whole["sample_rate_out"]) is int


THIRD = [LayerConfig(type="Conv1d", in_channels=1, out_channels=2, kernel_size=3, stride=3)]


def third_rate_config(**stream):
    cfg = RunConfig(data=DataConfig(start=2.0, end=2.5),
                    model=ModelConfig(name="third", layers=THIRD))
    return replace(cfg, stream=replace(cfg.stream, **stream)) if stream else cfg


@pytest.mark.parametrize("stream", ["false", "true"])
def test_an_output_rate_that_is_not_whole_writes_no_wav_and_says_why(tmp_path, caplog, stream):
    cfg = replace(third_rate_config(enabled=stream), plots=replace(RunConfig().plots,
                                                                   enabled=False))
    with caplog.at_level("INFO", logger="convscope"):
        result = run(cfg, tmp_path, base_dir=REPO)
    doc = json.loads((tmp_path / "shapes.json").read_text())
    reason = "output rate 16000/3 Hz is not an integer; no WAV written"
    assert doc["output"]["sample_rate"] == 16000 / 3
    assert doc["output"]["sample_rate_fraction"] == "16000/3"
    assert doc["layers"][0]["sample_rate_out_fraction"] == "16000/3"
    assert doc["audio"]["output_wavs"] == reason
    assert doc["audio"]["files"] == ["audio/input.wav"]
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == ["input.wav"]
    assert soundfile.info(str(tmp_path / "audio/input.wav")).samplerate == 16000
    assert sum(reason in m for m in caplog.messages) == 1
    assert any("evaluate: off, the output rate 16000/3 Hz is not a whole number" in m
               for m in caplog.messages)
    assert result.output_rate is None
    assert any("streaming block by block" in m for m in caplog.messages) == (stream == "true")
    assert reason in (tmp_path / "index.html").read_text()


def test_evaluate_true_at_a_rate_that_is_not_whole_is_a_named_error(tmp_path):
    cfg = third_rate_config()
    cfg = replace(cfg, evaluate=replace(cfg.evaluate, enabled="true"))
    with pytest.raises(ConvscopeError, match=r"^evaluate\.enabled=true: the output rate 16000/3"):
        run(cfg, tmp_path, base_dir=REPO)
