"""gpudist.losses against the peers they come from: MONAI's HausdorffDTLoss / LogHausdorffDTLoss
(its own test cases ported, then the live package on random inputs), the boundary-loss reference
code's published pipeline (int32 maps, its HausdorffLoss, rewritten here in numpy/scipy), and the
one vocabulary every loss takes (idc, include_background, softmax / sigmoid / from_logits,
to_onehot_y)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

import gpudist
from common import blobs
from gpudist import losses as L

F64 = torch.float64


def _monai_losses():
    return pytest.importorskip("monai.losses", reason="monai (reference implementation) is not "
                                                      "installed")


def _labels(shape, num_classes: int, seed: int) -> torch.Tensor:
    """(B, *spatial) labels: random balls of classes 1.. over background 0."""
    labels = np.zeros(shape, dtype=np.int64)
    for b in range(shape[0]):
        for k in range(1, num_classes):
            labels[b][blobs(shape[1:], 2, seed + 31 * b + k)] = k
    return torch.from_numpy(labels)


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 1)


# ---------------------------------------------------------------------------------------------
# MONAI's own test cases, ported from Project-MONAI/MONAI tests/losses/test_hausdorff_loss.py
# (TEST_CASES: parameters, inputs, expected values; TEST_CASES_LOG = log(expected + 1)).

_X = [[[[-1.0], [0.0], [1.0]], [[1.0], [0.0], [-1.0]]], [[[0.0], [0.0], [0.0]], [[0.0], [0.0],
                                                                              [0.0]]]]
_Y = [[[[1.0], [0.0], [0.0]]], [[[1.0], [1.0], [0.0]]]]
_CHECKER = [[[[1.0, -1.0], [-1.0, 1.0]]], [[[1.0, -1.0], [-1.0, 1.0]]]]
_ONES_AND_HALF = [[[[1.0, 1.0], [1.0, 1.0]]], [[[1.0, 0.0], [1.0, 0.0]]]]
_TANH_BATCH_X = [[[[1.0, -0.0], [-1.0, 1.0]]], [[[1.0, -1.0], [-1.0, 1.0]]]]
MONAI_CASES = [
    ({"include_background": True, "sigmoid": True},
     [[[[1.0, -1.0], [-1.0, 1.0]]]], [[[[1.0, 0.0], [1.0, 1.0]]]], 0.509329),
    ({"include_background": True, "sigmoid": True},
     [[[[[1.0, -1.0], [-1.0, 1.0]]]]], [[[[[1.0, 0.0], [1.0, 1.0]]]]], 0.509329),
    ({"include_background": True, "sigmoid": True},
     [[[[[1.0, -1.0], [1.0, -1.0]], [[-1.0, 1.0], [-1.0, 1.0]]]]],
     [[[[[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]]]], 0.375718),
    ({"include_background": True, "sigmoid": True},
     [[[[1.0, -1.0], [-1.0, 1.0]], [[1.0, -1.0], [-1.0, 1.0]]]],
     [[[[1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]], 0.326994),
    ({"include_background": True, "sigmoid": True}, _CHECKER, _ONES_AND_HALF, 0.455082),
    ({"include_background": False, "sigmoid": True},
     [[[[1.0, -1.0], [-1.0, 1.0]], [[1.0, -1.0], [-1.0, 1.0]]]],
     [[[[1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]], 0.144659),
    ({"include_background": True, "to_onehot_y": True, "sigmoid": True, "reduction": "none"},
     _X, _Y, [[[[0.407765]], [[0.407765]]], [[[0.5000]], [[0.5000]]]]),
    ({"include_background": True, "to_onehot_y": True, "softmax": True}, _X, _Y, 0.357016),
    ({"include_background": True, "to_onehot_y": True, "softmax": True, "reduction": "sum"},
     _X, _Y, 1.428062),
    ({"include_background": True, "other_act": torch.tanh}, _CHECKER, _ONES_AND_HALF, 1.870039),
    ({"include_background": True, "to_onehot_y": True,
      "other_act": lambda x: torch.log_softmax(x, dim=1)}, _X, _Y, 4.366613),
    ({"include_background": True, "other_act": torch.tanh, "batch": True},
     _TANH_BATCH_X, _ONES_AND_HALF, 1.607137),
    ({"include_background": True, "other_act": torch.tanh, "batch": False},
     _TANH_BATCH_X, _ONES_AND_HALF, 1.607137),
]


@pytest.mark.parametrize("log", [False, True], ids=["HausdorffDTLoss", "LogHausdorffDTLoss"])
@pytest.mark.parametrize("case", range(len(MONAI_CASES)))
def test_monai_hausdorff_cases(case, log):
    kwargs, x, y, expected = MONAI_CASES[case]
    cls = L.LogHausdorffDTLoss if log else L.HausdorffDTLoss
    got = cls(monai_compatible=True, **kwargs)(torch.tensor(x), torch.tensor(y))
    want = np.log(np.array(expected) + 1) if log else np.array(expected)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5)


def test_monai_hausdorff_ill_options():
    """MONAI's test_ill_opts: exclusive activations and unknown reductions are ValueErrors."""
    tanh = torch.tanh
    for cls in (L.HausdorffDTLoss, L.LogHausdorffDTLoss):
        for kwargs in ({"sigmoid": True, "softmax": True}, {"sigmoid": True, "other_act": tanh},
                       {"softmax": True, "other_act": tanh},
                       {"sigmoid": True, "softmax": True, "other_act": tanh}):
            with pytest.raises(ValueError, match="exclusive"):
                cls(**kwargs)
        for reduction in ("unknown", None):
            with pytest.raises(ValueError, match="reduction"):
                cls(reduction=reduction)
        with pytest.raises(TypeError, match="other_act must be None or callable"):
            cls(other_act=1)


