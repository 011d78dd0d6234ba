# Each target sets itself up: a virtual environment in $(VENV), the CPU build of torch when no torch
# is importable (never a CUDA build), then gpudist with its bench extra and its extension built in
# place (`make bench` needs no more), then for `make test` and `make example` the test and nnunet
# extras; every install is constrained to the torch already there, and pip shows what it does.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: bench test example gpu-check setup clean

bench: $(VENV)/.bench
	$(PY) -m gpudist.cli bench --quick

# The nnU-Net test runs in a process of its own: after tests/test_cli.py, test_cuda.py and
# test_cuda_source.py (which loads a compiled CUDA shim into the process with ctypes) in the same
# process, torch.load of its intact checkpoints fails ("record size ... does not match"); after
# test_losses.py or test_metrics.py it passes.
test: $(VENV)/.built
	$(PY) -m pytest -q tests --ignore=tests/test_nnunet.py
	$(PY) -m pytest -q tests/test_nnunet.py

# GDL vs GDL + boundary loss on a synthetic unbalanced task: 3 methods x 3 seeds x 20 epochs.
example: $(VENV)/.built
	$(PY) examples/unbalanced.py --out example-results

# On a machine with a GPU (under 8 minutes): the CuPy backend while the extension builds, then the
# extension, compute-sanitizer, pytest -m cuda, the fused loss; each step time-limited, every row
# printed as measured and appended to $$OUT/gpu_check.jsonl when OUT is set. Without a GPU:
# make gpu-check ARGS=--dry-run (exits 0).
gpu-check:
	$(PYTHON) benchmarks/gpu_check.py $(ARGS)

setup: $(VENV)/.built

# A torch already importable by $(PYTHON) (a CUDA machine) is reused through system site-packages;
# otherwise the CPU wheel is installed by exact version.
$(VENV)/.deps: Makefile
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		echo "creating $(VENV) over the torch of $(PYTHON)"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		echo "creating $(VENV) and installing $(TORCH_SPEC) (the CPU build, ~200 MB)"; \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --progress-bar off "$(TORCH_SPEC)"; \
	fi
	$(VENV)/bin/pip install --progress-bar off --upgrade "setuptools>=69" wheel ninja
	touch $@

# gpudist with its bench extra, its extension compiled against the torch in $(VENV) (a few minutes).
$(VENV)/.bench: $(VENV)/.deps pyproject.toml setup.py $(wildcard csrc/*.cpp csrc/*.h csrc/*/*)
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	@echo "installing gpudist[bench] with $$(cat $(VENV)/constraints.txt), compiling its extension"
	$(VENV)/bin/pip install --progress-bar off -c $(VENV)/constraints.txt --no-build-isolation -e ".[bench]"
	touch $@

# The test and nnunet extras' requirements, installed as such (gpudist, installed above, is not
# rebuilt). nnunetv2 pulls torchvision, which pip would otherwise match with a newer (CUDA) torch:
# the constraints file pins the torch that is installed. The torchvision wheel it then gets is a
# CUDA build that fails to import beside a CPU torch (and breaks torchmetrics); nnU-Net trains
# without it, so it is removed where it cannot be imported.
$(VENV)/.built: $(VENV)/.bench
	$(PY) -c "import tomllib; x = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; print('\n'.join(x['test'] + x['nnunet']))" > $(VENV)/test-requirements.txt
	@echo "installing the test and nnunet extras with $$(cat $(VENV)/constraints.txt) (nnunetv2 brings ~40 packages)"
	$(VENV)/bin/pip install --progress-bar off -c $(VENV)/constraints.txt -r $(VENV)/test-requirements.txt
	@if $(VENV)/bin/pip show -q torchvision 2>/dev/null && ! $(PY) -c "import torchvision" 2>/dev/null; then \
		echo "removing torchvision: it does not import beside this torch"; \
		$(VENV)/bin/pip uninstall -y torchvision; \
	fi
	$(VENV)/bin/pip install --progress-bar off --no-deps medpy==0.5.2   # a test reference; its SimpleITK is not needed
	touch $@

clean:
	rm -rf $(VENV) build dist gpudist/*.so *.egg-info example-results
