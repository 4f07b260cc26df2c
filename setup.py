"""The one packaging detail pyproject.toml can't say: the top-level configs/ and data/ folders
and docs/explorer.html (their only copies in the repo) ship inside the package as
convscope/configs, convscope/data and convscope/docs, so an installed convscope finds its configs,
sample audio and explorer page from any directory. hydra_plugins/ is a namespace package (no
__init__.py, shared with the Hydra plugins installed beside it), which find_packages skips: its
one package, convscope's SLURM launcher, is named."""

from setuptools import find_packages, setup

setup(
    packages=find_packages("src") + ["convscope.configs", "convscope.data", "convscope.docs",
                                     "hydra_plugins.convscope_slurm_launcher"],
    package_dir={"": "src", "convscope.configs": "configs", "convscope.data": "data",
                 "convscope.docs": "docs"},
    package_data={"convscope.configs": ["*.yaml", "*/*.yaml"], "convscope.data": ["*.wav"],
                  "convscope.docs": ["explorer.html"]},
)
