"""What the benchmark runs: gpudist's backends and the optional peer implementations.

Each `Runner` turns a boolean numpy mask into the implementation's natural input (`prepare`,
untimed: e.g. a CUDA tensor, or a float tensor for kornia) and runs one transform of the whole
(batch..., spatial...) array (`run`, timed), looping per image for peers without a batch axis.
Peers are imported under try/except; the ones missing are listed with the reason.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import gpudist

from .cases import Case


@dataclass
class Runner:
    """One column of the benchmark table.

    `work(case)` is a cost model (arbitrary units) and `prior_s_per_work` a pessimistic guess of
    seconds per unit, used to skip calls that would exceed the time limit before a larger case
    of the same runner has been measured. `bytes_per_voxel` estimates the peak host memory,
    per image when `per_image`, else for the whole array.
    """

    name: str
    device: str
    version: str
    prepare: Callable[[np.ndarray, Case], Any]
    run: Callable[[Any, Case], Any]
    supports: Callable[[Case], str | None]
    gpudist: bool = False
    exact: bool = True
    work: Callable[[Case], float] = lambda case: float(case.voxels)
    prior_s_per_work: float = 1e-7
    bytes_per_voxel: float = 16.0
    per_image: bool = False


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _images(mask: Any, case: Case) -> Any:
    """(items, *spatial) view of a numpy, torch or cupy array."""
    return mask.reshape((case.items, *case.spatial))


def _spacing(case: Case) -> tuple[float, ...]:
    return case.spacing or (1.0,) * case.ndim


def _anisotropic(case: Case) -> bool:
    return case.spacing is not None and len(set(case.spacing)) > 1


def _only_dims(*dims: int) -> Callable[[Case], str | None]:
    def supports(case: Case) -> str | None:
        return None if case.ndim in dims else f"{case.ndim}-D not supported"
    return supports


def _prior(device: str) -> float:
    """Seconds per work unit guessed for the torch-op peers (kornia, torch-distmap)."""
    return 2e-9 if device == "cpu" else 1e-10


def _gpudist(backend: str, device: str) -> Runner | None:
    """gpudist with `backend` on `device`, or None when that pair does not run here."""
    try:
        gpudist.edt(torch.zeros((2, 2), dtype=torch.bool, device=device), backend=backend)
    except (RuntimeError, ValueError):
        return None
    return Runner(
        name=f"gpudist:{backend}" + (f":{device}" if device != "cpu" else ""),
        device=device, version=gpudist.__version__, gpudist=True,
        prepare=lambda mask, case: torch.from_numpy(mask).to(device),
        run=lambda x, case: gpudist.edt(x, case.spacing, ndim=case.ndim, backend=backend),
        supports=lambda case: None, prior_s_per_work=1e-7, bytes_per_voxel=12.0,
    )


def scipy_runner() -> Runner:
    from scipy import ndimage

    def run(x: np.ndarray, case: Case) -> list[np.ndarray]:
        return [ndimage.distance_transform_edt(im, sampling=case.spacing) for im in x]

    return Runner(name="scipy", device="cpu", version=_version("scipy"),
                  prepare=_images, run=run, supports=lambda case: None,
                  prior_s_per_work=4e-7, bytes_per_voxel=46.0, per_image=True)


def _edt(threads: int) -> Runner:
    import edt

    def run(x: np.ndarray, case: Case) -> list[np.ndarray]:
        return [edt.edt(im, anisotropy=_spacing(case), parallel=threads) for im in x]

    return Runner(name="edt", device="cpu", version=_version("edt"), prepare=_images, run=run,
                  supports=_only_dims(1, 2, 3), prior_s_per_work=2e-7, bytes_per_voxel=12.0,
                  per_image=True)


def _cupy() -> Runner:
    import cupy
    from cupyx.scipy.ndimage import distance_transform_edt

    def run(x: Any, case: Case) -> list[Any]:
        return [distance_transform_edt(im, sampling=case.spacing, float64_distances=False)
                for im in x]

    return Runner(name="cupyx:cuda", device="cuda", version=cupy.__version__,
                  prepare=lambda mask, case: cupy.asarray(_images(mask, case)), run=run,
                  supports=_only_dims(2, 3), prior_s_per_work=1e-8, bytes_per_voxel=0.0)


def _monai(device: str) -> Runner:
    import monai
    from monai.transforms.utils import distance_transform_edt

    def prepare(mask: np.ndarray, case: Case) -> Any:
        x = _images(mask, case)  # the images as MONAI's channels
        return torch.from_numpy(x).to(device) if device == "cuda" else x

    def run(x: Any, case: Case) -> Any:
        sampling = list(case.spacing) if case.spacing else None
        return distance_transform_edt(x, sampling=sampling)

    return Runner(name="monai" + (":cuda" if device == "cuda" else ""), device=device,
                  version=monai.__version__, prepare=prepare, run=run,
                  supports=_only_dims(2, 3), prior_s_per_work=4e-7,
                  bytes_per_voxel=46.0 if device == "cpu" else 0.0, per_image=device == "cpu")


def _distmap(device: str) -> Runner:
    from distmap import euclidean_distance_transform

    def run(x: torch.Tensor, case: Case) -> torch.Tensor:
        return euclidean_distance_transform(x, ndim=case.ndim, vx=list(_spacing(case)))

    return Runner(name="torch-distmap" + (":cuda" if device == "cuda" else ""), device=device,
                  version=_version("torch-distmap"),
                  prepare=lambda mask, case: torch.from_numpy(mask).to(device, torch.float32),
                  run=run, supports=lambda case: None,
                  work=lambda case: float(case.voxels * sum(case.spatial)),
                  prior_s_per_work=_prior(device), bytes_per_voxel=40.0)


def _kornia(device: str) -> Runner:
    import kornia
    from kornia.contrib import distance_transform

    def prepare(mask: np.ndarray, case: Case) -> torch.Tensor:
        # kornia measures the distance to the nearest NONZERO element: give it the background.
        x = torch.from_numpy(_images(mask, case)).logical_not()
        return x.unsqueeze(1).to(device, torch.float32)

    def supports(case: Case) -> str | None:
        if _anisotropic(case):
            return "no spacing argument"
        return _only_dims(2, 3)(case)

    def run(x: torch.Tensor, case: Case) -> torch.Tensor:
        out = distance_transform(x)
        return out * case.spacing[0] if case.spacing else out

    return Runner(name="kornia" + (":cuda" if device == "cuda" else ""), device=device,
                  version=kornia.__version__, prepare=prepare, run=run, supports=supports,
                  exact=False, work=lambda case: float(case.voxels * max(case.spatial)
                                                        * 3**case.ndim),
                  prior_s_per_work=_prior(device), bytes_per_voxel=40.0)


def discover(threads: int) -> tuple[list[Runner], dict[str, str]]:
    """Runners usable here (gpudist's first), and {peer: why it is missing}."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runners = [r for b in gpudist.available_backends() if b != "scipy"
               for d in devices if (r := _gpudist(b, d)) is not None]
    factories: list[tuple[str, Callable[[], Runner]]] = [
        ("scipy", scipy_runner), ("edt", lambda: _edt(threads)),
        ("torch-distmap", lambda: _distmap("cpu")), ("monai", lambda: _monai("cpu")),
        ("kornia", lambda: _kornia("cpu")),
    ]
    if "cuda" in devices:
        factories += [("cupyx:cuda", _cupy), ("torch-distmap:cuda", lambda: _distmap("cuda")),
                      ("kornia:cuda", lambda: _kornia("cuda"))]
        if _has_cucim():
            factories.append(("monai:cuda", lambda: _monai("cuda")))
    missing: dict[str, str] = {}
    for name, factory in factories:
        try:
            runners.append(factory())
        except ImportError as exc:
            missing[name] = f"not installed ({exc.name or exc})"
    return runners, missing


def _has_cucim() -> bool:
    try:
        import cucim  # noqa: F401
    except ImportError:
        return False
    return True
