"""gpudist.nnunet.DeepSupervisedBoundaryLoss (torch only, no nnunetv2) against the boundary loss
written here from scipy maps, scale by scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpudist.nnunet import DeepSupervisedBoundaryLoss
from common import kervadec_phi


def reference(outputs, targets, idc, spacings, weights) -> float:
    """sum_i w_i mean(softmax(outputs_i)[:, idc] * phi_i[:, idc]), phi from scipy per image."""
    total = 0.0
    for logits, target, spacing, w in zip(outputs, targets, spacings, weights):
        probs = torch.softmax(logits.detach().double(), 1).numpy()
        labels = target[:, 0].long().numpy()
        phi = np.stack([[kervadec_phi(lab == k, spacing) for k in range(probs.shape[1])]
                        for lab in labels])
        total += w * (probs[:, idc] * phi[:, idc]).mean()
    return total


def pyramid(batch: int, classes: int, size: int, scales: int, seed: int = 0):
    """nnU-Net-like deep-supervision inputs: logits per scale and float label maps (B, 1, ...)
    downsampled by striding, highest resolution first."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.zeros(batch, 1, size, size)
    labels[:, :, 4:12, 6:14] = 1
    labels[:, :, 18:26, 8:22] = classes - 1
    labels[1, :, 2:5, 20:30] = 0
    outputs = [torch.randn(batch, classes, size >> i, size >> i, generator=gen,
                           dtype=torch.float64, requires_grad=True) for i in range(scales)]
    targets = [labels[:, :, :: 2 ** i, :: 2 ** i] for i in range(scales)]
    return outputs, targets


def test_matches_the_per_scale_reference_with_weights_and_spacing():
    outputs, targets = pyramid(2, 3, 32, 3)
    spacings = [(0.8 * 2 ** i, 1.5 * 2 ** i) for i in range(3)]
    weights = [4 / 7, 2 / 7, 0.0]  # nnU-Net's: halving, the last scale unused, summing to 1
    loss = DeepSupervisedBoundaryLoss([1, 2], spacings, weights)(outputs, targets)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(reference(outputs, targets, [1, 2], spacings, weights),
                                        rel=1e-6)
    loss.backward()
    assert outputs[2].grad is None  # a scale of weight 0 is not computed at all
    assert outputs[0].grad.abs().sum() > 0 and outputs[1].grad.abs().sum() > 0


def test_single_output_network_and_default_weights():
    outputs, targets = pyramid(2, 2, 16, 1)
    loss = DeepSupervisedBoundaryLoss([1], [(1.0, 1.0)])(outputs[0], targets[0][:, 0])
    assert loss.item() == pytest.approx(reference(outputs, targets, [1], [(1, 1)], [1.0]),
                                        rel=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="one entry per scale"):
        DeepSupervisedBoundaryLoss([1], [(1, 1), (2, 2)], [1.0])
    outputs, targets = pyramid(2, 2, 16, 2)
    with pytest.raises(ValueError, match="expected 2 outputs"):
        DeepSupervisedBoundaryLoss([1], [(1, 1), (2, 2)])(outputs[:1], targets[:1])
    with pytest.raises(ValueError, match="every deep-supervision weight is 0"):
        DeepSupervisedBoundaryLoss([1], [(1, 1), (2, 2)], [0, 0])(outputs, targets)
