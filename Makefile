# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv when it is missing or older than pyproject.toml / setup.py / constraints.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test install install-dev bench sample clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch first, alone and pinned, so nothing can pull a CUDA build in its place.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml setup.py constraints.txt
	$(PIP_INSTALL) "torch==2.13.0"
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[dev,launchers]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(PY) scripts/run.py

# One worker per core (pytest-xdist); a test file stays on one worker, so a module's fixtures
# (the README's commands, a browser) are made once. `pytest -m slow` runs the long checks.
test: $(VENV)/.installed-dev
	$(PY) -m pytest -n auto --dist loadfile

sample: $(VENV)/.installed
	$(PY) scripts/make_sample_audio.py

# scripts/bench.py: every case; the tables go to docs/benchmarks.md (+ .json) (~12 min)
bench: $(VENV)/.installed
	$(PY) scripts/bench.py --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
