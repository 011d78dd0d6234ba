"""The published schedules that combine a regional loss with the boundary loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..validation import choice, is_real

STRATEGIES = ("rebalance", "steal", "increase", "constant")


class RebalancedLoss(nn.Module):
    """`w_R * regional(pred, target) + w_B * boundary(pred, boundary_target)`, with the weights
    (w_R, w_B) following one of the published schedules; call `step()` once per epoch.

    Weights during epoch e (e = number of `step()` calls so far), from the initial (r0, b0):

    - "rebalance" (paper): alpha = max(floor, r0 - step_size * e), weights (alpha, 1 - alpha);
      defaults r0 = 1, floor = 0.01.
    - "steal" (reference code's StealWeight): (max(floor, r0 - step_size * e), b0 + step_size * e),
      w_B not capped; defaults (1, 0.01), floor = 0.1.
    - "increase" (journal version): (r0, b0 + step_size * e); default (1, 0.01).
    - "constant": (r0, b0); default (1, 0.01) (the README's GDL + 0.01 * L_B).

    The schedule (strategy, initial weights, step size, floor, epoch) is saved in `state_dict()`
    and restored by `load_state_dict()`. After each call, `last` holds what it combined, for
    logging: {"regional", "boundary", "loss"} (detached tensors, no host sync) and
    {"w_regional", "w_boundary"} (floats); empty before the first call.
    """

    def __init__(self, regional: Callable[..., torch.Tensor],
                 boundary: Callable[..., torch.Tensor], strategy: str = "rebalance", *,
                 weights: tuple[float, float] | None = None, step_size: float = 0.01,
                 floor: float | None = None) -> None:
        super().__init__()
        self.regional = regional
        self.boundary = boundary
        self._configure(choice(strategy, "strategy", STRATEGIES), weights, step_size, floor, 0)
        self.last: dict[str, torch.Tensor | float] = {}

    def _configure(self, strategy: str, weights: Sequence[float] | None, step_size: float,
                   floor: float | None, epoch: int) -> None:
        if weights is None:
            weights = (1.0, 0.0) if strategy == "rebalance" else (1.0, 0.01)
        if len(weights) != 2 or not all(is_real(w) and math.isfinite(w) for w in weights):
            raise ValueError(f"weights must be two finite numbers (w_regional, w_boundary), "
                             f"got {weights!r}")
        if strategy == "rebalance" and not math.isclose(weights[0] + weights[1], 1.0):
            raise ValueError(f"weights must sum to 1 for strategy='rebalance', got {weights!r}")
        if not (is_real(step_size) and math.isfinite(step_size) and step_size >= 0):
            raise ValueError(f"step_size must be a finite number >= 0, got {step_size!r}")
        if floor is None:
            floor = {"rebalance": 0.01, "steal": 0.1}.get(strategy, 0.0)
        if not (is_real(floor) and 0 <= floor <= weights[0]):
            raise ValueError(f"floor must be a number in [0, weights[0]], got {floor!r}")
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.strategy = strategy
        self.initial_weights = (float(weights[0]), float(weights[1]))
        self.step_size = float(step_size)
        self.floor = float(floor)
        self.epoch = epoch

    @property
    def weights(self) -> tuple[float, float]:
        """(w_regional, w_boundary) for the current epoch (rounded to 12 decimals)."""
        r0, b0 = self.initial_weights
        shift = self.step_size * self.epoch
        if self.strategy == "rebalance":
            r = max(self.floor, r0 - shift)
            w = (r, 1.0 - r)
        elif self.strategy == "steal":
            w = (max(self.floor, r0 - shift), b0 + shift)
        elif self.strategy == "increase":
            w = (r0, b0 + shift)
        else:
            w = (r0, b0)
        return (round(w[0], 12), round(w[1], 12))

    def step(self) -> tuple[float, float]:
        """Ends an epoch; returns the weights for the next one."""
        self.epoch += 1
        return self.weights

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                boundary_target: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted sum; `boundary_target` (e.g. precomputed maps) defaults to `target`."""
        w_r, w_b = self.weights
        b_target = target if boundary_target is None else boundary_target
        regional = self.regional(pred, target)
        boundary = self.boundary(pred, b_target)
        loss = w_r * regional + w_b * boundary
        self.last = {"regional": regional.detach(), "boundary": boundary.detach(),
                     "loss": loss.detach(), "w_regional": w_r, "w_boundary": w_b}
        return loss

    def get_extra_state(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "initial_weights": self.initial_weights,
                "step_size": self.step_size, "floor": self.floor, "epoch": self.epoch}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._configure(choice(state["strategy"], "strategy", STRATEGIES),
                        tuple(state["initial_weights"]), state["step_size"], state["floor"],
                        state["epoch"])

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}, epoch={self.epoch}, weights={self.weights}"
