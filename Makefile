# Each target sets itself up: a virtual environment in $(VENV), the CPU build of torch when no torch
# is importable (never a CUDA build), the extension built in place, then the job itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: bench test setup clean

bench: $(VENV)/.built
	$(PY) -m gpudist.cli bench --quick

test: $(VENV)/.built
	$(PY) -m pytest -q tests

setup: $(VENV)/.built

# A torch already importable by $(PYTHON) (a CUDA machine) is reused through system site-packages;
# otherwise the CPU wheel is installed by exact version.
$(VENV)/.deps: pyproject.toml Makefile
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q "$(TORCH_SPEC)"; \
	fi
	$(VENV)/bin/pip install -q --upgrade "setuptools>=69" wheel ninja
	$(VENV)/bin/pip install -q numpy scipy numba "pytest>=8" "hypothesis>=6.100" "pytest-benchmark>=4" edt
	touch $@

$(VENV)/.built: $(VENV)/.deps setup.py $(wildcard csrc/*.cpp csrc/*.cu csrc/kernels/*)
	$(VENV)/bin/pip install -q --no-build-isolation --no-deps -e .
	touch $@

clean:
	rm -rf $(VENV) build gpudist/*.so *.egg-info
