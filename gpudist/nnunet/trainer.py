"""nnU-Net v2 trainer with the boundary loss (Kervadec et al. 2019) added to nnU-Net's own loss."""

from __future__ import annotations

import os
from typing import Union

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from ..losses import RebalancedLoss
from .deep_supervision import DeepSupervisedBoundaryLoss

SCHEDULE_KEY = "gpudist_boundary_schedule"


class nnUNetTrainerBoundaryLoss(nnUNetTrainer):
    """nnU-Net's trainer whose loss is

        alpha * (Dice + CE, deep supervision) + (1 - alpha) * sum_i w_i L_B(scale i)

    L_B the boundary loss of every foreground class at every deep-supervision output i, weighted
    by nnU-Net's own deep-supervision weights w_i, with the level-set maps computed in the
    training step, on the training device, from each scale's (augmented, downsampled) target, in
    mm (the configuration's spacing, times the scale's downsampling). Nothing is added to nnU-Net's
    preprocessing or data loading.

    alpha follows the paper's "rebalance" schedule, stepped once per epoch: from 1 down to 0.01
    at the last epoch (the paper's 0.01 per epoch over 100 epochs, stretched to `num_epochs`).
    The schedule is saved in every checkpoint under "gpudist_boundary_schedule" and restored with
    it (`--c`). Region-based training and ignore labels are not supported.
    """

    boundary_strategy = "rebalance"

    def _build_loss(self) -> RebalancedLoss:
        labels = self.label_manager
        if labels.has_regions or labels.has_ignore_label:
            raise NotImplementedError(f"{type(self).__name__} supports plain label maps only, "
                                      "not region-based training or an ignore label")
        regional = super()._build_loss()
        ndim = len(self.configuration_manager.patch_size)
        scales = self._get_deep_supervision_scales() or [[1.0] * ndim]
        spacing = self.configuration_manager.spacing[-ndim:]
        boundary = DeepSupervisedBoundaryLoss(
            range(1, labels.num_segmentation_heads),
            [[s / f for s, f in zip(spacing, scale)] for scale in scales],
            getattr(regional, "weight_factors", None))
        return RebalancedLoss(regional, boundary, self.boundary_strategy,
                              step_size=0.99 / max(1, self.num_epochs - 1))

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.print_to_log_file(f"Loss weights (Dice + CE, boundary): {self.loss.weights}")

    def on_epoch_end(self) -> None:
        self.loss.step()  # before the checkpoints that nnU-Net's on_epoch_end writes
        super().on_epoch_end()

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.local_rank == 0 and not self.disable_checkpointing:
            checkpoint = torch.load(filename, map_location="cpu", weights_only=False)
            checkpoint[SCHEDULE_KEY] = self.loss.get_extra_state()
            torch.save(checkpoint, filename + ".tmp")  # never a half-written checkpoint
            os.replace(filename + ".tmp", filename)

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        checkpoint = filename_or_checkpoint
        if isinstance(checkpoint, str):
            checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
        self.loss.set_extra_state(checkpoint[SCHEDULE_KEY])