@pytest.mark.parametrize("include_background, softmax, to_onehot_y",
                         [(False, False, False), (False, True, False), (False, False, True)])
def test_monai_hausdorff_single_channel_warnings(include_background, softmax, to_onehot_y):
    """MONAI's test_input_warnings: options ignored on one channel warn (monai_compatible)."""
    pred, target = torch.ones(1, 1, 1, 3), torch.ones(1, 1, 1, 3)
    for cls in (L.HausdorffDTLoss, L.LogHausdorffDTLoss):
        loss = cls(include_background=include_background, softmax=softmax,
                   to_onehot_y=to_onehot_y, monai_compatible=True)
        with pytest.warns(UserWarning, match="single channel prediction"):
            loss(pred, target)


# ---------------------------------------------------------------------------------------------
# The live MONAI package on random inputs


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_monai_truncates_integer_target_fields(dtype):
    """MONAI writes the target's field into zeros_like(target): an integer one-hot truncates it.
    monai_compatible=True reproduces that; the default mode keeps the exact field, equal to
    MONAI's value for the same target in float32."""
    monai_losses = _monai_losses()
    labels = _labels((2, 17, 19), 3, seed=4)
    target = _one_hot(labels, 3).to(dtype)
    z = torch.randn(2, 3, 17, 19, generator=torch.Generator().manual_seed(0))
    truncated = monai_losses.HausdorffDTLoss(softmax=True)(z, target)
    exact = monai_losses.HausdorffDTLoss(softmax=True)(z, target.float())
    got = L.HausdorffDTLoss(softmax=True, monai_compatible=True)(z, target)
    torch.testing.assert_close(got, truncated, rtol=1e-6, atol=0)
    ours = L.HausdorffDTLoss(softmax=True)(z, target)
    torch.testing.assert_close(ours, exact, rtol=1e-6, atol=0)
    assert abs(exact.item() - truncated.item()) > 1e-3 * exact.item()  # the effect is real


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("batch", [False, True])
def test_log_hausdorff_equals_monai(reduction, batch):
    monai_losses = _monai_losses()
    labels = _labels((3, 9, 8, 7), 4, seed=2)
    z = (torch.randn(3, 4, 9, 8, 7, generator=torch.Generator().manual_seed(1)) * 2)
    zm, zg = z.clone().requires_grad_(), z.clone().requires_grad_()
    kwargs = dict(softmax=True, reduction=reduction, batch=batch)
    expected = monai_losses.LogHausdorffDTLoss(to_onehot_y=True, **kwargs)(zm, labels[:, None])
    got = L.LogHausdorffDTLoss(to_onehot_y=True, monai_compatible=True, **kwargs)(zg, labels)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    expected.sum().backward()
    got.sum().backward()
    torch.testing.assert_close(zg.grad, zm.grad, rtol=1e-5, atol=1e-7)
    plain = L.hausdorff_dt_loss(z, labels, softmax=True, reduction=reduction, batch=batch)
    torch.testing.assert_close(L.log_hausdorff_dt_loss(z, labels, softmax=True,
                                                       reduction=reduction, batch=batch),
                               torch.log1p(plain))


