"""The backend contract (gpudist/backends/contract.py): every backend runs the op's argument
checks with the op's messages, and the convention table is the C++ one."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

from common import (
    Target,
    assert_close_map,
    assert_matches,
    brute_force_metric,
    kervadec_phi,
    multilabel_reference,
    scipy_edt,
    targets,
)
from gpudist import backends
from gpudist.backends import contract, registry, scipy_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")


def _every_backend() -> list[Target]:
    """The fast targets and the scipy reference on the CPU."""
    return targets() + [Target("scipy", "cpu")]


MASK = torch.ones(2, 5, 6, dtype=torch.bool)
GOOD = dict(src=MASK, num_classes=0, spacing=[1.0, 2.0], convention="edt", black_border=False,
            dtype=torch.float32, max_distance=None)
BAD = [  # (the arguments that differ from GOOD, the op's message)
    (dict(spacing=[]), "spacing must have one value per spatial axis (>= 1)"),
    (dict(spacing=[1.0]), "src must be (batch, *spatial) with 1 spatial dims, got 3 dims"),
    (dict(dtype=torch.int32), "dtype must be float32 or float64"),
    (dict(num_classes=-1, src=MASK.long()), "num_classes must be >= 0"),
    (dict(src=MASK.byte()), "a mask src must be bool, got"),
    (dict(src=MASK.float(), num_classes=2), "labels must be uint8, int32 or int64, got"),
    (dict(spacing=[1.0, 0.0]), "spacing must be positive and finite"),
    (dict(spacing=[1.0, float("inf")]), "spacing must be positive and finite"),
    (dict(convention="level"), "unknown convention 'level'"),
    (dict(convention="sdf", black_border=True),
     "black_border applies to the edt conventions only, not 'sdf'"),
    (dict(max_distance=-1.0), "max_distance must be >= 0"),
    (dict(max_distance=float("nan")), "max_distance must be >= 0"),
    (dict(convention="kervadec", max_distance=2.0),
     "max_distance applies to the edt conventions only"),
    # a spacing row per item (B = 2 rows of 2): each row checked, the row named
    (dict(spacing=[1.0, 2.0, 1.0, 0.0]), "spacing must be positive and finite, in row 1"),
    (dict(spacing=[1.0, 1e-30, 1.0, 2.0]),
     "spacing: the largest value must be at most 1e+18 times the smallest for torch.float32 "
     "output, got 1 and 1e-30, in row 0"),
    (dict(spacing=[1.0, 2.0, 3.0]), "src must be (batch, *spatial) with 3 spatial dims, got 3 "
     "dims (or one row of spacing per batch item: B * ndim values)"),
]


@pytest.mark.parametrize("changes,message", BAD, ids=[m for _, m in BAD])
def test_every_backend_rejects_bad_arguments_with_the_ops_message(changes, message):
    args = GOOD | changes
    seen = {}
    for target in _every_backend():
        fn = backends.resolve(target.backend, torch.device(target.device))
        with pytest.raises(ValueError) as info:
            fn(**(args | {"src": args["src"].to(target.device)}))
        seen[str(target)] = str(info.value).splitlines()[0]
    assert all(m.startswith("gpudist: " + message) for m in seen.values()), seen
    assert len(set(seen.values())) == 1, seen  # word for word the same everywhere


def test_convention_table_is_the_kernels_enum():
    """CONVENTIONS lists the names of enum Convention (kernels/edt_line.cuh) in its order, and the
    op's parse_convention maps each name to its enumerator."""
    header = os.path.join(CSRC, "kernels", "edt_line.cuh")
    parser = os.path.join(CSRC, "distance_transform", "distance_transform.cpp")
    if not (os.path.isfile(header) and os.path.isfile(parser)):
        pytest.skip("the C++ sources are not beside these tests (an installed copy)")
    enum = re.search(r"enum Convention \{(.*?)\};", open(header).read(), re.S).group(1)
    values = {name: int(v) for name, v in re.findall(r"(k\w+) = (\d+)", enum)}
    parsed = dict(re.findall(r'if \(name == "(\w+)"\) return (k\w+);', open(parser).read()))
    assert list(parsed) == list(contract.CONVENTIONS)
    assert [values[parsed[name]] for name in contract.CONVENTIONS] == list(range(5))
    assert contract.TWO_SIDED == tuple(n for n in contract.CONVENTIONS if values[parsed[n]] >= 2)


