"""nnUNetTrainerBoundaryLoss and the `gpudist-nnunet` command on a tiny synthetic nnU-Net v2
dataset, on the CPU: the dataset is written, planned and preprocessed by nnU-Net, trained for 2
epochs of 3 iterations through `gpudist-nnunet train` (a subclass that only shortens the run),
predicted with `gpudist-nnunet predict`, and its checkpoint loaded into a fresh trainer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nnunetv2", reason="nnunetv2 is not installed ('make setup' installs it; "
                    "pip install 'gpudist[nnunet]')")
sitk = pytest.importorskip("SimpleITK", reason="SimpleITK (an nnunetv2 dependency) is missing")

from nnunetv2.experiment_planning.plan_and_preprocess_api import (  # noqa: E402
    extract_fingerprints,
    plan_experiments,
    preprocess,
)

from gpudist.losses import RebalancedLoss  # noqa: E402
from gpudist.nnunet import DeepSupervisedBoundaryLoss, nnUNetTrainerBoundaryLoss  # noqa: E402
from gpudist.nnunet.trainer import SCHEDULE_KEY  # noqa: E402

DATASET_ID, DATASET = 901, "Dataset901_GpudistTiny"
SPACING = (0.8, 0.8, 1.0)  # SimpleITK order (x, y, z)
SHORT_TRAINER = "nnUNetTrainerBoundaryLoss_2epochs"
SHORT_TRAINER_SOURCE = f'''
import torch
from gpudist.nnunet import nnUNetTrainerBoundaryLoss


class {SHORT_TRAINER}(nnUNetTrainerBoundaryLoss):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 2
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 1
'''


def write_case(image_path: Path, label_path: Path | None, rng: np.random.Generator) -> None:
    """A 40x40 slice (stored as a 1x40x40 volume) of noise with a bright disc, and its label."""
    yy, xx = np.ogrid[:40, :40]
    cy, cx = rng.integers(8, 32, size=2)
    label = ((yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(3, 7) ** 2)[None].astype(np.uint8)
    image = (rng.normal(size=label.shape) + 3 * label).astype(np.float32)
    for array, path in ((image, image_path), (label, label_path)):
        if path is not None:
            itk = sitk.GetImageFromArray(array)
            itk.SetSpacing(SPACING)
            sitk.WriteImage(itk, str(path))


@pytest.fixture(scope="module")
def nnunet_env(tmp_path_factory):
    """nnU-Net's folders with the dataset planned and preprocessed (2d); yields the environment
    for nnU-Net commands (paths, one process, the short trainer's folder)."""
    root = tmp_path_factory.mktemp("nnunet")
    env = {f"nnUNet_{k}": str(root / k) for k in ("raw", "preprocessed", "results")}
    env.update(nnUNet_def_n_proc="1", nnUNet_n_proc_DA="1", nnUNet_extTrainer=str(root / "trainers"))
    raw = root / "raw" / DATASET
    for sub in ("imagesTr", "labelsTr", "imagesTs", "trainers"):
        (raw / sub if sub != "trainers" else root / sub).mkdir(parents=True)
    (root / "trainers" / "gpudist_test_trainers.py").write_text(SHORT_TRAINER_SOURCE)
    rng = np.random.default_rng(0)
    for i in range(8):
        write_case(raw / "imagesTr" / f"tiny_{i:03d}_0000.nii.gz",
                   raw / "labelsTr" / f"tiny_{i:03d}.nii.gz", rng)
    write_case(raw / "imagesTs" / "test_000_0000.nii.gz", None, rng)
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "noise"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": 8, "file_ending": ".nii.gz"}))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        extract_fingerprints([DATASET_ID], num_processes=1, show_progress_bar=False)
        plan_experiments([DATASET_ID])
        preprocess([DATASET_ID], configurations=("2d",), num_processes=(1,),
                   show_progress_bar=False)
        yield {**os.environ, "nnUNet_n_proc_DA": "0"}  # augmentation in the main process


def gpudist_nnunet(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Runs the installed `gpudist-nnunet` command; fails the test with its output if it fails."""
    command = Path(sys.executable).with_name("gpudist-nnunet")
    assert command.exists(), f"{command} is not installed (pip install -e '.[nnunet]')"
    done = subprocess.run([str(command), *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def trained(nnunet_env):
    """The output folder of a 2-epoch `gpudist-nnunet train` run of the short trainer."""
    gpudist_nnunet(["train", str(DATASET_ID), "2d", "0", "-tr", SHORT_TRAINER, "-device", "cpu"],
                   nnunet_env)
    return (Path(nnunet_env["nnUNet_results"]) / DATASET
            / f"{SHORT_TRAINER}__nnUNetPlans__2d" / "fold_0")


def test_train_command_runs_the_schedule_and_checkpoints_it(trained):
    log = next(trained.glob("training_log_*.txt")).read_text()
    # alpha from 1 to the floor 0.01 at the last epoch, stepped once per epoch
    assert "Loss weights (Dice + CE, boundary): (1.0, 0.0)" in log
    assert "Loss weights (Dice + CE, boundary): (0.01, 0.99)" in log
    checkpoint = torch.load(trained / "checkpoint_final.pth", map_location="cpu",
                            weights_only=False)
    assert checkpoint["current_epoch"] == 2
    assert checkpoint[SCHEDULE_KEY] == {"strategy": "rebalance", "initial_weights": (1.0, 0.0),
                                        "step_size": 0.99, "floor": 0.01, "epoch": 2}
    summary = json.loads((trained / "validation" / "summary.json").read_text())
    assert 0.0 <= summary["foreground_mean"]["Dice"] <= 1.0


def test_predict_command(trained, nnunet_env, tmp_path):
    raw = Path(nnunet_env["nnUNet_raw"]) / DATASET
    gpudist_nnunet(["predict", "-i", str(raw / "imagesTs"), "-o", str(tmp_path), "-d",
                    str(DATASET_ID), "-c", "2d", "-f", "0", "-tr", SHORT_TRAINER, "-chk",
                    "checkpoint_final.pth", "-device", "cpu", "-npp", "1", "-nps", "1",
                    "--disable_progress_bar"], nnunet_env)
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "test_000.nii.gz")))
    assert seg.shape == (1, 40, 40) and set(np.unique(seg)) <= {0, 1}


def test_trainer_loss_per_scale_and_resume(trained, nnunet_env, monkeypatch):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA"):
        monkeypatch.setenv(k, nnunet_env[k])
    preprocessed = Path(nnunet_env["nnUNet_preprocessed"]) / DATASET
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    trainer = nnUNetTrainerBoundaryLoss(
        plans={**plans, "continue_training": False}, configuration="2d", fold=0,
        dataset_json=json.loads((preprocessed / "dataset.json").read_text()),
        device=torch.device("cpu"))
    trainer.initialize()
    loss = trainer.loss
    assert isinstance(loss, RebalancedLoss) and loss.weights == (1.0, 0.0)
    assert isinstance(loss.boundary, DeepSupervisedBoundaryLoss)
    assert loss.boundary.idc == [1]
    # nnU-Net's deep-supervision weights, and each scale's spacing in mm
    assert loss.boundary.weights == pytest.approx(list(loss.regional.weight_factors))
    scales = trainer._get_deep_supervision_scales()
    spacing = plans["configurations"]["2d"]["spacing"]
    expected = [s / f for scale in scales for s, f in zip(spacing, scale)]
    assert [s for sp in loss.boundary.spacings for s in sp] == pytest.approx(expected)

    # one training step on nnU-Net's own augmented batch: one output and target per scale
    train_loader, _ = trainer.get_dataloaders()
    batch = next(train_loader)
    outputs = trainer.network(batch["data"])
    assert [o.shape[2:] for o in outputs] == [t.shape[2:] for t in batch["target"]]
    assert len(outputs) == len(scales)
    assert np.isfinite(trainer.train_step(batch)["loss"])

    # resuming restores the schedule from the checkpoint of the command's run
    trainer.load_checkpoint(str(trained / "checkpoint_final.pth"))
    assert trainer.loss.epoch == 2 and trainer.loss.weights == (0.01, 0.99)
