"""Distance-based segmentation losses: the boundary loss (Kervadec et al. 2019, `boundary`, with
its fused from-logits op in `fused`), the generalised Dice loss it is paired with (`dice`), their
published rebalancing schedules (`schedule`), and Karimi & Salcudean's Hausdorff
distance-transform loss (`hausdorff`); `inputs` holds the checks and target decoding they share.

Shared conventions:

- `pred` is (B, C, *spatial) with any number of spatial dims: probabilities, or logits where the
  loss is told so (`from_logits`, `softmax`, `sigmoid`). float16, bfloat16, float32 and float64
  are accepted; arithmetic is float32 (float64 for float64 pred) and so is the returned loss.
- `target` is one of: a tensor of pred's shape (floating point: distance maps for the boundary
  loss, soft or one-hot targets otherwise; bool or integer: a 0/1 mask), or integer labels of shape
  (B, *spatial) (also (B, 1, *spatial) when C > 1). It must be on pred's device.
- Distance maps the losses need are computed on that device in one batched gpudist call, under
  no_grad (they are constants of the loss).
- `reduction`: "mean" (the batch mean, the papers' value), "sum", or "none" (per sample; shapes in
  each loss's doc).
- `validate=True` checks values (NaN/inf, probability simplex, label range, 0/1 masks) at the cost
  of a host sync per check; checks are skipped under torch.compile. Bad arguments raise TypeError
  or ValueError naming the argument.
"""

from .boundary import BoundaryLoss, boundary_loss, boundary_maps
from .dice import GeneralizedDiceLoss, generalized_dice_loss
from .hausdorff import HausdorffDTLoss, hausdorff_dt_loss
from .schedule import RebalancedLoss

__all__ = [
    "BoundaryLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "RebalancedLoss",
    "boundary_loss",
    "boundary_maps",
    "generalized_dice_loss",
    "hausdorff_dt_loss",
]
