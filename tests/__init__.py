"""convscope's tests: a package, so helpers import as tests.helpers."""
