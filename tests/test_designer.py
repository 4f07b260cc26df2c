"""The stack designer (scripts/design.py, convscope.designer): exact stacks, honest scores.

Oracles: torch's forward (on the meta device for many lengths, on real tensors for a few),
stack.receptive's reach over the built stack, the MAC formula L_in x C_in x C_out x k, and
quality.metrics.image_level_db on a real forward of white noise.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import soundfile
import torch
from omegaconf import OmegaConf

from convscope.config.convert import to_dataclass
from convscope.config.schema import DesignConfig, ModelConfig
from convscope.designer import design
from convscope.designer.candidates import enumerate_candidates
from convscope.designer.published import hifigan_fields
from convscope.designer.request import design_request
from convscope.designer.score import (
    best_image,
    impulse_response,
    init_choices,
    macs_per_second,
    reach,
)
from convscope.designer.stacks import channel_schedule, stack_layers
from convscope.errors import ConvscopeError
from convscope.quality.metrics import image_level_db, trim_edges
from convscope.rundir import RunDir
from convscope.stack.build import build_stack
from convscope.stack.lengths import conv_transpose1d_output_length
from convscope.stack.plan import plan_stack
from convscope.stack.receptive import receptive_reaches
from tests.helpers import run_script

CASES = [dict(sr=22050, hop=256), dict(sr=24000, hop=300), dict(sr=16000, hop=320),
         dict(sr=44100, hop=512), dict(sr=48000, hop=600), dict(in_rate=16000, out_rate=48000)]


def _ratio(case: dict) -> int:
    return case.get("hop") or case["out_rate"] // case["in_rate"]


def _meta_forward_length(model: ModelConfig, channels: int, length: int) -> int:
    """torch's own output length: the stack built and run on the meta device (no memory)."""
    plans = plan_stack(model.layers, (1, channels, length))
    with torch.device("meta"):
        stack = build_stack(plans, seed=0)
        return stack(torch.empty(1, channels, length)).shape[-1]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "_".join(map(str, c.values())))
def test_best_config_gives_exactly_ratio_times_length(case, tmp_path):
    result = design(DesignConfig(**case, measure=1, top=1), tmp_path)
    best = RunDir(tmp_path).design_model(1)
    node = OmegaConf.load(best)
    model = to_dataclass(node.model, ModelConfig)
    ratio, channels = _ratio(case), model.layers[0].in_channels
    if "hop" in case:
        assert (node.data.features, node.data.sr, node.data.hop_length, node.data.n_mels) == \
            ("log_mel", case["sr"], case["hop"], channels)
    else:
        assert (node.data.features, node.data.sr, channels) == ("waveform", case["in_rate"], 1)
    rng = random.Random(_ratio(case))
    lengths = [rng.randint(1, 5000) for _ in range(1000)]
    for length in lengths:  # the planner's arithmetic (torch's documented formula)
        assert plan_stack(model.layers, (1, channels, length))[-1].output_shape[-1] == \
            length * ratio
    for length in [1, 2, 3] + lengths[:20]:  # torch itself, on the meta device
        assert _meta_forward_length(model, channels, length) == length * ratio
    small = stack_layers(result.ranked[0].candidate,
                         channel_schedule(len(model.layers), min(channels, 3), 4, 0.5, 1))
    stack = build_stack(plan_stack(small, (1, small[0].in_channels, 7)), seed=0)
    with torch.no_grad():
        for length in (1, 7, 31):  # real numbers through a narrow version of the same stack
            assert stack(torch.randn(1, small[0].in_channels, length)).shape[-1] == length * ratio


