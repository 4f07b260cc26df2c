"""The CLI boundary as a property (Hypothesis): whatever a user types, scripts/run.py ends with
exit 0, or exit 2 and exactly one `error:` line; never a traceback, a signal or a hang.

Examples are command lines: 1-4 overrides drawn over every key of the run schema
(convscope.config.schema.RunConfig, nested sections and model.layers.<i>.<key> included), each
with a value of its own type or a hostile one (wrong type, NaN, inf, negative, zero, huge,
empty, random text), plus a small random audio file (0-2000 frames, 1-3 channels, a random
subtype and rate, or garbage bytes) as data.path. Each runs through the planning path in this
process (tests.cli_harness). Run as a module so a signal or a leak cannot hit pytest:

    python -m tests.cli_property [examples]     (default: CONVSCOPE_PROPERTY_EXAMPLES or 40)

tests/test_cli_property.py does, with a larger budget under `pytest -m slow`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import typing
from pathlib import Path

import numpy as np
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.config import schema
from convscope.config.schema import LayerConfig, RunConfig
from convscope.stack.inits import INITS, SINC_WINDOWS
from convscope.stack.plan import CONV1D_PADDING_MODES, LAYER_KEYS, REDUCTIONS, UPSAMPLE_MODES
from tests.cli_harness import run_in_process

DEFAULT_EXAMPLES = 40
# Keys left out of the generator, each with its owner. The integrator enables a class by
# deleting its line once the owner's branch is merged.
EXCLUDED_KEYS = {
    "model.target": "imports and runs the user's code (model=module): not a value to fuzz",
    "model.kwargs": "the user's constructor arguments, free-form by design",
    "model.weights": "OWNER paths (issue 13.3-4 OS side): a path, not a value",
    "data.path": "OWNER paths: random path strings ('' is a corpus today); the generator "
                 "supplies real files instead",
    "model.layers": "replaced whole by model=<preset>; its entries are fuzzed key by key",
}
# Values whose failure is a resource limit, not a value check: OWNER budget (issue 13.2)
# refuses them from a memory estimate. Until then they stay within what planning can afford.
BUDGET_LIMITED = {
    "data.sr": 384_000,  # resampling a file to 2**31 Hz allocates gigabytes (issue 13.2)
}
SMALL_PRESETS = ("seed_example", "linear_x2", "nearest_x2", "sinc_x2", "artifact_k4s2",
                 "resize_conv")
CHOICES = sorted({*schema.DEVICES, *schema.STREAM_MODES, *schema.STREAM_ENGINES,
                  *schema.EVALUATE_MODES, *schema.FEATURES, *schema.REFERENCE_RESAMPLERS,
                  *LAYER_KEYS, *INITS, *SINC_WINDOWS, *CONV1D_PADDING_MODES, *REDUCTIONS,
                  *UPSAMPLE_MODES, "same", "valid", "PCM_16", "FLOAT", "PCM_U8"})
HOSTILE = ["nan", "-nan", "inf", "-inf", ".nan", "-1", "0", "-0.0", "1e30", "-1e30", "1e400",
           str(2**70), str(-(2**70)), "''", '""', "null", "true", "false", "[]", "{}", "[1,2]",
           "{a:1}", "1.5", "abc", "${oops}", "0x10", "1_000", "' '"]
RUN_SCRIPT = "run.py"


def schema_keys(cls: type, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, annotation) of every leaf field of a schema dataclass."""
    hints = typing.get_type_hints(cls, vars(schema))
    keys: list[tuple[str, object]] = []
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            keys.extend(schema_keys(hint, key + "."))
        elif key not in EXCLUDED_KEYS:
            keys.append((key, hint))
    return keys


RUN_KEYS = schema_keys(RunConfig)
LAYER_FIELDS = [(name, hint) for name, hint in schema_keys(LayerConfig) if name != "layers"]


def _base(hint: object) -> object:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and args else hint


def typed_value(hint: object) -> st.SearchStrategy[str]:
    """A value of the key's own type, as the command line spells it."""
    base = _base(hint)
    if base is bool:
        return st.sampled_from(["true", "false"])
    if base is int:
        return st.integers(-3, 70_000).map(str)
    if base is float:
        return st.floats(-10, 1e5, allow_nan=False).map(repr)
    return st.sampled_from(CHOICES)  # str and Any: the spellings the checks know, or near them


