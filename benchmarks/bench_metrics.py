"""HD95 + ASSD + NSD of a (2, 3, 128, 128, 128) batch: gpudist.metrics vs MONAI, same run.

gpudist computes the three metrics from one batched distance computation per direction
(`surface_metrics(..., metrics=("hd95", "assd", "nsd"))`); MONAI needs its three metric classes
(HausdorffDistanceMetric(percentile=95), SurfaceDistanceMetric(symmetric=True),
SurfaceDiceMetric), each looping over (b, c) in Python. On CPU MONAI >= 1.6 uses a KDTree over
the surface voxels ("MONAI"); "MONAI-EDT" is its dense distance-transform path (the CPU method up
to 1.5). On CUDA tensors MONAI uses CuPy/cuCIM when installed, so `compare(device="cuda")`
measures GPU vs MONAI+CuPy.

    python benchmarks/bench_metrics.py                  # CPU, 128^3
    python benchmarks/bench_metrics.py --threads 1      # CPU, one intra-op thread
    python benchmarks/bench_metrics.py --device cuda    # GPU check
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from gpudist import metrics

SPACING = (1.0, 0.8, 1.5)
TOLERANCE = 2.0


def make_case(size: int = 128, batch: int = 2, classes: int = 3, seed: int = 0,
              device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Ellipsoids of different sizes per class; pred is target shifted, resized and roughened,
    plus a small far blob in some items."""
    rng = np.random.default_rng(seed)
    grid = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * 3,
                                      indexing="ij"))
    pred = torch.zeros((batch, classes) + (size,) * 3, dtype=torch.bool)
    target = torch.zeros_like(pred)
    for b in range(batch):
        for c in range(classes):
            centre = torch.tensor(rng.uniform(0.35, 0.65, 3) * size).view(3, 1, 1, 1)
            radii = torch.tensor(rng.uniform(0.1, 0.3, 3) * size).view(3, 1, 1, 1)
            target[b, c] = (((grid - centre) / radii) ** 2).sum(0) <= 1
            shift = torch.tensor(rng.normal(0, 1.5, 3)).view(3, 1, 1, 1)
            scale = torch.tensor(rng.uniform(0.9, 1.1, 3)).view(3, 1, 1, 1)
            noise = torch.from_numpy(rng.normal(0, 0.05, (size,) * 3)).float()
            pred[b, c] = (((grid - centre - shift) / (radii * scale)) ** 2).sum(0) + noise <= 1
            if rng.random() < 0.5:
                lo = int(size * 0.85)
                pred[b, c, lo:lo + 4, lo:lo + 4, lo:lo + 4] = True
    return pred.to(device), target.to(device)


def run_gpudist(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    out = metrics.surface_metrics(pred, target, ("hd95", "assd", "nsd"), tolerance=TOLERANCE,
                                  spacing=SPACING, include_background=True)
    return dict(out)


def run_monai(pred: torch.Tensor, target: torch.Tensor,
              kdtree: bool = True) -> dict[str, torch.Tensor]:
    """MONAI's three metric classes. On CPU MONAI >= 1.6 finds nearest surface voxels with a
    scipy KDTree; kdtree=False takes its dense-EDT path instead (MONAI <= 1.5's CPU method)."""
    import monai.metrics.utils as monai_utils
    from monai.metrics import HausdorffDistanceMetric, SurfaceDiceMetric, SurfaceDistanceMetric

    classes = pred.shape[1]
    kwargs = dict(y_pred=pred.float(), y=target.float(), spacing=SPACING)
    saved = monai_utils.has_scipy_kdtree
    monai_utils.has_scipy_kdtree = saved and kdtree
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {
                "hd95": HausdorffDistanceMetric(include_background=True, percentile=95,
                                                reduction="none")(**kwargs),
                "assd": SurfaceDistanceMetric(include_background=True, symmetric=True,
                                              reduction="none")(**kwargs),
                "nsd": SurfaceDiceMetric([TOLERANCE] * classes, include_background=True,
                                         reduction="none")(**kwargs),
            }
    finally:
        monai_utils.has_scipy_kdtree = saved


def _time(fn: Callable[[], dict], device: str, repeats: int) -> tuple[float, dict]:
    """Best wall time of `repeats` runs (after one warm-up) and the last result."""
    out = fn()
    best = math.inf
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def compare(size: int = 128, device: str = "cpu", repeats: int = 3,
            monai_repeats: int = 1) -> dict[str, float]:
    """Times gpudist and MONAI on the same batch and device; prints and returns the times
    (seconds), the ratio and the largest difference between their results."""
    pred, target = make_case(size, device=device)
    t_ours, ours = _time(lambda: run_gpudist(pred, target), device, repeats)
    print(f"{'gpudist':10s}{device}: {t_ours * 1e3:9.1f} ms  (HD95 + ASSD + NSD, batch "
          f"{tuple(pred.shape)}, spacing {SPACING})")
    result = {"gpudist_s": t_ours}
    try:
        import monai  # noqa: F401
    except ImportError:
        print("MONAI is not installed: no comparison")
        return result
    for label, kdtree in (("MONAI", True), ("MONAI-EDT", False)):
        if kdtree is False and device != "cpu":
            break  # on CUDA MONAI always takes the dense EDT (CuPy) path
        t_monai, ref = _time(lambda kd=kdtree: run_monai(pred, target, kd), device,
                             monai_repeats)
        diff = max(float((ours[k].double().cpu() - ref[k].double().cpu()).abs().max())
                   for k in ours)
        print(f"{label:10s}{device}: {t_monai * 1e3:9.1f} ms  -> gpudist is "
              f"{t_monai / t_ours:.1f}x faster; max |difference| {diff:.2e}")
        result.update({f"{label}_s": t_monai, f"{label}_ratio": t_monai / t_ours,
                       f"{label}_max_abs_diff": diff})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--monai-repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); on a shared, "
                             "oversubscribed CPU 1 can be faster than several")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    compare(args.size, args.device, args.repeats, args.monai_repeats)


if __name__ == "__main__":
    main()