def test_every_candidate_is_exact_for_random_lengths():
    request = design_request(DesignConfig(sr=24000, hop=300))
    found = enumerate_candidates(request, 20000)
    # every ordered tuple of 2-6 strides in [2, max_stride] multiplying to 300, by brute force,
    # times the 4 kernel multiples
    orders = sum(1 for n in range(2, 7)
                 for strides in itertools.product(range(2, request.max_stride + 1), repeat=n)
                 if math.prod(strides) == 300)
    assert request.max_stride == 8 and len(found.candidates) == 4 * orders
    rng = random.Random(0)
    lengths = [1] + [rng.randint(1, 10**6) for _ in range(20)]
    for candidate in found.candidates:  # torch's documented length formula, layer by layer
        for length in lengths:
            out = length
            for layer in candidate.layers:
                out = conv_transpose1d_output_length(out, layer.kernel, layer.stride,
                                                     layer.padding, layer.output_padding, 1)
            assert out == length * 300
    for candidate in rng.sample(found.candidates, 25):
        model = ModelConfig(layers=stack_layers(candidate, [(1, 1)] * len(candidate.layers)))
        for length in rng.sample(lengths, 3):
            assert _meta_forward_length(model, 1, length) == length * 300


def test_scores_match_independent_computations():
    request = design_request(DesignConfig(sr=22050, hop=256))
    found = enumerate_candidates(request, 20000)
    candidates = random.Random(1).sample(found.candidates, 12)
    for candidate in candidates:
        schedule = channel_schedule(len(candidate.layers), 80, 512, 0.5, 1)
        # MACs: each ConvTranspose1d costs L_in x C_in x C_out x k; L_in per second is its
        # input rate
        expected, rate = Fraction(0), Fraction(22050, 256)
        for layer, (c_in, c_out) in zip(candidate.layers, schedule):
            expected += rate * c_in * c_out * layer.kernel
            rate *= layer.stride
        assert macs_per_second(candidate, schedule, request.input_rate) == expected
        # receptive field and lookahead: stack.receptive over the built (narrow) stack
        narrow = stack_layers(candidate, [(1, 1)] * len(candidate.layers))
        stack = build_stack(plan_stack(narrow, (1, 1, 8)), seed=0)
        last = receptive_reaches(stack, (1, 1, 8))[str(len(narrow) - 1)][0]
        assert reach(candidate) == (last.receptive_field(), last.lookahead())


def test_image_level_is_what_a_forward_on_noise_measures():
    request = design_request(DesignConfig(in_rate=8000, out_rate=48000))
    found = enumerate_candidates(request, 20000)
    rng = np.random.default_rng(0)
    for candidate in found.candidates[::3]:
        for inits in init_choices(candidate):
            layers = stack_layers(candidate, [(1, 1)] * len(candidate.layers), inits)
            stack = build_stack(plan_stack(layers, (1, 1, 64)), seed=0)
            with torch.no_grad():  # the impulse response is torch's response to one sample
                impulse = torch.zeros(1, 1, 64, dtype=torch.float64)
                impulse[..., 32] = 1
                out = stack.double()(impulse)[0, 0].numpy()
            np.testing.assert_allclose(_support(out), _support(impulse_response(candidate, inits)),
                                       atol=1e-9)
        noise = torch.as_tensor(rng.standard_normal((1, 1, 20000)))
        image, _, _ = best_image(candidate, 48000, 8000)
        measured = []
        for inits in init_choices(candidate):
            layers = stack_layers(candidate, [(1, 1)] * len(candidate.layers), inits)
            stack = build_stack(plan_stack(layers, (1, 1, 20000)), seed=0).double()
            with torch.no_grad():
                out = stack(noise)[0, 0].numpy()
            measured.append(image_level_db(trim_edges(out, 960), 48000, 8000))
        assert min(measured) == pytest.approx(image, abs=1.0)


def _support(x: np.ndarray) -> np.ndarray:
    nonzero = np.flatnonzero(np.abs(x) > 1e-12)
    return x[nonzero[0]: nonzero[-1] + 1]


