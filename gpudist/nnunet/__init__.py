"""nnU-Net v2 integration: `nnUNetTrainerBoundaryLoss` (needs nnunetv2: `pip install
'gpudist[nnunet]'`), the loss it adds (`DeepSupervisedBoundaryLoss`, torch only), and the
`gpudist-nnunet` command that runs nnU-Net's own train and predict commands with the trainer
found by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .deep_supervision import DeepSupervisedBoundaryLoss

if TYPE_CHECKING:
    from .trainer import nnUNetTrainerBoundaryLoss


def __getattr__(name: str) -> Any:
    # The trainer imports nnunetv2: only on first use, so that the loss works without it.
    if name == "nnUNetTrainerBoundaryLoss":
        from .trainer import nnUNetTrainerBoundaryLoss

        return nnUNetTrainerBoundaryLoss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DeepSupervisedBoundaryLoss", "nnUNetTrainerBoundaryLoss"]
