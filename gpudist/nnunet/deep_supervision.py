"""The boundary loss summed over a network's deep-supervision outputs, one distance map per scale
computed from that scale's target on the device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..losses import boundary_loss


class DeepSupervisedBoundaryLoss(nn.Module):
    """`sum_i weights[i] * boundary_loss(outputs[i], targets[i], idc, from_logits=True,
    spacing=spacings[i])`, skipping the scales of weight 0.

    `forward(outputs, targets)`: `outputs` the logits of each scale, highest resolution first,
    each (B, C, *spatial_i) (or one tensor, for a network without deep supervision); `targets` as
    many label maps (B, 1, *spatial_i) or (B, *spatial_i) holding class indices in [0, C) in any
    dtype (nnU-Net's are floating point). Returns a scalar, float32 (float64 for float64 logits).
    """

    def __init__(self, idc: Sequence[int], spacings: Sequence[Sequence[float]],
                 weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.idc = list(idc)
        self.spacings = [tuple(float(s) for s in sp) for sp in spacings]
        self.weights = [1.0] * len(self.spacings) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.spacings):
            raise ValueError(f"weights and spacings must have one entry per scale, got "
                             f"{len(self.weights)} and {len(self.spacings)}")

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor],
                targets: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs, targets = [outputs], [targets]
        if not len(outputs) == len(targets) == len(self.weights):
            raise ValueError(f"expected {len(self.weights)} outputs and targets, got "
                             f"{len(outputs)} and {len(targets)}")
        total = None
        for weight, logits, target, spacing in zip(self.weights, outputs, targets, self.spacings):
            if weight == 0:
                continue
            labels = (target[:, 0] if target.dim() == logits.dim() else target).long()
            term = weight * boundary_loss(logits, labels, self.idc, from_logits=True,
                                          spacing=spacing)
            total = term if total is None else total + term
        if total is None:
            raise ValueError("every deep-supervision weight is 0")
        return total