def test_monai_float_labels_with_to_onehot_y():
    """MONAI one-hot encodes float labels (B, 1, ...) with to_onehot_y; so does gpudist."""
    monai_losses = _monai_losses()
    labels = _labels((2, 10, 12), 3, seed=7)
    z = torch.randn(2, 3, 10, 12, generator=torch.Generator().manual_seed(5))
    expected = monai_losses.HausdorffDTLoss(to_onehot_y=True, sigmoid=True)(z, labels[:, None]
                                                                           .float())
    got = L.HausdorffDTLoss(to_onehot_y=True, sigmoid=True, monai_compatible=True)(
        z, labels[:, None].float())
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="whole numbers"):
        L.hausdorff_dt_loss(z, labels[:, None].float() + 0.5, to_onehot_y=True)
    with pytest.raises(ValueError, match="to_onehot_y=True expects class labels"):
        L.hausdorff_dt_loss(torch.sigmoid(z), _one_hot(labels, 3), to_onehot_y=True)


# ---------------------------------------------------------------------------------------------
# The boundary-loss reference code (LIVIAETS/boundary-loss), rewritten here in numpy / scipy


def ref_one_hot2dist_int32(seg: np.ndarray) -> np.ndarray:
    """utils.one_hot2dist on the loader's int32 one-hot (res = np.zeros_like(seg), int32):
    the float distances are truncated toward zero on assignment."""
    res = np.zeros_like(seg)
    for k in range(len(seg)):
        pos = seg[k].astype(bool)
        if pos.any():
            neg = ~pos
            res[k] = (ndimage.distance_transform_edt(neg) * neg
                      - (ndimage.distance_transform_edt(pos) - 1) * pos)
    return res


def test_trunc_reproduces_the_published_int32_maps():
    labels = _labels((3, 23, 21), 3, seed=11)
    seg = _one_hot(labels, 3).to(torch.int32).numpy()
    expected = np.stack([ref_one_hot2dist_int32(s) for s in seg])
    assert expected.dtype == np.int32
    phi = gpudist.labels_to_dist(labels, 3)
    np.testing.assert_array_equal(phi.trunc().numpy(), expected)
    maps = L.boundary_maps(labels, torch.empty(3, 3, 23, 21))
    np.testing.assert_array_equal(maps.trunc().numpy(), expected)
    assert not np.array_equal(phi.numpy(), expected)  # the truncation changes values


