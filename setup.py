"""The one packaging detail pyproject.toml can't say: the top-level configs/ and data/ folders
(their only copies in the repo) ship inside the package as convscope/configs and convscope/data,
so an installed convscope finds its configs and sample audio from any directory."""

from setuptools import find_packages, setup

setup(
    packages=find_packages("src") + ["convscope.configs", "convscope.data"],
    package_dir={"": "src", "convscope.configs": "configs", "convscope.data": "data"},
    package_data={"convscope.configs": ["*.yaml", "*/*.yaml"], "convscope.data": ["*.wav"]},
)
