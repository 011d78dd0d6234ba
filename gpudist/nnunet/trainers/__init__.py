"""The folder that `gpudist-nnunet` adds to nnU-Net's `nnUNet_extTrainer` search path: nnU-Net
finds trainers by class name, importing each module of the folder as a top-level module."""