@pytest.mark.parametrize("convention", contract.CONVENTIONS)
def test_each_convention_name_means_the_same_on_every_backend(convention):
    rng = np.random.default_rng(contract.convention_code(convention))
    mask = rng.random((2, 9, 11)) < 0.6
    spacing = (0.7, 1.9)
    if convention.startswith("edt"):
        ref = np.stack([scipy_edt(m, spacing) for m in mask])
        expected = ref ** 2 if convention == "edt_squared" else ref
    elif convention == "kervadec":
        expected = np.stack([kervadec_phi(m, spacing) for m in mask])
    else:
        from scipy import ndimage

        d_out = np.stack([ndimage.distance_transform_edt(~m, sampling=spacing) for m in mask])
        d_in = np.stack([ndimage.distance_transform_edt(m, sampling=spacing) for m in mask])
        half = 0.5 * min(spacing)
        expected = (np.where(mask, half - d_in, d_out - half) if convention == "sdf"
                    else d_out + d_in)
    for target in _every_backend():
        fn = backends.resolve(target.backend, torch.device(target.device))
        out = fn(target.put(mask), 0, list(spacing), convention, False, torch.float64)
        assert_close_map(out, expected)


@pytest.mark.parametrize("num_classes,convention,shape", [
    (0, "edt", (3, 9, 14)), (0, "sdf", (4, 5, 6, 7)), (3, "kervadec", (2, 8, 11)),
    (0, "edt_squared", (3, 40)), (2, "unsigned", (3, 4, 5, 6))], ids=str)
def test_every_backend_takes_a_spacing_row_per_item(num_classes, convention, shape):
    """B * ndim spacing values: item b (with its classes) transformed with row b, in one call,
    rows of very different scales included (each row has its own scale)."""
    rng = np.random.default_rng(len(shape) + num_classes)
    b, nd = shape[0], len(shape) - 1
    rows = [tuple(rng.uniform(0.2, 3.0, nd)) for _ in range(b)]
    rows[-1] = tuple(1e4 * s for s in rows[-1])
    if num_classes:
        src = torch.from_numpy(rng.integers(0, num_classes, shape)).to(torch.uint8)
    else:
        src = torch.from_numpy(rng.random(shape) < 0.6)
    flat = [s for row in rows for s in row]
    expected = torch.cat([scipy_reference.distance_transform(src[i:i + 1], num_classes, row,
                                                             convention, False, torch.float64)
                          for i, row in enumerate(rows)])
    for target in _every_backend():
        fn = backends.resolve(target.backend, torch.device(target.device))
        out = fn(target.put(src), num_classes, flat, convention, False, torch.float64)
        assert_close_map(out, expected.numpy())


# The variant ops (multilabel_edt, metric_transform, feature_transform): their arguments after
# (src, spacing), and the checks they share (csrc variant_args.h), each with the op's message.
VARIANT_REST = {"multilabel_edt": (False, False), "metric_transform": ("taxicab", False),
                "feature_transform": ()}
VARIANT_BAD = [  # (spacing, dtype, the message)
    ([], torch.float32, "spacing must have one value per spatial axis (>= 1)"),
    ([1.0], torch.float32, "{name} must be (batch, *spatial) with 1 spatial dims, got 3 dims "
     "(or one row of spacing per batch item: B * ndim values)"),
    ([1.0, 2.0], torch.int32, "dtype must be float32 or float64"),
    ([1.0, -1.0], torch.float32, "spacing must be positive and finite"),
    ([1.0, 2.0, float("nan"), 1.0], torch.float32, "spacing must be positive and finite, in row 1"),
]


