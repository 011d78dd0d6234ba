# Each target sets itself up: a virtual environment in $(VENV), the CPU build of torch when no torch
# is importable (never a CUDA build), then gpudist with its test and bench extras, its extension
# built in place, then the job itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: bench test gpu-check setup clean

bench: $(VENV)/.built
	$(PY) -m gpudist.cli bench --quick

test: $(VENV)/.built
	$(PY) -m pytest -q tests

# On a machine with a GPU: build, CUDA tests, every backend vs scipy, timings vs CuPy.
gpu-check:
	$(PYTHON) benchmarks/gpu_check.py

setup: $(VENV)/.built

# A torch already importable by $(PYTHON) (a CUDA machine) is reused through system site-packages;
# otherwise the CPU wheel is installed by exact version.
$(VENV)/.deps: Makefile
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q "$(TORCH_SPEC)"; \
	fi
	$(VENV)/bin/pip install -q --upgrade "setuptools>=69" wheel ninja
	touch $@

$(VENV)/.built: $(VENV)/.deps pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*.h csrc/*/*)
	$(VENV)/bin/pip install -q --no-build-isolation -e ".[test,bench]"
	$(VENV)/bin/pip install -q --no-deps medpy==0.5.2   # a test reference; its SimpleITK is not needed
	touch $@

clean:
	rm -rf $(VENV) build gpudist/*.so *.egg-info