def hostile_value() -> st.SearchStrategy[str]:
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                   max_size=12)
    return st.one_of(st.sampled_from(HOSTILE), text,
                     st.integers(-(2**80), 2**80).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


def within_budget(key: str, value: str) -> bool:
    limit = BUDGET_LIMITED.get(key)
    if limit is None:
        return True
    try:
        return float(value) <= limit
    except ValueError:
        return True


@st.composite
def overrides(draw) -> list[str]:
    chosen = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            key, hint = draw(st.sampled_from(RUN_KEYS))
        else:
            name, hint = draw(st.sampled_from(LAYER_FIELDS))
            key = f"model.layers.{draw(st.integers(0, 3))}.{name}"
        value = draw(st.one_of(typed_value(hint), hostile_value()))
        if within_budget(key, value):
            chosen.append(f"{draw(st.sampled_from(['', '', '+', '++']))}{key}={value}")
    if draw(st.booleans()):
        chosen.insert(0, f"model={draw(st.sampled_from(SMALL_PRESETS))}")
    return chosen


@st.composite
def audio_files(draw, folder: Path) -> Path:
    """A small audio file of random shape, or garbage bytes named like one."""
    index = len(list(folder.iterdir()))
    if draw(st.integers(0, 9)) == 0:
        path = folder / f"garbage{index}.{draw(st.sampled_from(['wav', 'flac', 'mp3']))}"
        path.write_bytes(draw(st.binary(max_size=200)))
        return path
    frames = draw(st.integers(0, 2000))
    channels = draw(st.integers(1, 3))
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100, 48000, 1000, 96000]))
    fmt, subtype = draw(st.sampled_from([("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "PCM_U8"),
                                         ("WAV", "PCM_24"), ("WAV", "DOUBLE"),
                                         ("FLAC", "PCM_16")]))
    seed = draw(st.integers(0, 2**32 - 1))
    data = np.random.default_rng(seed).uniform(-1, 1, (frames, channels))
    path = folder / f"clip{index}.{fmt.lower()}"
    soundfile.write(str(path), data, rate, subtype=subtype, format=fmt)
    return path


def check(examples: int, workdir: Path, record: bool = False, full: bool = False) -> list[str]:
    """Try `examples` command lines; assert each keeps the promise (with `record`, collect the
    ones that break it instead, to survey a branch: CONVSCOPE_PROPERTY_RECORD=1). With `full`
    (CONVSCOPE_PROPERTY_FULL=1) each runs whole, not only through planning: values that pass
    planning and break a later stage (plots, WAVs, evaluate) show only there; seconds each."""
    found: list[str] = []
    audio_dir = workdir / "audio"
    audio_dir.mkdir()
    runs = iter(range(10**9))

    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def boundary(data) -> None:
        audio = data.draw(audio_files(audio_dir), label="audio")
        args = ["data=sample", f"data.path={audio}", "data.start=0", "data.end=null",
                *data.draw(overrides(), label="overrides"),
                f"hydra.run.dir={workdir / 'runs' / str(next(runs))}"]
        outcome = run_in_process(args, timeout_s=120 if full else 20, full=full)
        problem = outcome.problem()
        if record and problem is not None:
            found.append(f"{RUN_SCRIPT} {' '.join(args)}\n{problem[-1500:]}")
            return
        assert problem is None, f"{RUN_SCRIPT} {' '.join(args)}\n{problem}"

    boundary()
    return found


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else int(
        os.environ.get("CONVSCOPE_PROPERTY_EXAMPLES", DEFAULT_EXAMPLES))
    record = os.environ.get("CONVSCOPE_PROPERTY_RECORD") == "1"
    full = os.environ.get("CONVSCOPE_PROPERTY_FULL") == "1"
    with tempfile.TemporaryDirectory(prefix="convscope-property-") as tmp:
        for finding in check(count, Path(tmp), record, full):
            print("FINDING", finding, sep="\n", flush=True)
    print(f"cli property: {count} examples, every one exit 0 or one error line and exit 2")