@pytest.mark.parametrize("op", list(VARIANT_REST))
@pytest.mark.parametrize("spacing,dtype,message", VARIANT_BAD, ids=[m for *_, m in VARIANT_BAD])
def test_every_variant_backend_rejects_bad_arguments_with_the_ops_message(op, spacing, dtype,
                                                                          message):
    name = "labels" if op == "multilabel_edt" else "src"
    seen = {}
    for target in _every_backend():
        fn = registry.resolve_variant(op, target.backend, torch.device(target.device))
        with pytest.raises(ValueError) as info:
            fn(MASK.to(target.device), spacing, *VARIANT_REST[op], dtype)
        seen[str(target)] = str(info.value).splitlines()[0]
    expected = "gpudist: " + message.format(name=name)
    assert all(m == expected for m in seen.values()), seen


@pytest.mark.parametrize("op", list(VARIANT_REST))
@pytest.mark.parametrize("shape", [(3, 9, 14), (4, 5, 6, 7), (3, 40)], ids=str)
def test_every_variant_backend_takes_a_spacing_row_per_item(op, shape):
    """B * ndim spacing values in the variant ops: item b transformed with row b, in one call,
    rows of very different scales included. The scipy reference's metrics need isotropic rows,
    so those rows are isotropic there and anisotropic elsewhere."""
    rng = np.random.default_rng(len(shape) + len(op))
    b, nd = shape[0], len(shape) - 1
    mask = rng.random(shape) < 0.7
    for target in _every_backend():
        isotropic = op == "metric_transform" and target.backend == "scipy"
        rows = [tuple(rng.uniform(0.2, 3.0, 1 if isotropic else nd)) * (nd if isotropic else 1)
                for _ in range(b)]
        rows[-1] = tuple(1e4 * s for s in rows[-1])
        flat = [s for row in rows for s in row]
        fn = registry.resolve_variant(op, target.backend, torch.device(target.device))
        if op == "multilabel_edt":
            labels = rng.integers(0, 3, shape)
            out = fn(target.put(torch.from_numpy(labels)), flat, False, False, torch.float64)
            expected = [multilabel_reference(labels[i], rows[i], False) for i in range(b)]
        elif op == "metric_transform":
            out = fn(target.put(torch.from_numpy(mask)), flat, "chessboard", False, torch.float64)
            expected = [brute_force_metric(mask[i], rows[i], "chessboard", False)
                        for i in range(b)]
        else:
            out, feat = fn(target.put(torch.from_numpy(mask)), flat, torch.float64)
            expected = [scipy_edt(mask[i], rows[i]) for i in range(b)]
            # each item's features point at a zero at its distance, in its own units
            for i in range(b):
                coords = np.stack(np.unravel_index(feat[i].cpu().numpy(), shape[1:]))
                grid = np.stack(np.indices(shape[1:]))
                h = np.asarray(rows[i]).reshape((nd,) + (1,) * nd)
                np.testing.assert_allclose(np.sqrt((((coords - grid) * h) ** 2).sum(0)),
                                           expected[i], rtol=1e-12)
        for i in range(b):
            assert_matches(out[i], expected[i], rtol=1e-12)


def test_max_distance_bounds_each_item_in_its_own_units():
    """max_distance with a spacing row per item: every distance up to it is exact in every item,
    whatever the item's scale (the CPU skips work beyond it, per row)."""
    rng = np.random.default_rng(9)
    src = torch.from_numpy(rng.random((3, 30, 40)) < 0.97)
    rows = [(1.0, 1.0), (0.1, 0.2), (5.0, 3.0)]
    flat = [s for row in rows for s in row]
    for target in _every_backend():
        fn = backends.resolve(target.backend, torch.device(target.device))
        out = fn(target.put(src), 0, flat, "edt", False, torch.float64, 4.0).cpu()
        for i, row in enumerate(rows):
            ref = torch.from_numpy(scipy_edt(src[i].numpy(), row))
            near = ref <= 4.0
            torch.testing.assert_close(out[i][near], ref[near], rtol=1e-12, atol=0)
            assert bool((out[i][~near] > 4.0).all())  # what edt() then sets to +inf
