"""Shared fixtures: the (backend, device) targets every transform test is crossed with, and the
skip rule for `cuda`-marked tests."""

import pytest
import torch

from common import targets

TARGETS = targets()
CPU_TARGETS = [t for t in TARGETS if t.device == "cpu"]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=TARGETS, ids=str, scope="session")
def target(request):
    """Every fast backend on every device present (see common.targets)."""
    return request.param


@pytest.fixture(params=CPU_TARGETS, ids=str, scope="session")
def cpu_target(request):
    """The fast CPU backends: for tests of numpy inputs and CPU-only behaviour."""
    return request.param
