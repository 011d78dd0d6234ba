"""The implementations of the distance transform and the choice among them.

- `contract`: what every backend takes and returns (argument checks, conventions, output shape);
- `extension`: the compiled `gpudist._C` (CPU kernels, and CUDA kernels when built with them);
- `cupy_nvrtc`: the same CUDA kernels compiled at run time by NVRTC through CuPy;
- `numba_cpu`: the CPU fallback when the extension is not built;
- `scipy_reference`: scipy in float64, the independent reference;
- `registry`: `available_backends()` and `resolve()`, which picks one for a device.
"""

from .registry import NAMES, available_backends, resolve

__all__ = ["NAMES", "available_backends", "resolve"]
