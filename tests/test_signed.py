"""Signed distance maps, one-hot and label maps: the published formulas, edge cases, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import gpudist
from common import assert_close_map, blobs, kervadec_phi, masks, one_hot, to_numpy, wide_masks


def sdf_reference(mask, spacing):
    pos = mask.astype(bool)
    if not pos.any() or pos.all():
        return np.zeros(mask.shape)
    half = 0.5 * min(spacing)
    d_out = ndimage.distance_transform_edt(~pos, sampling=spacing)
    d_in = ndimage.distance_transform_edt(pos, sampling=spacing)
    return np.where(pos, -(d_in - half), d_out - half)


def unsigned_reference(mask, spacing):
    pos = mask.astype(bool)
    if not pos.any() or pos.all():
        return np.zeros(mask.shape)
    return (ndimage.distance_transform_edt(~pos, sampling=spacing)
            + ndimage.distance_transform_edt(pos, sampling=spacing))


REFERENCES = {"kervadec": kervadec_phi, "sdf": sdf_reference, "unsigned": unsigned_reference}


@settings(max_examples=80, deadline=None)
@given(data=masks(max_side=16), convention=st.sampled_from(sorted(REFERENCES)))
def test_signed_distance_formulas(target, data, convention):
    mask, spacing = data
    out = gpudist.signed_distance(target.put(mask), spacing, convention=convention,
                                  backend=target.backend)
    assert_close_map(out, REFERENCES[convention](mask, spacing))


@settings(max_examples=40, deadline=None)
@given(data=wide_masks(), convention=st.sampled_from(sorted(REFERENCES)))
def test_signed_maps_through_the_windowed_envelope(target, data, convention):
    mask, spacing = data
    out = gpudist.signed_distance(target.put(mask), spacing, convention=convention,
                                  backend=target.backend)
    assert_close_map(out, REFERENCES[convention](mask, spacing))


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("convention", sorted(REFERENCES))
def test_single_class_items_among_others(target, convention, dtype, ndim):
    # The CPU gives items of one class (no boundary) their value without running the passes;
    # here they sit between items that run them, in one batch.
    shape, spacing = (9, 12, 7)[:ndim], (0.7, 1.3, 2.0)[:ndim]
    items = [np.ones(shape, bool), blobs(shape, 3, seed=21), np.zeros(shape, bool),
             blobs(shape, 2, seed=22), np.ones(shape, bool)]
    out = gpudist.signed_distance(target.put(np.stack(items)), spacing, ndim=ndim,
                                  convention=convention, dtype=dtype, backend=target.backend)
    assert out.dtype == dtype
    for item, got in zip(items, out):
        assert_close_map(got, REFERENCES[convention](item, spacing))


@pytest.mark.parametrize("convention", sorted(REFERENCES))
def test_scipy_backend_formulas(convention):
    mask = blobs((15, 17, 9), 4, seed=11)
    out = gpudist.signed_distance(mask, (0.5, 1.0, 2.0), convention=convention, backend="scipy")
    assert_close_map(out, REFERENCES[convention](mask, (0.5, 1.0, 2.0)))


def test_kervadec_values_in_voxels():
    # Outside: distance to the object; inside: 0 on the object's boundary, then -1, -2 ...
    mask = np.zeros(9, bool)
    mask[2:7] = True
    out = gpudist.signed_distance(mask)
    assert out.tolist() == [2.0, 1.0, 0.0, -1.0, -2.0, -1.0, 0.0, 1.0, 2.0]


def test_sdf_is_zero_halfway_between_boundary_voxels():
    mask = np.zeros(8, bool)
    mask[3:] = True
    out = gpudist.signed_distance(mask, 2.0, convention="sdf")
    assert out.tolist() == [5.0, 3.0, 1.0, -1.0, -3.0, -5.0, -7.0, -9.0]


@pytest.mark.parametrize("convention", sorted(REFERENCES))
@pytest.mark.parametrize("fill", [0, 1])
def test_single_class_sample_gives_zeros(target, convention, fill):
    mask = np.stack([np.full((6, 7), fill, bool), blobs((6, 7), 2, seed=12)])
    out = to_numpy(gpudist.signed_distance(target.put(mask), ndim=2, convention=convention,
                                           backend=target.backend))
    assert (out[0] == 0).all()
    assert_close_map(out[1], REFERENCES[convention](mask[1], (1.0, 1.0)))


def test_float64_output(target):
    mask = blobs((12, 14), 3, seed=13)
    out = gpudist.signed_distance(target.put(mask).double(), backend=target.backend)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(to_numpy(out), kervadec_phi(mask, (1, 1)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("convention", sorted(REFERENCES))
def test_one_hot_and_labels_agree_with_per_class_reference(target, convention):
    rng = np.random.default_rng(14)
    labels = rng.integers(0, 3, (2, 11, 13, 5)).astype(np.int64)
    labels[1] = 1  # class 1 fills sample 1; classes 0 and 2 are absent there
    labels[0, :, :, :2] = 3  # class 3 appears in sample 0 only
    spacing = (1.0, 0.4, 2.2)
    oh = one_hot(labels, 5)  # class 4 is absent everywhere
    from_labels = gpudist.labels_to_dist(target.put(labels), 5, spacing,
                                         convention=convention, backend=target.backend)
    from_one_hot = gpudist.one_hot_to_dist(target.put(oh), spacing,
                                           convention=convention, backend=target.backend)
    assert from_labels.shape == from_one_hot.shape == (2, 5, 11, 13, 5)
    assert from_labels.dtype == from_one_hot.dtype == torch.float32
    torch.testing.assert_close(from_labels, from_one_hot, rtol=0, atol=0)
    for b in range(2):
        for c in range(5):
            assert_close_map(from_labels[b, c], REFERENCES[convention](oh[b, c], spacing))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                                   torch.uint16, torch.uint32, torch.uint64])
def test_label_dtypes(target, dtype):
    labels = target.put(torch.randint(0, 4, (3, 10, 9),
                                      generator=torch.Generator().manual_seed(15)))
    expected = gpudist.labels_to_dist(labels, 4, backend=target.backend)
    got = gpudist.labels_to_dist(labels.to(dtype), 4, backend=target.backend)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_labels_with_many_classes(target):
    labels = target.put(torch.arange(300, dtype=torch.int64).reshape(1, 300) % 290)
    out = gpudist.labels_to_dist(labels, 300, convention="unsigned", backend=target.backend)
    assert out.shape == (1, 300, 300)
    assert (out[0, 295:] == 0).all()  # absent classes
    assert out[0, 0, 0] == 1.0 and out[0, 0, 1] == 1.0 and out[0, 0, 290] == 1.0


def test_labels_numpy_in_numpy_out_and_non_contiguous(cpu_target):
    labels = np.random.default_rng(16).integers(0, 3, (4, 12, 10))[:, ::-1, ::2]
    out = gpudist.labels_to_dist(labels, 3, backend=cpu_target.backend)
    assert isinstance(out, np.ndarray) and out.shape == (4, 3, 12, 5)
    oh = one_hot(np.ascontiguousarray(labels), 3)
    np.testing.assert_allclose(out, gpudist.one_hot_to_dist(oh, backend=cpu_target.backend),
                               rtol=0)


def test_empty_batch(target):
    labels = target.put(torch.zeros(0, 4, 5, dtype=torch.int64))
    assert gpudist.labels_to_dist(labels, 3, backend=target.backend).shape == (0, 3, 4, 5)
    one_hot_maps = gpudist.one_hot_to_dist(target.put(torch.zeros(0, 3, 4, 5)),
                                           backend=target.backend)
    assert one_hot_maps.shape == (0, 3, 4, 5)


@pytest.mark.parametrize("call,error,match", [
    (lambda: gpudist.labels_to_dist(torch.tensor([[0, 3]]), 3), ValueError,
     r"num_classes \(3\) must be greater than the largest label \(3\)"),
    (lambda: gpudist.labels_to_dist(torch.tensor([[0, -1]]), 3), ValueError,
     "labels must be >= 0"),
    (lambda: gpudist.labels_to_dist(torch.tensor([[0.0, 1.0]]), 3), TypeError,
     "labels must hold integer class indices"),
    (lambda: gpudist.labels_to_dist(torch.tensor([[0, 1]]), 0), ValueError,
     "num_classes must be a positive int"),
    (lambda: gpudist.labels_to_dist(torch.tensor([[0, 1]]), 2.0), ValueError,
     "num_classes must be a positive int"),
    (lambda: gpudist.labels_to_dist(torch.tensor([0, 1]), 2), ValueError,
     r"labels must be \(B, \*spatial\)"),
    (lambda: gpudist.labels_to_dist(torch.zeros(1, 4, dtype=torch.int64), 2, (1.0, 2.0)),
     ValueError, "spacing must have one value per spatial axis"),
    (lambda: gpudist.one_hot_to_dist(torch.ones(2, 3)), ValueError,
     r"one_hot must be \(B, C, \*spatial\)"),
    (lambda: gpudist.one_hot_to_dist(torch.full((1, 2, 3), 2)), ValueError,
     "one_hot must hold only 0 and 1"),
    (lambda: gpudist.one_hot_to_dist(torch.ones(1, 2, 3)), ValueError,
     "exactly one class per voxel"),
    (lambda: gpudist.signed_distance(torch.ones(3, 3), convention="level"), ValueError,
     "convention must be one of"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_multi_label_one_hot_without_kervadec_check():
    # Overlapping channels are fine for conventions that treat channels independently.
    x = torch.ones(1, 2, 5)
    x[0, 0, 0] = 0
    out = gpudist.one_hot_to_dist(x, convention="sdf")
    assert out[0, 0].tolist() == [0.5, -0.5, -1.5, -2.5, -3.5] and (out[0, 1] == 0).all()
    assert (gpudist.one_hot_to_dist(x, validate=False) == out.new_tensor(
        [[[1.0, 0.0, -1.0, -2.0, -3.0], [0.0] * 5]])).all()
