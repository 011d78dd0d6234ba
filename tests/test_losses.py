"""Tests of gpudist.losses against reference formulas written here, in float64, independently of
gpudist: the boundary-loss repo's scipy `one_hot2dist` and `SurfaceLoss`, the paper's GDL, the
published weight schedules, and MONAI's HausdorffDTLoss (when monai is installed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import gpudist
from gpudist import losses as L
from gpudist.backends import extension

F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Independent references (numpy / scipy, float64)


def ref_one_hot2dist(seg: np.ndarray, resolution=None) -> np.ndarray:
    """LIVIAETS/boundary-loss utils.one_hot2dist, float64 (seg: (K, *spatial) one-hot)."""
    res = np.zeros(seg.shape, dtype=np.float64)
    for k in range(len(seg)):
        posmask = seg[k].astype(bool)
        if posmask.any():
            negmask = ~posmask
            res[k] = (ndimage.distance_transform_edt(negmask, sampling=resolution) * negmask
                      - (ndimage.distance_transform_edt(posmask, sampling=resolution) - 1)
                      * posmask)
    return res


def ref_surface_loss(probs: np.ndarray, dist: np.ndarray, idc) -> float:
    """LIVIAETS SurfaceLoss: mean of probs[:, idc] * dist[:, idc]."""
    return float((probs[:, idc] * dist[:, idc]).mean())


def ref_gdl(probs: np.ndarray, target: np.ndarray, idc) -> np.ndarray:
    """Per-image generalised Dice of the paper / reference code, (B,)."""
    pc = probs[:, idc].reshape(len(probs), len(idc), -1)
    tc = target[:, idc].reshape(len(target), len(idc), -1)
    w = 1 / (tc.sum(-1) + 1e-10) ** 2
    intersection = w * (pc * tc).sum(-1)
    union = w * (pc.sum(-1) + tc.sum(-1))
    return 1 - 2 * (intersection.sum(1) + 1e-10) / (union.sum(1) + 1e-10)


def ref_unsigned_field(mask: np.ndarray, sampling=None) -> np.ndarray:
    """EDT(m) + EDT(~m), 0 for an empty or full mask (MONAI's HausdorffDTLoss field)."""
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return (ndimage.distance_transform_edt(mask, sampling=sampling)
            + ndimage.distance_transform_edt(~mask, sampling=sampling))


def softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def one_hot_np(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.moveaxis(np.eye(num_classes)[labels], -1, 1)


def blob_labels(shape, num_classes: int, seed: int) -> torch.Tensor:
    """(B, *spatial) labels made of a few random boxes, every class present and none filling."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int64)
    for b in range(shape[0]):
        for k in range(1, num_classes):
            lo = [rng.integers(0, max(1, s - 2)) for s in shape[1:]]
            hi = [lo_i + rng.integers(1, max(2, s // 2)) for lo_i, s in zip(lo, shape[1:])]
            labels[(b, *[slice(a, c) for a, c in zip(lo, hi)])] = k
        labels[(b,) + (0,) * (len(shape) - 1)] = 0
    return torch.from_numpy(labels)


def ref_maps(labels: torch.Tensor, num_classes: int, spacing=None) -> np.ndarray:
    oh = one_hot_np(labels.numpy(), num_classes)
    return np.stack([ref_one_hot2dist(s, spacing) for s in oh])


# ---------------------------------------------------------------------------------------------
# Boundary loss


@pytest.mark.parametrize("shape,spacing", [((2, 12, 10), None), ((2, 12, 10), (1.0, 0.7)),
                                           ((2, 6, 7, 5), (2.0, 1.0, 0.5)), ((3, 17), None)])
@pytest.mark.parametrize("kind", ["labels", "mask", "maps"])
@pytest.mark.parametrize("idc", [None, [1]])
def test_boundary_loss_matches_reference(shape, spacing, kind, idc):
    C = 3
    labels = blob_labels(shape, C, seed=len(shape))
    dist = ref_maps(labels, C, spacing)
    gen = torch.Generator().manual_seed(1)
    z = torch.randn((shape[0], C) + shape[1:], dtype=F64, generator=gen)
    probs = torch.softmax(z, 1).detach().requires_grad_()
    target = {"labels": labels,
              "mask": torch.nn.functional.one_hot(labels, C).movedim(-1, 1).bool(),
              "maps": torch.from_numpy(dist)}[kind]
    loss = L.boundary_loss(probs, target, idc, spacing=spacing)
    classes = list(range(C)) if idc is None else idc
    expected = ref_surface_loss(probs.detach().numpy(), dist, classes)
    assert loss.dtype == F64
    assert loss.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    loss.backward()
    grad = np.zeros_like(dist)
    grad[:, classes] = dist[:, classes] / (len(probs) * len(classes) * np.prod(shape[1:]))
    np.testing.assert_allclose(probs.grad.numpy(), grad, rtol=1e-9, atol=1e-14)

    # From logits: the fused op; the gradient by the chain rule through softmax, in numpy.
    zz = z.clone().requires_grad_()
    fused = L.boundary_loss(zz, target, idc, from_logits=True, spacing=spacing)
    assert fused.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    fused.backward()
    p = softmax_np(z.numpy())
    g = grad  # dL/dp
    expected_dz = p * (g - (p * g).sum(1, keepdims=True))
    np.testing.assert_allclose(zz.grad.numpy(), expected_dz, rtol=1e-8, atol=1e-14)


def test_boundary_loss_reductions_and_module():
    labels = blob_labels((3, 9, 9), 2, seed=0)
    z = torch.randn(3, 2, 9, 9, dtype=F64)
    per_sample = [ref_surface_loss(softmax_np(z[i:i + 1].numpy()), ref_maps(labels[i:i + 1], 2),
                                   [1]) for i in range(3)]
    none = L.BoundaryLoss([1], from_logits=True, reduction="none")(z, labels)
    assert none.shape == (3,)
    np.testing.assert_allclose(none.numpy(), per_sample, rtol=1e-10)
    total = L.BoundaryLoss([1], from_logits=True, reduction="sum")(z, labels)
    assert total.item() == pytest.approx(sum(per_sample), rel=1e-10)
    mean = L.BoundaryLoss([1], from_logits=True)(z, labels)
    assert mean.item() == pytest.approx(np.mean(per_sample), rel=1e-10)


@pytest.mark.parametrize("convention", ["sdf", "unsigned"])
def test_boundary_loss_other_conventions(convention):
    labels = blob_labels((2, 10, 11), 3, seed=3)
    probs = torch.softmax(torch.randn(2, 3, 10, 11, dtype=F64), 1)
    maps = gpudist.labels_to_dist(labels, 3, (0.5, 1.5), convention=convention, dtype=F64)
    got = L.boundary_loss(probs, labels, spacing=(0.5, 1.5), convention=convention)
    assert got.item() == pytest.approx((probs * maps).mean().item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# The fused op


@pytest.mark.parametrize("idc", [[0, 1, 2], [1], [0, 2]])
def test_fused_op_gradcheck(idc):
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(2, 3, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    phi = torch.randn(2, 3, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    op = torch.ops.gpudist.boundary_loss_from_logits
    assert torch.autograd.gradcheck(lambda a, b: op(a, b, idc), (z, phi))
    if idc == [0, 2]:  # the backward is made of torch ops, hence differentiable itself
        assert torch.autograd.gradgradcheck(lambda a, b: op(a, b, idc), (z, phi))


@pytest.mark.parametrize("idc", [[0, 1, 2], [1]])
def test_fused_op_opcheck(idc):
    z = torch.randn(2, 3, 4, 5, dtype=F64, requires_grad=True)
    phi = torch.randn(2, 3, 4, 5, dtype=F64)
    torch.library.opcheck(torch.ops.gpudist.boundary_loss_from_logits.default, (z, phi, idc))


@pytest.fixture(params=["native", "torch"])
def fused_impl(request, monkeypatch):
    """Runs a test on the extension's fused kernels, then on the torch-ops implementation (the one
    used without the extension)."""
    from gpudist.losses import fused

    if request.param == "native" and not fused._native(torch.device("cpu")):
        pytest.skip("the extension is not built")
    if request.param == "torch":
        monkeypatch.setattr(fused, "_native", lambda device: False)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, F64])
@pytest.mark.parametrize("idc", [None, [1, 2]])
def test_fused_matches_unfused(dtype, idc, fused_impl):
    labels = blob_labels((2, 9, 8), 4, seed=5)
    phi = gpudist.labels_to_dist(labels, 4)
    z64 = torch.randn(2, 4, 9, 8, dtype=F64) * 3
    z = z64.to(dtype).requires_grad_()
    fused = L.boundary_loss(z, phi, idc, from_logits=True)
    fused.backward()
    zu = z.detach().to(F64).requires_grad_()
    classes = slice(None) if idc is None else idc
    unfused = (torch.softmax(zu, 1)[:, classes] * phi[:, classes].to(F64)).mean()
    unfused.backward()
    assert fused.dtype == (F64 if dtype == F64 else torch.float32)
    assert z.grad.dtype == dtype
    tol = {torch.float16: 1e-3, torch.bfloat16: 1e-2, torch.float32: 1e-6, F64: 1e-12}[dtype]
    assert fused.item() == pytest.approx(unfused.item(), rel=tol, abs=tol)
    scale = zu.grad.abs().max().item()
    torch.testing.assert_close(z.grad.to(F64), zu.grad, rtol=tol * 10, atol=tol * scale)


@settings(max_examples=8, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(2, 4), spatial=st.lists(st.integers(1, 6), min_size=1,
                                                                  max_size=3),
       data=st.data())
def test_fused_matches_unfused_random_shapes(b, c, spatial, data):
    """Both dtypes the kernels run in, on layouts they must read through (a permuted view)."""
    idc = data.draw(st.lists(st.integers(0, c - 1), min_size=1, max_size=c, unique=True))
    dtype = data.draw(st.sampled_from([torch.float32, F64]))
    gen = torch.Generator().manual_seed(b * 100 + c)
    shape = (b, c, *spatial)
    z64 = torch.randn(shape, dtype=F64, generator=gen) * data.draw(st.sampled_from([1.0, 30.0]))
    phi = (torch.randn(shape, dtype=F64, generator=gen) * 5).to(dtype)
    z = z64.to(dtype)
    if data.draw(st.booleans()):  # channels last: the class axis innermost in memory
        order = (0, *range(2, len(shape)), 1)
        z = z.permute(order).contiguous().permute(np.argsort(order).tolist())
    z.requires_grad_()
    fused = L.boundary_loss(z, phi, idc, from_logits=True, reduction="none", validate=False)
    (g_fused,) = torch.autograd.grad(fused.sum(), z)
    s = sorted(idc)
    z64 = z.detach().to(F64).requires_grad_()
    unfused = (torch.softmax(z64, 1)[:, s] * phi.to(F64)[:, s]).flatten(1).mean(1)
    (g_unfused,) = torch.autograd.grad(unfused.sum(), z64)
    tol = 1e-12 if dtype == F64 else 1e-6
    assert fused.dtype == dtype and g_fused.dtype == dtype
    scale = phi.abs().max().item() + 1
    torch.testing.assert_close(fused.to(F64), unfused, rtol=tol, atol=tol * scale)
    torch.testing.assert_close(g_fused.to(F64), g_unfused, rtol=tol * 10,
                               atol=tol * scale / z[0, 0].numel())


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_fused_kernels_opcheck(dtype):
    if not extension.has_kernel("gpudist::boundary_loss_forward", "cpu"):
        pytest.skip("the extension is not built")
    z, phi = torch.randn(2, 3, 4, 5, dtype=dtype), torch.randn(2, 3, 4, 5, dtype=dtype)
    torch.library.opcheck(torch.ops.gpudist.boundary_loss_forward.default, (z, phi, [0, 2]))
    torch.library.opcheck(torch.ops.gpudist.boundary_loss_backward.default,
                          (torch.rand(2, dtype=dtype), z, phi, [1]))


def test_fused_kernels_reject_bad_arguments():
    if not extension.has_kernel("gpudist::boundary_loss_forward", "cpu"):
        pytest.skip("the extension is not built")
    fwd, bwd = torch.ops.gpudist.boundary_loss_forward, torch.ops.gpudist.boundary_loss_backward
    z = torch.randn(2, 3, 4)
    cases = [
        (lambda: fwd(z[0], z[0], [0]), "logits must be \\(B, C, \\*spatial\\)"),
        (lambda: fwd(z.half(), z.half(), [0]), "logits must be float32 or float64"),
        (lambda: fwd(z, z[:, :2], [0]), "phi must have the shape of logits"),
        (lambda: fwd(z, z.double(), [0]), "phi must have the dtype of logits"),
        (lambda: fwd(z, z, []), "idc must not be empty"),
        (lambda: fwd(z, z, [3]), "idc values must be in \\[0, 3\\)"),
        (lambda: fwd(z, z, [-1]), "idc values must be in"),
        (lambda: fwd(z, z, [1, 1]), "idc values must be unique"),
        (lambda: bwd(torch.ones(3), z, z, [0]), "grad must be \\(B,\\)"),
        (lambda: bwd(torch.ones(2, dtype=F64), z, z, [0]), "grad must be"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_fused_kernels_edge_values(fused_impl):
    """NaN logits give a NaN loss (validate=False lets them through); a -inf or very negative
    logit is a zero probability; an empty batch or spatial extent gives zeros (both
    implementations)."""
    z = torch.tensor([[[0.0], [float("-inf")]], [[float("nan")], [0.0]], [[0.0], [-200.0]],
                      [[3.0], [3.0]]])
    phi = torch.ones_like(z)
    got = L.boundary_loss(z, phi, [1], from_logits=True, reduction="none", validate=False)
    assert got[0] == 0 and torch.isnan(got[1]) and got[2] == 0 and got[3] == 0.5
    finite = z[[0, 2, 3]].requires_grad_()
    (grad,) = torch.autograd.grad(
        L.boundary_loss(finite, phi[[0, 2, 3]], [1], from_logits=True, validate=False), finite)
    assert torch.isfinite(grad).all()
    for shape in ((0, 3, 4), (2, 3, 0)):
        e = torch.zeros(shape, requires_grad=True)
        loss = L.boundary_loss(e, torch.zeros(shape), [1], from_logits=True,
                               reduction="none", validate=False)
        loss.sum().backward()
        assert loss.shape == (shape[0],) and e.grad.shape == shape
        assert torch.equal(loss, torch.zeros(shape[0]))


def test_fused_loss_does_not_depend_on_the_thread_count():
    z, phi = torch.randn(3, 4, 70, 90), torch.randn(3, 4, 70, 90) * 10
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(L.boundary_loss(z, phi, [1, 3], from_logits=True, reduction="none",
                                           validate=False))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], r) for r in results[1:])


def test_fused_saves_only_inputs():
    """Autograd keeps the logits and maps (no new storage) where the unfused graph keeps more."""
    z = torch.randn(2, 3, 16, 16, requires_grad=True)
    phi = torch.randn(2, 3, 16, 16)

    def saved(fn):
        storages = []

        def pack(t):
            storages.append(t.untyped_storage().data_ptr())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return set(storages) - {z.untyped_storage().data_ptr(), phi.untyped_storage().data_ptr()}

    assert saved(lambda: L.boundary_loss(z, phi, from_logits=True, validate=False)) == set()
    assert saved(lambda: (torch.softmax(z, 1) * phi).mean()) != set()


def test_compile_fullgraph_matches_eager():
    """GDL + fused boundary loss from labels (maps computed inside) under fullgraph compile."""
    labels = blob_labels((2, 12, 12), 3, seed=7)

    def total(z, lab):
        return (L.generalized_dice_loss(z, lab, from_logits=True)
                + L.boundary_loss(z, lab, [1, 2], from_logits=True))

    z = torch.randn(2, 3, 12, 12, requires_grad=True)
    eager = total(z, labels)
    (g_eager,) = torch.autograd.grad(eager, z)
    compiled = torch.compile(total, fullgraph=True, dynamic=False)
    got = compiled(z, labels)
    (g_got,) = torch.autograd.grad(got, z)
    torch.testing.assert_close(got, eager, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_got, g_eager, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Generalised Dice


@pytest.mark.parametrize("idc", [None, [0, 1]])
@pytest.mark.parametrize("soft_target", [False, True])
def test_gdl_matches_paper_formula(idc, soft_target):
    C = 3
    labels = blob_labels((3, 8, 9), C, seed=11)
    labels[2] = 0  # an all-background sample: classes 1 and 2 absent (weight 1e20)
    oh = one_hot_np(labels.numpy(), C)
    if soft_target:
        target_np = 0.8 * oh + 0.2 / C
        target = torch.from_numpy(target_np)
    else:
        target_np, target = oh, labels
    z = torch.randn(3, C, 8, 9, dtype=F64, requires_grad=True)
    probs = torch.softmax(z, 1)
    classes = list(range(C)) if idc is None else idc
    got = L.GeneralizedDiceLoss(idc, reduction="none")(probs, target)
    expected = ref_gdl(probs.detach().numpy(), target_np, classes)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-10)
    # Gradient: autograd through the same formula written with torch ops here, in float64.
    tc = torch.from_numpy(target_np)[:, classes].flatten(2)
    pc = probs[:, classes].flatten(2)
    w = 1 / (tc.sum(-1) + 1e-10) ** 2
    ref = (1 - 2 * ((w * (pc * tc).sum(-1)).sum(1) + 1e-10)
           / ((w * (pc.sum(-1) + tc.sum(-1))).sum(1) + 1e-10)).mean()
    (g_ref,) = torch.autograd.grad(ref, z)
    (g_got,) = torch.autograd.grad(L.GeneralizedDiceLoss(idc, from_logits=True)(z, target), z)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-9, atol=1e-15)
    assert torch.isfinite(g_got).all()


def test_gdl_perfect_prediction_is_zero():
    labels = blob_labels((2, 7, 7), 3, seed=2)
    oh = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).to(F64)
    # Not exactly 0: the 1e-10 terms of the formula leave about -1e-10 / (sum_k w_k |g_k|).
    assert L.generalized_dice_loss(oh, labels).item() == pytest.approx(0.0, abs=1e-9)
    assert L.generalized_dice_loss(oh, labels, reduction="sum").item() == pytest.approx(0, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Schedules


def reference_schedule(strategy: str, epochs: int):
    """The published update rules applied step by step, as the reference code does."""
    weights = {"rebalance": [1.0, 0.0], "steal": [1.0, 0.01], "constant": [1.0, 0.01],
               "increase": [1.0, 0.01]}[strategy]
    out = [tuple(weights)]
    for _ in range(epochs):
        a, b = weights
        if strategy == "rebalance":  # paper / Keras port: np.clip(alpha - 0.01, 0.01, 1)
            a = float(np.clip(a - 0.01, 0.01, 1))
            weights = [a, 1 - a]
        elif strategy == "steal":  # scheduler.StealWeight(to_steal=0.01)
            weights = [max(0.1, a - 0.01), b + 0.01]
        elif strategy == "increase":  # 2018 AddWeightLoss(to_add=[0, 0.01])
            weights = [a, b + 0.01]
        out.append(tuple(weights))
    return out


@pytest.mark.parametrize("strategy", ["rebalance", "steal", "increase", "constant"])
def test_schedule_sequences(strategy):
    loss = L.RebalancedLoss(L.GeneralizedDiceLoss(), L.BoundaryLoss(), strategy)
    got = [loss.weights] + [loss.step() for _ in range(150)]
    expected = reference_schedule(strategy, 150)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    if strategy == "rebalance":
        assert got[99] == (0.01, 0.99) and got[150] == (0.01, 0.99)
    if strategy == "steal":
        assert got[90] == (0.1, 0.91) and got[150] == (0.1, 1.51)


def test_schedule_state_dict_round_trip():
    loss = L.RebalancedLoss(L.GeneralizedDiceLoss(), L.BoundaryLoss([1]), "steal")
    for _ in range(37):
        loss.step()
    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    restored = L.RebalancedLoss(L.GeneralizedDiceLoss(), L.BoundaryLoss([1]), "rebalance")
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert (restored.strategy, restored.epoch, restored.weights) == ("steal", 37, loss.weights)
    assert restored.step() == loss.step() == (0.62, 0.39)


def test_rebalanced_loss_value():
    labels = blob_labels((2, 10, 10), 2, seed=4)
    maps = gpudist.labels_to_dist(labels, 2, dtype=F64)
    z = torch.randn(2, 2, 10, 10, dtype=F64)
    gdl, bl = L.GeneralizedDiceLoss(from_logits=True), L.BoundaryLoss([1], from_logits=True)
    loss = L.RebalancedLoss(gdl, bl, "rebalance")
    for _ in range(30):
        loss.step()
    got = loss(z, labels, maps)
    assert got.item() == pytest.approx(0.7 * gdl(z, labels).item() + 0.3 * bl(z, maps).item(),
                                       rel=1e-12)
    assert loss(z, labels).item() == pytest.approx(got.item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Hausdorff DT loss


def ref_hausdorff(probs: np.ndarray, target: np.ndarray, alpha, sampling, one_sided=False):
    """(B, C) Karimi loss with the unsigned field, per sample and channel."""
    out = np.zeros(probs.shape[:2])
    for b in range(probs.shape[0]):
        for c in range(probs.shape[1]):
            d = ref_unsigned_field(target[b, c] > 0.5, sampling) ** alpha
            if not one_sided:
                d = d + ref_unsigned_field(probs[b, c] > 0.5, sampling) ** alpha
            out[b, c] = ((probs[b, c] - target[b, c]) ** 2 * d).mean()
    return out


@pytest.mark.parametrize("variant", ["two_sided", "one_sided"])
@pytest.mark.parametrize("shape,spacing", [((2, 11, 9), (1.5, 0.5)), ((2, 5, 6, 4), None),
                                           ((2, 13), (2.0,))])
def test_hausdorff_matches_formula(variant, shape, spacing):
    C = 3
    labels = blob_labels(shape, C, seed=9)
    z = torch.randn((shape[0], C) + shape[1:], dtype=F64, requires_grad=True)
    loss = L.HausdorffDTLoss(1.5, variant=variant, softmax=True, include_background=True,
                             spacing=spacing, reduction="none")(z, labels)
    probs = softmax_np(z.detach().numpy())
    expected = ref_hausdorff(probs, one_hot_np(labels.numpy(), C), 1.5, spacing,
                             variant == "one_sided")
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    loss.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def _monai_cases():
    for ndim in (2, 3):
        for act in ("softmax", "sigmoid", None):
            for include_background in (False, True):
                for reduction in ("mean", "sum", "none"):
                    for batch in (False, True):
                        yield ndim, act, include_background, reduction, batch


@pytest.mark.parametrize("ndim,act,include_background,reduction,batch", list(_monai_cases()))
def test_hausdorff_monai_parity(ndim, act, include_background, reduction, batch):
    monai_losses = pytest.importorskip("monai.losses", reason="monai is not installed")
    C = 3
    shape = (4, 10, 9) if ndim == 2 else (4, 6, 5, 7)
    labels = blob_labels(shape, C, seed=ndim)
    labels[1] = 0  # all background: both fields zero for the foreground channels
    labels[2] = 2  # one class fills the image
    z = torch.randn((shape[0], C) + shape[1:], dtype=torch.float32) * 2
    pred = z if act is not None else torch.softmax(z, 1)
    kwargs = dict(include_background=include_background, reduction=reduction, batch=batch,
                  softmax=act == "softmax", sigmoid=act == "sigmoid")
    zm, zg = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    expected = monai_losses.HausdorffDTLoss(to_onehot_y=True, **kwargs)(zm, labels[:, None])
    got = L.HausdorffDTLoss(monai_compatible=True, **kwargs)(zg, labels[:, None])
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    expected.sum().backward()
    got.sum().backward()
    torch.testing.assert_close(zg.grad, zm.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:single channel prediction")
def test_hausdorff_monai_parity_one_channel_soft_target_float64():
    monai_losses = pytest.importorskip("monai.losses", reason="monai is not installed")
    gen = torch.Generator().manual_seed(3)
    pred = torch.rand(3, 1, 12, 10, dtype=F64, generator=gen)
    target = torch.rand(3, 1, 12, 10, dtype=F64, generator=gen)
    target[0] = 0.0
    expected = monai_losses.HausdorffDTLoss()(pred, target)
    got = L.HausdorffDTLoss(monai_compatible=True)(pred, target)
    assert got.dtype == expected.dtype == F64
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9)


def test_hausdorff_both_empty_gives_zero_and_no_gradient():
    pred = torch.full((1, 1, 6, 6), 0.3, requires_grad=True)
    target = torch.zeros(1, 1, 6, 6)
    loss = L.hausdorff_dt_loss(pred, target)
    loss.backward()
    assert loss.item() == 0.0 and pred.grad.abs().max() == 0


# ---------------------------------------------------------------------------------------------
# Edge cases, dtypes, N-D


def test_empty_full_class_and_background_only_sample():
    labels = torch.zeros(3, 8, 8, dtype=torch.int64)
    labels[0, 2:5, 3:6] = 1  # sample 0: classes 0 and 1, class 2 empty
    labels[2] = 2  # sample 2: class 2 fills the image; sample 1: all background
    maps = L.boundary_maps(labels, torch.empty(3, 3, 8, 8))
    assert (maps[0, 2] == 0).all() and (maps[1, 1:] == 0).all() and (maps[1, 0] == 0).all()
    assert (maps[2] == 0).all()
    expected0 = ref_one_hot2dist(one_hot_np(labels[:1].numpy(), 3)[0])
    np.testing.assert_allclose(maps[0].numpy(), expected0, atol=1e-5)
    z = torch.randn(3, 3, 8, 8, requires_grad=True)
    total = (L.boundary_loss(z, labels, [1, 2], from_logits=True, reduction="none")
             + L.generalized_dice_loss(z, labels, from_logits=True, reduction="none")
             + L.hausdorff_dt_loss(z, labels, softmax=True, reduction="none").sum(1))
    assert torch.isfinite(total).all()
    total.sum().backward()
    assert torch.isfinite(z.grad).all()
    bl = L.boundary_loss(z, labels, [1, 2], from_logits=True, reduction="none")
    assert bl[1].item() == 0.0 and bl[2].item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, F64])
def test_all_losses_accept_dtypes(dtype):
    labels = blob_labels((2, 10, 10), 3, seed=8)
    z64 = torch.randn(2, 3, 10, 10, dtype=F64)
    acc = F64 if dtype == F64 else torch.float32
    tol = {torch.float16: 5e-3, torch.bfloat16: 3e-2, torch.float32: 1e-5, F64: 1e-12}[dtype]
    for fn in (lambda z: L.boundary_loss(z, labels, from_logits=True),
               lambda z: L.boundary_loss(torch.softmax(z.to(acc), 1).to(dtype), labels),
               lambda z: L.generalized_dice_loss(z, labels, from_logits=True),
               lambda z: L.hausdorff_dt_loss(z, labels, softmax=True)):
        z = z64.to(dtype).requires_grad_()
        out = fn(z)
        out.backward()
        assert out.dtype == acc and z.grad.dtype == dtype and torch.isfinite(z.grad).all()
        reference = fn(z.detach().to(F64))
        assert out.item() == pytest.approx(reference.item(), rel=tol, abs=tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize("shape,dtype", [((2, 3, 16, 16), torch.float32),
                                         ((5, 4, 33, 7, 9), torch.float32),
                                         ((3, 3, 300, 257), F64)])
def test_cuda_matches_cpu(shape, dtype):
    labels = blob_labels((shape[0], *shape[2:]), shape[1], seed=1)
    maps = gpudist.labels_to_dist(labels, shape[1], dtype=dtype)
    z = torch.randn(shape, dtype=dtype, requires_grad=True)
    zc = z.detach().cuda().requires_grad_()
    cpu = L.boundary_loss(z, maps, [1, 2], from_logits=True, reduction="none")
    gpu = L.boundary_loss(zc, maps.cuda(), [1, 2], from_logits=True, reduction="none")
    cpu.sum().backward()
    gpu.sum().backward()
    torch.testing.assert_close(gpu.cpu(), cpu)
    torch.testing.assert_close(zc.grad.cpu(), z.grad)


# ---------------------------------------------------------------------------------------------
# Bad inputs


def _bad_cases():
    p = torch.softmax(torch.randn(2, 3, 6, 6), 1)
    lab = torch.randint(0, 3, (2, 6, 6))
    nan = p.clone()
    nan[0, 0, 0, 0] = float("nan")
    return [
        (lambda: L.boundary_loss(p, lab[:, :5]), ValueError, "target must have pred's shape"),
        (lambda: L.boundary_loss(p, torch.randn(2, 3, 6, 5)), ValueError, "target must have"),
        (lambda: L.boundary_loss(p * 0.9, lab), ValueError, "pred must hold probabilities"),
        (lambda: L.boundary_loss(nan, lab), ValueError, "pred contains NaN"),
        (lambda: L.boundary_loss(p, torch.full((2, 3, 6, 6), float("nan"))), ValueError,
         "target contains NaN"),
        (lambda: L.boundary_loss(p, lab + 1), ValueError, "target labels must be in"),
        (lambda: L.boundary_loss(p, lab - 1), ValueError, "target labels must be in"),
        (lambda: L.boundary_loss(p, lab, [3]), ValueError, "idc values"),
        (lambda: L.boundary_loss(p, lab, [1, 1]), ValueError, "idc must not repeat"),
        (lambda: L.boundary_loss(p, lab, reduction="avg"), ValueError, "reduction"),
        (lambda: L.boundary_loss(p, lab, convention="x"), ValueError, "convention"),
        (lambda: L.boundary_loss(p, lab, spacing=(1.0,)), ValueError, "spacing"),
        (lambda: L.boundary_loss(lab, lab), TypeError, "pred must be a floating-point"),
        (lambda: L.boundary_loss(p[:, :1], lab), ValueError, "pred must have at least 2"),
        (lambda: L.boundary_loss(p, torch.nn.functional.one_hot(lab, 3).movedim(-1, 1).float()),
         ValueError, "target looks like a one-hot mask"),
        (lambda: L.boundary_loss(p, torch.nn.functional.one_hot(lab, 3).movedim(-1, 1) * 2),
         ValueError, "target mask must hold only 0 and 1"),
        (lambda: L.generalized_dice_loss(p, torch.ones(2, 3, 6, 6)), ValueError,
         "target must hold probabilities"),
        (lambda: L.generalized_dice_loss(nan, lab), ValueError, "pred contains NaN"),
        (lambda: L.generalized_dice_loss(p, lab.float()), ValueError, "target must have"),
        (lambda: L.hausdorff_dt_loss(p * 3, lab), ValueError, "pred must hold probabilities"),
        (lambda: L.hausdorff_dt_loss(p, lab, 0.0), ValueError, "alpha"),
        (lambda: L.hausdorff_dt_loss(p, lab, variant="x"), ValueError, "variant"),
        (lambda: L.HausdorffDTLoss(softmax=True, sigmoid=True), ValueError, "softmax and sigmoid"),
        (lambda: L.HausdorffDTLoss(monai_compatible=True, spacing=1.0), ValueError, "spacing"),
        (lambda: L.hausdorff_dt_loss(p[:, :1], lab), ValueError, "target labels need pred"),
        (lambda: L.RebalancedLoss(None, None, "warmup"), ValueError, "strategy"),
        (lambda: L.RebalancedLoss(None, None, weights=(1.0, 0.5)), ValueError, "weights"),
        (lambda: L.RebalancedLoss(None, None, "steal", step_size=-1), ValueError, "step_size"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_inputs_raise(case):
    fn, exc, match = _bad_cases()[case]
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------------------------
# End to end


def test_training_gdl_plus_boundary_lowers_loss():
    """A few Adam steps of a small conv net on an unbalanced 2-D task (small discs, ~5% fg)."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centres = torch.randint(8, 24, (8, 2)).float()
    labels = (((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2)
              < 16).long()
    images = labels[:, None].float() + 0.5 * torch.randn(8, 1, 32, 32)
    maps = gpudist.labels_to_dist(labels, 2)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 2, 1))
    loss_fn = L.RebalancedLoss(L.GeneralizedDiceLoss([0, 1], from_logits=True),
                               L.BoundaryLoss([1], from_logits=True), "constant",
                               weights=(1.0, 0.1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    history = []
    for _ in range(25):
        opt.zero_grad()
        loss = loss_fn(net(images), labels, maps)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters())
        opt.step()
        history.append(loss.item())
    assert history[-1] < history[0] - 0.1
    with torch.no_grad():
        dice_loss = L.generalized_dice_loss(net(images), labels, [1], from_logits=True)
    assert dice_loss.item() < 0.5
