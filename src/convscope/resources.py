"""Where convscope's own files are: the Hydra configs, the bundled audio clips and the explorer page.

In a checkout they are the top-level configs/, data/ and docs/ folders (the one source of each); an
installed wheel carries copies as the package data convscope/configs, convscope/data and
convscope/docs (setup.py maps those folders in; of docs/ only explorer.html). Nothing here imports convscope: layer 0.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parents[1]  # src/convscope -> the repository root


def _first_dir(name: str) -> Path:
    for candidate in (PACKAGE_DIR / name, CHECKOUT_DIR / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"convscope's {name}/ is neither in {PACKAGE_DIR} nor in "
                            f"{CHECKOUT_DIR}: reinstall convscope")


def configs_dir() -> Path:
    """The folder with run.yaml, explain.yaml, learn.yaml and the data/ and model/ groups."""
    return _first_dir("configs")


def bundled_data_dir() -> Path:
    """The folder with sample.wav, speech.wav, tone.wav and constant.wav."""
    return _first_dir("data")


def explorer_page() -> Path:
    """docs/explorer.html: the self-contained transposed-convolution explorer."""
    path = _first_dir("docs") / "explorer.html"
    if not path.is_file():
        raise FileNotFoundError(f"convscope's explorer page {path} is missing: reinstall convscope")
    return path


def bundled(name: str) -> str:
    """The absolute path of a bundled clip, e.g. bundled('sample.wav'): the configs' data group
    refers to the clips as ${bundled:sample.wav}, so they are found from any directory."""
    path = bundled_data_dir() / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in bundled_data_dir().glob("*.wav")))
        raise FileNotFoundError(f"no bundled clip {name!r}; bundled: {known}")
    return str(path)