def test_cli_design_then_run_the_best_config(tmp_path):
    design_dir, run_dir = tmp_path / "design", tmp_path / "run"
    done = run_script("design.py", "sr=22050", "hop=256", "measure=2",
                      f"hydra.run.dir={design_dir}")
    assert done.returncode == 0, done.stderr
    assert "image dB" in done.stdout and "best.yaml" in done.stdout
    rows = (design_dir / RunDir.CANDIDATES_CSV).read_text().splitlines()
    assert rows[0].startswith("rank,") and len(rows) > 100
    done = run_script("run.py", "--config-dir", str(design_dir), "model=best", "data=speech",
                      "data.end=1", "plots.enabled=false", "audio.enabled=false", "report=false",
                      f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr
    alignment = json.loads((run_dir / RunDir.SHAPES).read_text())["alignment"]
    assert alignment["ok"] and alignment["difference"] == 0


@pytest.mark.parametrize("overrides, key", [
    (["sr=22050", "hop=0"], "hop"),
    (["in_rate=16000", "out_rate=44100"], "out_rate"),
    (["sr=22050", "hop=256", "kernels=[2]"], "kernels"),
])
def test_bad_input_is_one_error_line(overrides, key, tmp_path):
    done = run_script("design.py", *overrides, f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}: "), done.stderr
    if key == "out_rate":
        assert "only upsampling by an integer factor is supported" in lines[0]


def test_no_arguments_says_what_to_give_not_both(tmp_path):
    """Neither sr/hop nor in_rate/out_rate given: the line says what to give, and only giving
    both kinds says "not both"."""
    done = run_script("design.py", f"hydra.run.dir={tmp_path / 'none'}")
    assert done.returncode == 2 and not (tmp_path / "none").exists()
    line = done.stderr.strip()
    assert line.startswith("error: sr, hop / in_rate, out_rate: nothing to design for"), line
    assert "not both" not in line and "sr=22050 hop=256" in line
    from convscope.errors import ConvscopeError

    with pytest.raises(ConvscopeError, match="not both"):
        design_request(DesignConfig(sr=22050, hop=256, in_rate=16000, out_rate=48000))


def test_a_prime_factor_above_max_stride_names_max_stride():
    from convscope.errors import ConvscopeError

    with pytest.raises(ConvscopeError, match=r"^max_stride: the ratio 257 has the prime factor 257"):
        design_request(DesignConfig(sr=22050, hop=257))
    assert design_request(DesignConfig(sr=22050, hop=257, max_stride=None)).ratio == 257


# --- bounded requests (issue 24: the designer ran for minutes inside numpy, or took 14 GB) -------

def test_stride_orders_try_divisors_only_and_miss_none():
    from convscope.designer.candidates import stride_orders

    for ratio in (1, 2, 12, 36, 97, 360):
        for layers in (1, 2, 3):
            brute = {t for t in itertools.product(range(2, ratio + 1), repeat=layers)
                     if math.prod(t) == ratio} if ratio <= 97 or layers < 3 else None
            got = list(stride_orders(ratio, layers))
            assert len(got) == len(set(got))
            if brute is not None:
                assert set(got) == brute, (ratio, layers)
    assert sum(1 for _ in stride_orders(720720, 2)) == 238  # 240 divisors less 1 and 720720


@pytest.mark.parametrize("key, value", [("kernels", [1_000_000_000]), ("multiples", [1_000_000])])
def test_kernels_beyond_the_scored_length_are_refused_naming_the_key(tmp_path, key, value):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConvscopeError, match=rf"^{key}: no stack .* kernel_size above 4096 taps "
                                             "is not scored"):
        design(DesignConfig(sr=16000, hop=256, **{key: value}), tmp_path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB; was 14 GB


def test_a_huge_ratio_is_scored_within_a_bounded_number_of_samples():
    from convscope.designer.candidates import SCORED_SAMPLES
    from convscope.designer.score import tone_is_measurable

    request = design_request(DesignConfig(sr=22050, hop=720720, max_stride=None))
    found = enumerate_candidates(request, max_candidates=20000)
    assert len(found.candidates) * 720720 <= SCORED_SAMPLES < (len(found.candidates) + 1) * 720720
    assert any(note.startswith(f"stopped at {len(found.candidates)} candidates") for note in
               found.notes)
    assert not tone_is_measurable(720720, request.input_rate)
    assert tone_is_measurable(256, design_request(DesignConfig(sr=22050, hop=256)).input_rate)


def test_best_yaml_runs_the_init_it_was_scored_with(tmp_path):
    """best.yaml carries the scored init and its geometry: run on white noise, the run's
    images above the input Nyquist are the table's image dB, and on speech it follows soxr
    (torch's random init gave SNR -1.4 dB where the table promised the linear init's images)."""
    design_dir = tmp_path / "design"
    result = design(DesignConfig(in_rate=16000, out_rate=48000, measure=1, top=1), design_dir)
    best = result.ranked[0]
    node = OmegaConf.load(RunDir(design_dir).design_model(1))
    layers = node.model.layers
    assert [(lay.init, lay.padding, lay.output_padding) for lay in layers] == \
        [tuple(init) for init in best.scores.inits]
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    soundfile.write(str(tmp_path / "noise.wav"), noise, 16000, subtype="FLOAT")
    metrics = {}
    for name, data in (("noise", [f"data.path={tmp_path / 'noise.wav'}", "data.start=0",
                                  "data.end=null"]),
                       ("speech", ["data=speech", "data.end=1"])):
        done = run_script("run.py", "--config-dir", str(design_dir), "model=best", *data,
                          "plots.enabled=false", "audio.enabled=false", "report=false",
                          "evaluate.enabled=true", f"hydra.run.dir={tmp_path / name}")
        assert done.returncode == 0, done.stderr
        metrics[name] = json.loads((tmp_path / name / RunDir.METRICS).read_text())
    assert metrics["noise"]["image_db"] == pytest.approx(best.scores.image_db, abs=1.5)
    assert metrics["speech"]["snr_db"] > 15


def test_best_hifigan_json_builds_the_promised_length_with_hifigans_padding(tmp_path):
    """Every candidate names its published keys (candidates.csv); the best's in
    best_hifigan.json, built as models.py builds ups (padding=(k - u) // 2, no output_padding,
    plus the stated edits), give T x hop samples for T frames."""
    result = design(DesignConfig(sr=22050, hop=300, measure=1, top=1), tmp_path)
    fields = json.loads((tmp_path / RunDir.BEST_HIFIGAN).read_text())
    best = result.ranked[0].candidate
    assert fields == hifigan_fields(best)
    assert fields["upsample_rates"] == list(best.strides)
    assert fields["upsample_kernel_sizes"] == list(best.kernels)
    assert fields["length"] == "T frames in, T x 300 samples out"
    odd = next(item.candidate for item in result.ranked
               if any((k - u) % 2 for k, u in zip(item.candidate.kernels,
                                                   item.candidate.strides)))
    for candidate_fields in (fields, hifigan_fields(odd)):  # one with edits, whatever is best
        edits = {edit["stage"]: edit for edit in candidate_fields["padding_edits"]}
        assert candidate_fields["padding_exact"] == (not edits)
        ups = []
        for i, (u, k) in enumerate(zip(candidate_fields["upsample_rates"],
                                       candidate_fields["upsample_kernel_sizes"])):
            edit = edits.get(i, {"padding": (k - u) // 2, "output_padding": 0})
            ups.append(torch.nn.ConvTranspose1d(1, 1, k, u, edit["padding"],
                                                edit["output_padding"]))
        for frames in (1, 7, 50):
            x = torch.zeros(1, 1, frames)
            with torch.no_grad():
                for up in ups:
                    x = up(x)
            assert x.shape[-1] == frames * 300
        if edits:  # without the edit, models.py's formula is off
            stage = next(iter(edits))
            k, u = (candidate_fields["upsample_kernel_sizes"][stage],
                    candidate_fields["upsample_rates"][stage])
            assert conv_transpose1d_output_length(7, k, u, (k - u) // 2, 0) == 7 * u + 1
    rows = list(csv.DictReader((tmp_path / RunDir.CANDIDATES_CSV).open()))
    assert len(rows) == len(result.ranked)
    for row, item in zip(rows, result.ranked):
        kernels, strides = item.candidate.kernels, item.candidate.strides
        assert json.loads(row["upsample_rates"]) == list(strides)
        assert json.loads(row["upsample_kernel_sizes"]) == list(kernels)
        exact = all((k - u) % 2 == 0 for k, u in zip(kernels, strides))
        assert (row["hifigan_padding"] == "exact") == exact
