"""model=module: the user's own nn.Module, imported, built, loaded and run, each failure one line.

`model.target` is the one door through which convscope runs code it did not write (layer types in
model.layers stay allow-listed). It names a class (or a function returning a module) as
`package.module.Class`, importable from the run's directory (the user's working directory: console
scripts do not put it on sys.path themselves) or installed, or as `path/to/file.py:Class`.
`model.kwargs` are its keyword arguments; `model.weights` a state_dict file, read with
torch.load(weights_only=True) (no pickled code runs) and loaded strictly.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from convscope.config.schema import ModelConfig
from convscope.errors import ConvscopeError
from convscope.stack.checkpoints import describe_value, read_state_dict
from convscope.stack.config_object import AttrDict, read_config_json
from convscope.stack.describe import DescribedPass, describe_pass
from convscope.stack.forward_progress import progress_logged
from convscope.stack.user_calls import user_exception_text, users_code
from convscope.stack.user_streams import user_code_contained

MAX_LISTED = 6  # key names an error lists before "(+N more)"


def load_user_module(model: ModelConfig, base_dir: Path, seed: int) -> nn.Module:
    """Import model.target, build it with model.kwargs under `seed` (so unloaded weights are
    reproducible), and load model.weights strictly when given."""
    factory = import_target(model.target, base_dir)
    config = config_object(model, base_dir)
    module = build_module(factory, model.target, dict(model.kwargs), seed, base_dir, config)
    if model.weights is not None:
        load_weights(module, resolve(model.weights, base_dir, "model.weights"), model.target,
                     model.weights_key)
    return module


def config_object(model: ModelConfig, base_dir: Path) -> Optional[AttrDict]:
    """The published constructors' `h`: model.config_json's file, or model.h's mapping from
    the command line, as the same attribute-style object (h.upsample_rates)."""
    if model.config_json is not None:
        return read_config_json(resolve(model.config_json, base_dir, "model.config_json"))
    return AttrDict(model.h) if model.h else None


def import_target(target: str, base_dir: Path) -> Callable[..., Any]:
    """The object `target` names: `package.module.Class` or `path/to/file.py:Class`."""
    file_part, _, attribute = target.rpartition(":")
    if file_part.endswith(".py"):
        return _attribute(_import_file(resolve(file_part, base_dir), target), attribute, target)
    parts = target.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise ConvscopeError(f"model.target: {target!r} is neither package.module.Class nor "
                             "path/to/file.py:Class")
    not_found = ConvscopeError(f"model.target: no module named {'.'.join(parts[:-1])!r} (for "
                               f"{target!r}) in {base_dir} or the installed packages")
    with _on_sys_path(base_dir):
        # the longest importable prefix is the module; the rest are attributes (Outer.Inner)
        for split in range(len(parts) - 1, 0, -1):
            module_name = ".".join(parts[:split])
            try:
                with user_code_contained():
                    module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
                    continue  # that prefix is not a module: try a shorter one
                raise _import_error(target, module_name, exc) from exc  # the user's own import
            except KeyboardInterrupt:  # Ctrl-C, SIGTERM: an interrupt, not the user's failure
                raise
            except BaseException as exc:  # SystemExit, GeneratorExit, ... included
                raise _import_error(target, module_name, exc) from exc
            if split < len(parts) - 1 and not hasattr(module, parts[split]):
                raise not_found  # mygen.modles.Generator: the module is misspelt, not a class
            return _attribute(module, ".".join(parts[split:]), target)
    raise not_found


def build_module(factory: Callable[..., Any], target: str, kwargs: dict, seed: int,
                 base_dir: Path, config: Optional[Mapping] = None) -> nn.Module:
    """factory(**kwargs), which must be an nn.Module; its random init drawn from `seed`.
    `config` (model.config_json's object) goes in as `h=` when the signature names an `h`
    (the published classes' name for it), else as the first positional argument."""
    if inspect.isclass(factory) and not issubclass(factory, nn.Module):
        raise ConvscopeError(f"model.target: {target} is a class but not a torch.nn.Module")
    if not callable(factory):
        raise ConvscopeError(f"model.target: {target} is a {type(factory).__name__}, not an "
                             "nn.Module class")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none: let the call itself judge
        signature = None
    args: tuple = ()
    if config is not None and signature is not None and "h" in signature.parameters:
        kwargs = {"h": config, **kwargs}
    elif config is not None:
        args = (config,)
    shown = ["<model.config_json>" for _ in args] + [
        "h=<model.config_json>" if k == "h" and v is config else f"{k}={v!r}"
        for k, v in kwargs.items()]
    call = f"{target}({', '.join(shown)})"
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            given = kwargs if config is None else call  # not the whole config object
            raise ConvscopeError(f"model.kwargs: {target} rejects {given}: {exc} "
                                 f"(its parameters: {signature})") from exc
    torch.manual_seed(seed)
    try:
        with _on_sys_path(base_dir), user_code_contained():  # it may import its package's modules
            module = factory(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise ConvscopeError(f"model.target: {call} raised {user_exception_text(exc)}") from exc
    if not isinstance(module, nn.Module):
        raise ConvscopeError(f"model.target: {call} returned a {type(module).__name__}, not a "
                             "torch.nn.Module")
    return module


def load_weights(module: nn.Module, path: Path, target: str,
                 weights_key: Optional[str] = None) -> None:
    """Load the state_dict in `path` (or its entry, stack.checkpoints) into `module` as torch's
    strict load_state_dict does: it decides, so the compatibility torch keeps (old
    weight_g/weight_v keys into parametrizations.weight_norm) holds here too; its complaints
    become one line."""
    state = read_state_dict(path, weights_key)
    reported: dict[str, list[str]] = {}

    def keep_incompatible(_module: nn.Module, incompatible) -> None:
        # torch lists these after its compatibility hooks ran, before it raises
        reported.update(missing=list(incompatible.missing_keys),
                        unexpected=list(incompatible.unexpected_keys))

    handle = module.register_load_state_dict_post_hook(keep_incompatible)
    try:
        module.load_state_dict(state, strict=True)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        mismatch = state_dict_mismatch(module.state_dict(), state, reported.get("missing", []),
                                       reported.get("unexpected", []))
        raise ConvscopeError(f"model.weights: {path} does not fit {target}: "
                             f"{mismatch or user_exception_text(exc)}") from exc
    finally:
        handle.remove()


def state_dict_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor],
                        missing: list[str], unexpected: list[str]) -> str:
    """torch's missing and unexpected keys and the shape mismatches, as one line; "" when none
    (a failure of another kind, worded by the caller)."""
    shapes = [f"{key} {list(given[key].shape)} in the file, {list(value.shape)} in the model"
              for key, value in expected.items()
              if key in given and given[key].shape != value.shape]
    parts = [f"{label} ({len(items)}): {_listed(items)}" for label, items in (
        ("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if items]
    return "; ".join(parts)


@dataclass(frozen=True)
class ModuleRun:
    """One forward pass of the user's module: describe()'s rows, the kept leaf outputs (by row
    index) and the output waveform (1, channels, samples) on the CPU, float32."""

    passed: DescribedPass
    output: torch.Tensor
    returned_shape: list[int]  # what the module returned: (1, C, L), or (1, L) made (1, 1, L)


def run_user_module(module: nn.Module, x: torch.Tensor, target: str,
                    sample_rate: Optional[Fraction],
                    keep: Callable[[nn.Module], bool], input_channels: int = 0,
                    key: str = "model.target") -> ModuleRun:
    """Run `module` once on x (1, C, L), describing it and keeping what `keep` picks; the user's
    exceptions and a return value that is not a waveform tensor become one-line errors naming
    `key` (the config key the model came from: model.target, model.layers, model). The caller
    checks the output is finite (after the layers it kept: the first non-finite one is named)."""
    refuse_non_finite_parameters(module, target, key)
    with users_code(key, target, list(x.shape)), progress_logged(
            f"{key}: {target}'s forward on {list(x.shape)}"):
        passed = describe_pass(module, x, sample_rate=sample_rate, keep=keep,
                               input_channels=input_channels)
    output = passed.output
    if (not isinstance(output, torch.Tensor) or output.dim() not in (2, 3)
            or output.shape[0] != 1):
        raise ConvscopeError(f"{key}: {target} returned {describe_value(output)}; convscope needs "
                             "a waveform tensor (1, channels, samples) or (1, samples)")
    returned_shape = list(output.shape)
    waveform = output if output.dim() == 3 else output[:, None]
    return ModuleRun(passed, waveform.detach().to("cpu", torch.float32), returned_shape)


def refuse_non_finite_parameters(module: nn.Module, target: str,
                                 key: str = "model.target") -> None:
    """A NaN or inf weight makes every output NaN: name the parameter before anything runs."""
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ConvscopeError(f"{key}: {target}'s {name} holds {bad} non-finite "
                                 f"value(s) (NaN or inf) of {tensor.numel()}; its output would "
                                 "be NaN: check the weights (model.weights) or its init")


def resolve(path: str, base_dir: Path, key: str = "model.target") -> Path:
    """A user path: `~` expanded, relative ones against the run's base dir."""
    try:
        candidate = Path(path).expanduser()
    except RuntimeError as exc:  # pathlib's words for an unknown ~user or no HOME
        raise ConvscopeError(f"{key}: cannot expand {path!r}: no such user or no HOME; write "
                             "the path without ~") from exc
    return candidate if candidate.is_absolute() else base_dir / candidate


@contextmanager
def _on_sys_path(directory: Path) -> Iterator[None]:
    """`directory` first on sys.path while the user's code is imported and built, as `python -m`
    would have it; removed afterwards, so one run's directory does not leak into the next."""
    entry = str(directory)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _import_file(path: Path, target: str):
    if not path.is_file():
        raise ConvscopeError(f"model.target: {path} does not exist (for {target!r})")
    name = f"convscope_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up there
    try:
        with _on_sys_path(path.parent), user_code_contained():  # siblings import as in a script
            spec.loader.exec_module(module)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as exc:  # SystemExit, GeneratorExit, ... included
        del sys.modules[name]
        raise ConvscopeError(f"model.target: importing {path} raised "
                             f"{user_exception_text(exc)}") from exc
    return module


def _attribute(module, dotted: str, target: str):
    found = module
    for name in dotted.split("."):
        if not hasattr(found, name):
            classes = [n for n, obj in vars(module).items() if inspect.isclass(obj)
                       and issubclass(obj, nn.Module) and obj.__module__ == module.__name__]
            hint = f" (its nn.Modules: {_listed(classes)})" if classes else ""
            # a file target's module has a made-up name: the user knows it by the path they gave
            what = target.rsplit(":", 1)[0] if ":" in target else f"module {module.__name__!r}"
            raise ConvscopeError(f"model.target: {what} has no attribute {dotted!r}{hint}")
        found = getattr(found, name)
    return found


def _import_error(target: str, module_name: str, exc: Exception) -> ConvscopeError:
    return ConvscopeError(f"model.target: importing {module_name} (for {target!r}) raised "
                          f"{user_exception_text(exc)}")


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")
