"""Makes nnUNetTrainerBoundaryLoss findable by name through nnU-Net's `nnUNet_extTrainer`."""

from gpudist.nnunet.trainer import nnUNetTrainerBoundaryLoss

__all__ = ["nnUNetTrainerBoundaryLoss"]
