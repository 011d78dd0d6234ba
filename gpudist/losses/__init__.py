"""Distance-based segmentation losses: the boundary loss (Kervadec et al. 2019, `boundary`, with
its fused from-logits op in `fused`), the generalised Dice loss it is paired with (`dice`), their
published rebalancing schedules (`schedule`), and Karimi & Salcudean's Hausdorff
distance-transform loss (`hausdorff`); `inputs` holds the checks and target decoding they share.

Shared conventions:

- `pred` is (B, C, *spatial) with any number of spatial dims: probabilities, or logits where the
  loss is told so. float16, bfloat16, float32 and float64 are accepted; arithmetic is float32
  (float64 for float64 pred) and so is the returned loss.
- One vocabulary, on every loss (function and module):
  - `softmax=True`: pred holds logits, softmax over dim 1 (`from_logits=True` is its older name,
    kept); `sigmoid=True`: logits of independent channels (multi-label targets allowed); neither:
    pred holds probabilities (checked with `validate`). `HausdorffDTLoss` also takes MONAI's
    `other_act` (a callable whose output is used as is). At most one of them.
  - `idc`: the classes the loss supervises, an int or a sequence (the reference code's name, the
    precise selector). `include_background`: without idc, False leaves class 0 out and True keeps
    every class (a single channel is always kept); None means the loss's default (all classes for
    the boundary loss and GDL, as their papers' code; without background for the Hausdorff
    losses, as MONAI). Given together they must agree (0 in idc exactly when
    include_background=True), otherwise ValueError: `idc=[1], include_background=False` is fine,
    `idc=[0, 1], include_background=False` is a contradiction.
  - `to_onehot_y`: accepted for MONAI compatibility. Targets are recognised by shape anyway;
    with it, labels (B, 1, *spatial) may also be floating point (whole numbers), and a target of
    pred's shape is an error. Ignored, with MONAI's warning, for a single channel.
- `target` is one of: a tensor of pred's shape (floating point: distance maps for the boundary
  loss, soft or one-hot targets otherwise; bool or integer: a 0/1 mask), or integer labels of shape
  (B, *spatial) (also (B, 1, *spatial) when C > 1). It must be on pred's device.
- Distance maps the losses need are computed on that device in one batched gpudist call, under
  no_grad (they are constants of the loss). `spacing` is one voxel size for the whole batch (a
  number or one per spatial axis) or one per batch item (a (B, ndim) tensor/array or B tuples,
  as Kervadec's loader hands them with `--use_spacing`).
- `reduction`: "mean" (the batch mean, the papers' value), "sum", or "none" (per sample; shapes in
  each loss's doc).
- `validate=True` checks values (NaN/inf, probability simplex, label range, 0/1 masks) at the cost
  of a host sync per check; checks are skipped under torch.compile. Bad arguments raise TypeError
  or ValueError naming the argument.

What the published pipelines computed (to reproduce their numbers):

- The boundary-loss reference code's 2-D loader built phi in its one-hot's int32 dtype, so its
  training maps were truncated toward zero (-0.41 -> 0, 1.41 -> 1); `phi.trunc()` of gpudist's
  maps (`boundary_maps`, `labels_to_dist`) reproduces them exactly. Its 3-D maps were float32.
- Its `HausdorffLoss` uses the foreground-only EDT of the target and of the argmax prediction
  (the latter int32-truncated): `HausdorffDTLoss(variant="reference", idc=...)`.
- MONAI's `HausdorffDTLoss` writes its fields into `torch.zeros_like(target)`: an integer one-hot
  target gets integer-truncated fields (about 5% off the exact loss on small objects);
  `monai_compatible=True` reproduces that, the default mode does not.
"""

from .boundary import BoundaryLoss, boundary_loss, boundary_maps
from .dice import GeneralizedDiceLoss, generalized_dice_loss
from .hausdorff import (
    HausdorffDTLoss,
    LogHausdorffDTLoss,
    hausdorff_dt_loss,
    log_hausdorff_dt_loss,
)
from .schedule import RebalancedLoss

__all__ = [
    "BoundaryLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "LogHausdorffDTLoss",
    "RebalancedLoss",
    "boundary_loss",
    "boundary_maps",
    "generalized_dice_loss",
    "hausdorff_dt_loss",
    "log_hausdorff_dt_loss",
]
