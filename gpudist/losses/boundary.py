"""The boundary loss of Kervadec et al. (MIDL 2019): `mean(probs[:, idc] * phi[:, idc])` with phi
the level-set maps of the ground truth, computed on pred's device when not given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..distance import CONVENTIONS, labels_to_dist, one_hot_to_dist
from ..validation import choice
from .fused import boundary_loss_from_logits
from . import inputs
from .inputs import Reduction


def boundary_maps(target: torch.Tensor, pred: torch.Tensor, spacing: Any = None, *,
                  convention: str = "kervadec", validate: bool = True, to_onehot_y: bool = False,
                  multilabel: bool = False) -> torch.Tensor:
    """The level-set maps phi (B, C, *spatial) the boundary loss multiplies pred with.

    pred (B, C, *spatial) only sets the expected shape, the device and the dtype. Floating-point
    `target` of pred's shape is taken as precomputed maps and returned as is. A bool/integer
    mask of pred's shape or integer labels are turned into maps with `spacing` and `convention`
    (see `gpudist.signed_distance`), in pred's accumulation dtype, without grad. `multilabel`
    lets a mask's classes overlap (sigmoid outputs); otherwise "kervadec" maps need one class per
    voxel, as the paper's `one_hot2dist` asserts. `to_onehot_y`: see the package docstring.

    The paper's published 2-D pipeline computed these maps in its one-hot's int32 dtype, so its
    training maps were truncated toward zero; `boundary_maps(...).trunc()` reproduces them.
    """
    choice(convention, "convention", CONVENTIONS)
    check = inputs.checking(validate)
    kind, t = inputs.decode_target(target, pred, to_onehot_y, check)
    if kind == "float":
        if check:
            inputs.check_finite(t, "target")
            if ((t == 0) | (t == 1)).all() and (t.sum(dim=1) == 1).all():
                raise ValueError("target looks like a one-hot mask stored as floating point, not "
                                 "distance maps; pass it as a bool or integer tensor to have its "
                                 "maps computed")
        return t
    dtype = inputs.acc_dtype(pred.dtype)
    spacing = inputs.map_spacing(spacing, pred)
    with torch.no_grad():
        if kind == "labels":
            if check:
                inputs.check_labels(t, pred.shape[1])
            return labels_to_dist(t, pred.shape[1], spacing, convention=convention, dtype=dtype,
                                  validate=False)
        if check:
            inputs.check_mask(t, exclusive=convention == "kervadec" and not multilabel)
        return one_hot_to_dist(t, spacing, convention=convention, dtype=dtype, validate=False)


def boundary_loss(pred: torch.Tensor, target: torch.Tensor,
                  idc: int | Sequence[int] | None = None, *,
                  include_background: bool | None = None, softmax: bool = False,
                  sigmoid: bool = False, from_logits: bool = False, to_onehot_y: bool = False,
                  spacing: Any = None, convention: str = "kervadec",
                  reduction: Reduction = "mean", validate: bool = True) -> torch.Tensor:
    """Boundary loss `mean over (k in idc, voxels) of probs[:, k] * phi[:, k]`, per sample.

    Args:
        pred: (B, C, *spatial): softmax probabilities over dim 1 (C >= 2); logits with
            `softmax=True` (or its older name `from_logits=True`: softmax, product and mean then
            run as one fused op whose backward recomputes the softmax instead of storing it); or
            logits of independent channels with `sigmoid=True` (C >= 1, multi-label targets).
        target: precomputed maps phi (floating point, pred's shape), a one-hot mask (bool/int,
            pred's shape) or integer labels (B, *spatial); see `boundary_maps`.
        idc: the classes to supervise, an int or a sequence (binary tasks in the paper use 1).
        include_background: without idc, False supervises classes 1.. only; default (None): all
            classes. Given with idc, it must agree with it (see the package docstring).
        to_onehot_y: accepted for MONAI compatibility; labels are recognised anyway.
        spacing, convention: for maps computed here ("kervadec" is the paper's phi: 0 on the
            object's boundary voxels, negative inside, positive outside, 0 for an absent class or
            one that fills the image).

    Returns:
        "mean": scalar (the paper's value, can be negative); "sum": the sum of per-sample losses;
        "none": (B,). float32, or float64 for float64 pred.
    """
    activation = inputs.check_activation(softmax, sigmoid, from_logits)
    inputs.check_pred(pred, min_channels=1 if activation == "sigmoid" else 2)
    inputs.check_reduction(reduction)
    classes = inputs.resolve_idc(idc, pred.shape[1], include_background)
    phi = boundary_maps(target, pred, spacing, convention=convention, validate=validate,
                        to_onehot_y=to_onehot_y, multilabel=activation == "sigmoid")
    check = inputs.checking(validate)
    if check:
        inputs.check_finite(pred, "pred")
    if activation == "softmax":
        per_sample = boundary_loss_from_logits(pred, phi, classes)
    else:
        if check and activation == "none":
            inputs.check_simplex(pred, "pred")
        acc = inputs.acc_dtype(pred.dtype)
        probs = pred[:, classes].to(acc)
        if activation == "sigmoid":
            probs = torch.sigmoid(probs)
        per_sample = (probs * phi[:, classes].to(acc)).flatten(1).mean(dim=1)
    return inputs.reduce_batch(per_sample, reduction)


class BoundaryLoss(inputs.OptionsMixin, nn.Module):
    """Boundary loss of Kervadec et al. (MIDL 2019); see `boundary_loss` for shapes and values.

    `forward(pred, target)`: pred (B, C, *spatial) probabilities (logits with softmax=True /
    from_logits=True, or sigmoid=True); target precomputed maps, a one-hot mask or integer labels
    (maps then computed on the device).
    """

    def __init__(self, idc: int | Sequence[int] | None = None, *,
                 include_background: bool | None = None, softmax: bool = False,
                 sigmoid: bool = False, from_logits: bool = False, to_onehot_y: bool = False,
                 spacing: Any = None, convention: str = "kervadec", reduction: Reduction = "mean",
                 validate: bool = True) -> None:
        super().__init__()
        self.options = inputs.Options.of(idc, include_background, softmax, sigmoid, from_logits,
                                          to_onehot_y)
        self.spacing = spacing
        self.convention = choice(convention, "convention", CONVENTIONS)
        self.reduction = inputs.check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return boundary_loss(pred, target, **self.options.kwargs(), spacing=self.spacing,
                             convention=self.convention, reduction=self.reduction,
                             validate=self.validate)
