"""Shared fixtures: the backends under test, and the skip rule for `cuda`-marked tests."""

import pytest
import torch

import gpudist

FAST_BACKENDS = [b for b in gpudist.available_backends() if b in ("extension", "numba")]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=FAST_BACKENDS, scope="session")
def backend(request):
    """Every compiled/JIT CPU backend present in this environment."""
    return request.param