def ref_hausdorff_loss(probs: np.ndarray, target: np.ndarray, idc) -> float:
    """losses.HausdorffLoss: foreground-only EDT (utils.one_hot2hd_dist) of the float32 target
    and of the argmax prediction's int32 one-hot (so its map is int32-truncated), then
    mean((p - g)^2 (tdm^2 + pdm^2)) over (B, idc, voxels)."""
    pc, tc = probs[:, idc].astype(np.float32), target[:, idc].astype(np.float32)
    pred_seg = np.moveaxis(np.eye(probs.shape[1], dtype=np.int32)[probs.argmax(1)], -1, 1)

    def hd_dist(seg):
        res = np.zeros_like(seg)
        for k in range(len(seg)):
            pos = seg[k].astype(bool)
            if pos.any():
                res[k] = ndimage.distance_transform_edt(pos)
        return res

    tdm = np.stack([hd_dist(t) for t in tc]).astype(np.float32)
    pdm = np.stack([hd_dist(p[idc]) for p in pred_seg]).astype(np.float32)
    return float(((pc - tc) ** 2 * (tdm ** 2 + pdm ** 2)).mean())


@pytest.mark.parametrize("idc", [[1], [0, 1, 2], [1, 2]])
def test_reference_variant_equals_the_reference_hausdorff_loss(idc):
    labels = _labels((2, 19, 23), 3, seed=3)
    labels[1, :2] = 1  # a class touching the edge; no class fills the image (scipy's phantom)
    target = _one_hot(labels, 3)
    z = torch.randn(2, 3, 19, 23, dtype=F64, generator=torch.Generator().manual_seed(2)) * 3
    probs = torch.softmax(z, 1)
    expected = ref_hausdorff_loss(probs.numpy(), target.numpy(), idc)
    got = L.HausdorffDTLoss(variant="reference", idc=idc)(probs, target)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    from_logits = L.hausdorff_dt_loss(z, labels, variant="reference", idc=idc, softmax=True)
    assert from_logits.item() == pytest.approx(expected, rel=1e-6)
    two_sided = L.hausdorff_dt_loss(probs, target, idc=idc)  # MONAI's field: another value
    assert two_sided.item() != pytest.approx(expected, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# One vocabulary


def _case(seed: int = 0, classes: int = 3):
    labels = _labels((2, 12, 11), classes, seed=seed)
    z = torch.randn(2, classes, 12, 11, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return z, labels


def test_softmax_is_from_logits_and_include_background_is_idc():
    z, labels = _case()
    p = torch.softmax(z, 1)
    for fn in (L.boundary_loss, L.generalized_dice_loss):
        ref = fn(p, labels, [1, 2])
        for kwargs in ({"softmax": True}, {"from_logits": True}):
            assert fn(z, labels, [1, 2], **kwargs).item() == pytest.approx(ref.item(), rel=1e-9)
        assert fn(p, labels, include_background=False).item() == pytest.approx(ref.item())
        assert fn(p, labels, [1, 2], include_background=False).item() == ref.item()
        assert fn(p, labels, include_background=True).item() == fn(p, labels).item()
        assert fn(p, labels, 1).item() == fn(p, labels, [1]).item()
        assert fn(p, labels, np.int64(1)).item() == fn(p, labels, [1]).item()
    hd = L.hausdorff_dt_loss(p, labels)  # its default leaves the background out (MONAI)
    assert hd.item() == L.hausdorff_dt_loss(p, labels, idc=[1, 2]).item()
    assert hd.item() != L.hausdorff_dt_loss(p, labels, include_background=True).item()
    for module, kwargs in ((L.BoundaryLoss, {}), (L.GeneralizedDiceLoss, {}),
                           (L.HausdorffDTLoss, {}), (L.LogHausdorffDTLoss, {})):
        loss = module(idc=1, include_background=False, softmax=True, to_onehot_y=True, **kwargs)
        assert loss.idc == [1] and loss.softmax and loss.from_logits and not loss.sigmoid
        assert torch.isfinite(loss(z, labels[:, None]))


@pytest.mark.parametrize("module", [L.BoundaryLoss, L.GeneralizedDiceLoss, L.HausdorffDTLoss])
def test_contradictory_class_selection_is_rejected(module):
    with pytest.raises(ValueError, match="contradict"):
        module(idc=[0, 1], include_background=False)
    with pytest.raises(ValueError, match="contradict"):
        module(idc=[1, 2], include_background=True)
    with pytest.raises(TypeError, match="idc must be a class index"):
        module(idc="1")
    with pytest.raises(ValueError, match="idc values must be >= 0"):
        module(idc=-1)
    with pytest.raises(ValueError, match="exclusive"):
        module(softmax=True, sigmoid=True)
    with pytest.raises(TypeError, match="include_background must be a bool"):
        module(include_background="no")


def test_sigmoid_losses_equal_their_formulas():
    """sigmoid=True: independent channels, multi-label targets."""
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(2, 2, 10, 9, dtype=F64, generator=gen)
    mask = torch.rand(2, 2, 10, 9, generator=gen) < 0.4
    mask[:, :, 3:7, 2:6] = True  # the classes overlap
    s = torch.sigmoid(z)
    phi = gpudist.one_hot_to_dist(mask, dtype=F64, validate=False)
    got = L.boundary_loss(z, mask, sigmoid=True, reduction="none")
    torch.testing.assert_close(got, (s * phi).flatten(1).mean(1))
    g = mask.to(F64).flatten(2)
    w = 1 / (g.sum(2) + 1e-10) ** 2
    ref = 1 - 2 * ((w * (s.flatten(2) * g).sum(2)).sum(1) + 1e-10) / (
        (w * (s.flatten(2).sum(2) + g.sum(2))).sum(1) + 1e-10)
    torch.testing.assert_close(L.generalized_dice_loss(z, mask, sigmoid=True, reduction="none"),
                               ref)
    one = L.boundary_loss(z[:, :1], mask[:, :1], sigmoid=True)  # one channel is fine
    assert one.item() == pytest.approx((s[:, :1] * phi[:, :1]).mean().item())


def test_single_sample_one_hot_names_the_batch_dim():
    """The reference's one_hot2dist takes one (K, *spatial) sample; gpudist wants a batch."""
    sample = _one_hot(_labels((1, 8, 9), 3, seed=1), 3)[0]  # (3, 8, 9)
    with pytest.raises(ValueError, match=r"expected \(B, C, \*spatial\), got shape \(3, 8, 9\) "
                                         r"\(add a batch dim"):
        gpudist.one_hot_to_dist(sample)
    assert gpudist.one_hot_to_dist(sample[None]).shape == (1, 3, 8, 9)


def test_rebalanced_loss_exposes_its_last_terms():
    z, labels = _case(seed=4, classes=2)
    gdl, bl = L.GeneralizedDiceLoss(softmax=True), L.BoundaryLoss(1, softmax=True)
    loss_fn = L.RebalancedLoss(gdl, bl, "rebalance")
    assert loss_fn.last == {}
    for _ in range(20):
        loss_fn.step()
    z.requires_grad_()
    loss = loss_fn(z, labels)
    last = loss_fn.last
    assert (last["w_regional"], last["w_boundary"]) == loss_fn.weights == (0.8, 0.2)
    assert last["regional"].item() == pytest.approx(gdl(z, labels).item())
    assert last["boundary"].item() == pytest.approx(bl(z, labels).item())
    assert last["loss"].item() == pytest.approx(0.8 * last["regional"].item()
                                                + 0.2 * last["boundary"].item())
    assert not any(v.requires_grad for v in last.values() if isinstance(v, torch.Tensor))
    loss.backward()
    assert torch.isfinite(z.grad).all()


def test_to_onehot_y_is_accepted_by_every_loss():
    z, labels = _case(seed=6)
    for fn in (L.boundary_loss, L.generalized_dice_loss, L.hausdorff_dt_loss):
        ref = fn(z, labels, softmax=True)
        assert fn(z, labels[:, None], softmax=True, to_onehot_y=True).item() == ref.item()
        assert fn(z, labels[:, None].double(), softmax=True, to_onehot_y=True).item() == \
            ref.item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.hausdorff_dt_loss(z, labels, softmax=True)  # no warning outside monai mode
